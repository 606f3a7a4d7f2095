"""``create_backbone(name, ...)``: the Python-user entry point (configs use the builders directly)."""

from __future__ import annotations

import inspect
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
    or ``create_backbone("timm", model_name="resnet18")``. The builder's keyword-only signature is
    the schema: an unknown or a missing required switch raises a ValueError listing the valid ones.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    check_output_stride(output_stride)
    builder = BACKBONES[name]
    params = inspect.signature(builder).parameters
    valid = sorted(set(params) - {"output_stride", "weights"})
    unknown = sorted(set(switches) - set(params))
    if unknown:
        raise ValueError(f"unknown switch(es) {unknown} for backbone {name!r}; valid: {valid}")
    required = [k for k, p in params.items() if p.default is p.empty and k not in switches]
    if required:
        raise ValueError(
            f"backbone {name!r} needs {required}, e.g. create_backbone({name!r}, "
            f"{required[0]}=...); valid switches: {valid}"
        )
    return builder(output_stride=output_stride, weights=weights, **switches)
