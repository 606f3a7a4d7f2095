from segkit.nn.atrous import (
    ATROUS_IMPLS,
    AtrousConv2d,
    atrous_impl_of,
    set_atrous_impl,
    space_to_batch_conv2d,
)
from segkit.nn.conv import ConvBNAct, SeparableConv2d, same_padding
from segkit.nn.pool import DilatedMaxPool2d
from segkit.nn.upsample import BilinearConvTranspose2d, bilinear_kernel

__all__ = [
    "ATROUS_IMPLS",
    "AtrousConv2d",
    "BilinearConvTranspose2d",
    "ConvBNAct",
    "DilatedMaxPool2d",
    "SeparableConv2d",
    "atrous_impl_of",
    "bilinear_kernel",
    "same_padding",
    "set_atrous_impl",
    "space_to_batch_conv2d",
]
from segkit.nn.context import ASPP, ASPPPooling, PyramidPooling  # noqa: E402

__all__ += ["ASPP", "ASPPPooling", "PyramidPooling"]
