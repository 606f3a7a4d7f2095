"""``create_backbone(name, ...)``: the Python-user entry point (configs use the builders directly)."""

from __future__ import annotations

from collections.abc import Callable

from segkit.backbones.base import Backbone, check_output_stride
from segkit.backbones.mobilenetv2 import mobilenetv2
from segkit.backbones.timm_adapter import timm_backbone
from segkit.backbones.xception import xception
from segkit.backbones.xception65 import xception65

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "mobilenetv2": mobilenetv2,
    "xception": xception,
    "xception65": xception65,
    "timm": timm_backbone,
}


def create_backbone(
    name: str, *, output_stride: int = 16, weights: str | None = None, **switches: object
) -> Backbone:
    """Build backbone ``name`` (one of ``BACKBONES``) at ``output_stride`` with its switches, e.g.
    ``create_backbone("mobilenetv2", output_stride=8, width_mult=0.5, linear_bottleneck=False)``
    or ``create_backbone("timm", model_name="resnet18")``. Unknown switches raise TypeError from
    the builder, whose keyword-only signature is the schema.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    check_output_stride(output_stride)
    return BACKBONES[name](output_stride=output_stride, weights=weights, **switches)
