"""Segmentation heads, each sized from the backbone's feature contract (channels, strides)."""

from segkit.heads.aux import AuxFCNHead
from segkit.heads.base import Head, HeadBase, scale_rates
from segkit.heads.deeplabv3 import CONTEXTS, DeepLabV3Head, check_context
from segkit.heads.deeplabv3plus import DeepLabV3PlusHead
from segkit.heads.fcn import FCN_VARIANTS, FCNHead, check_fcn_variant

__all__ = [
    "CONTEXTS",
    "FCN_VARIANTS",
    "AuxFCNHead",
    "DeepLabV3Head",
    "DeepLabV3PlusHead",
    "FCNHead",
    "Head",
    "HeadBase",
    "check_context",
    "check_fcn_variant",
    "scale_rates",
]
