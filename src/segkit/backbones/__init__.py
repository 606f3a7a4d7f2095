from segkit.backbones.base import VALID_OUTPUT_STRIDES, Backbone, FeatureInfo, check_output_stride

__all__ = ["VALID_OUTPUT_STRIDES", "Backbone", "FeatureInfo", "check_output_stride"]
