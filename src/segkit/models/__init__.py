"""Segmentation models: ``Segmentor`` = backbone + head (+ aux head), and the public builders."""

from segkit.backbones import create_backbone
from segkit.models.builders import MODELS, create_model, deeplabv3, deeplabv3plus, fcn
from segkit.models.segmentor import Segmentor

__all__ = [
    "MODELS",
    "Segmentor",
    "create_backbone",
    "create_model",
    "deeplabv3",
    "deeplabv3plus",
    "fcn",
]
