"""Public model builders: the schema of ``configs/model/*.yaml`` (one keyword argument = one key).

``output_stride`` is the one user key that drives both the backbone's dilation and the heads' atrous
rates. ``backbone`` is a backbone name (``segkit.backbones.create_backbone``), a callable taking
``output_stride=`` (the Hydra partial of ``configs/backbone/*.yaml``) or a built ``Backbone``
(re-dilated to ``output_stride``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Literal

from segkit.backbones import create_backbone
from segkit.backbones.base import Backbone, check_output_stride
from segkit.heads import AuxFCNHead, DeepLabV3Head, DeepLabV3PlusHead, FCNHead
from segkit.heads.deeplabv3plus import Context
from segkit.heads.fcn import FCNVariant, check_fcn_variant
from segkit.models.segmentor import Segmentor

BackboneSpec = str | Callable[..., Backbone] | Backbone


def build_backbone(backbone: BackboneSpec, output_stride: int) -> Backbone:
    """A backbone at ``output_stride`` from a name, a builder/partial, or a built backbone."""
    output_stride = check_output_stride(output_stride)
    if isinstance(backbone, str):
        return create_backbone(backbone, output_stride=output_stride)
    if isinstance(backbone, Backbone):
        if backbone.output_stride != output_stride:
            backbone.set_output_stride(output_stride)
        return backbone
    if not callable(backbone):
        raise ValueError(
            f"model.backbone must be a backbone name, a builder taking output_stride= or a Backbone, "
            f"got {type(backbone).__name__}"
        )
    built = backbone(output_stride=output_stride)
    if not isinstance(built, Backbone):
        raise ValueError(
            f"model.backbone built a {type(built).__name__}, not a segkit Backbone; "
            "its config needs _target_: segkit.backbones.<builder> and _partial_: true"
        )
    return built


def _aux(backbone: Backbone, num_classes: int, aux: bool) -> AuxFCNHead | None:
    return AuxFCNHead(backbone.channels, backbone.strides, num_classes) if aux else None


def fcn(
    *,
    backbone: BackboneSpec,
    num_classes: int,
    output_stride: int = 32,
    fcn_variant: FCNVariant = "8s",
    aux: bool = False,
) -> Segmentor:
    """FCN-32s/16s/8s (Long et al. 2015) on ``backbone`` at ``output_stride`` (32 as in the paper)."""
    # Check the variant before building a possibly large backbone.
    check_fcn_variant(fcn_variant, check_output_stride(output_stride))
    bb = build_backbone(backbone, output_stride)
    head = FCNHead(bb.channels, bb.strides, num_classes, variant=fcn_variant)
    return Segmentor(bb, head, _aux(bb, num_classes, aux))


def deeplabv3(
    *,
    backbone: BackboneSpec,
    num_classes: int,
    output_stride: int = 16,
    aspp_rates: Sequence[int] = (6, 12, 18),
    aspp_channels: int = 256,
    separable: bool = False,
    dropout: float = 0.1,
    aux: bool = False,
) -> Segmentor:
    """DeepLabv3 (Chen et al. 2017): ASPP, rates given at OS 16 and scaled to ``output_stride``."""
    bb = build_backbone(backbone, output_stride)
    head = DeepLabV3Head(
        bb.channels,
        bb.strides,
        num_classes,
        aspp_rates=tuple(aspp_rates),
        aspp_channels=aspp_channels,
        separable=separable,
        dropout=dropout,
    )
    return Segmentor(bb, head, _aux(bb, num_classes, aux))


def deeplabv3plus(
    *,
    backbone: BackboneSpec,
    num_classes: int,
    output_stride: int = 16,
    aspp_rates: Sequence[int] = (6, 12, 18),
    aspp_channels: int = 256,
    separable: bool = False,
    context: Context = "aspp",
    low_level_channels: int = 48,
    decoder_channels: int = 256,
    dropout: float = 0.1,
    aux: bool = False,
) -> Segmentor:
    """DeepLabv3+ (Chen et al. 2018): context module + decoder on the stride-4 feature."""
    bb = build_backbone(backbone, output_stride)
    head = DeepLabV3PlusHead(
        bb.channels,
        bb.strides,
        num_classes,
        aspp_rates=tuple(aspp_rates),
        aspp_channels=aspp_channels,
        separable=separable,
        context=context,
        low_level_channels=low_level_channels,
        decoder_channels=decoder_channels,
        dropout=dropout,
    )
    return Segmentor(bb, head, _aux(bb, num_classes, aux))


MODELS: dict[str, Callable[..., Segmentor]] = {
    "fcn": fcn,
    "deeplabv3": deeplabv3,
    "deeplabv3plus": deeplabv3plus,
}
ModelName = Literal["fcn", "deeplabv3", "deeplabv3plus"]


def create_model(
    name: ModelName,
    *,
    backbone: BackboneSpec = "mobilenetv2",
    num_classes: int = 21,
    output_stride: int = 16,
    **options: object,
) -> Segmentor:
    """Build a model by name for Python users: ``create_model("fcn", fcn_variant="16s")``.

    ``options`` are the builder's keyword arguments (its config keys); unknown ones raise a
    ValueError listing the valid ones.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    builder = MODELS[name]
    valid = set(inspect.signature(builder).parameters) - {
        "backbone",
        "num_classes",
        "output_stride",
    }
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for model {name!r}; valid: {sorted(valid)}")
    return builder(
        backbone=backbone, num_classes=num_classes, output_stride=output_stride, **options
    )
