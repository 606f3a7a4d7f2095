from segkit.nn.conv import ConvBNAct, SeparableConv2d, same_padding

__all__ = ["ConvBNAct", "SeparableConv2d", "same_padding"]
from segkit.nn.context import ASPP, SPP, ASPPPooling, PyramidPooling  # noqa: E402

__all__ += ["ASPP", "SPP", "ASPPPooling", "PyramidPooling"]
