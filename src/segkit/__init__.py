"""segkit: build, train, evaluate and *compare* FCN and DeepLabv3+ segmentation designs."""

__version__ = "0.1.0"
