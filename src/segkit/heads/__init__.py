"""Segmentation heads, each sized from the backbone's feature contract (channels, strides)."""

from segkit.heads.aux import AuxFCNHead
from segkit.heads.base import feature_index, nominal_strides, scale_rates
from segkit.heads.deeplabv3 import DeepLabV3Head
from segkit.heads.deeplabv3plus import CONTEXTS, DeepLabV3PlusHead
from segkit.heads.fcn import FCN_VARIANTS, FCNHead, check_fcn_variant

__all__ = [
    "CONTEXTS",
    "FCN_VARIANTS",
    "AuxFCNHead",
    "DeepLabV3Head",
    "DeepLabV3PlusHead",
    "FCNHead",
    "check_fcn_variant",
    "feature_index",
    "nominal_strides",
    "scale_rates",
]
