from segkit.backbones.base import Backbone, FeatureInfo, check_output_stride
from segkit.backbones.factory import BACKBONES, create_backbone
from segkit.backbones.mobilenetv2 import MobileNetV2, mobilenetv2
from segkit.backbones.timm_adapter import TimmBackbone, timm_backbone
from segkit.backbones.xception import Xception, xception
from segkit.backbones.xception65 import XceptionAligned, xception65

__all__ = [
    "BACKBONES",
    "Backbone",
    "FeatureInfo",
    "MobileNetV2",
    "TimmBackbone",
    "Xception",
    "XceptionAligned",
    "check_output_stride",
    "create_backbone",
    "mobilenetv2",
    "timm_backbone",
    "xception",
    "xception65",
]
