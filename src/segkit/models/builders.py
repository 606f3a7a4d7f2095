"""Public model builders: the schema of ``configs/model/*.yaml`` (one keyword argument = one key).

``output_stride`` is the one user key that drives both the backbone's dilation and the heads' atrous
rates. ``backbone`` is a backbone name (``segkit.backbones.create_backbone``), a callable taking
``output_stride=`` (the Hydra partial of ``configs/backbone/*.yaml``) or a built ``Backbone``
(re-dilated to ``output_stride``). Each builder's other keywords are its head's: they are defined
once, in the head's signature, and the builder publishes them as its own (``inspect.signature``),
so ``deeplabv3plus(aspp_channels=...)`` and ``model.aspp_channels`` name the head's argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

from segkit.backbones import create_backbone
from segkit.backbones.base import Backbone, check_output_stride
from segkit.heads import AuxFCNHead, DeepLabV3Head, DeepLabV3PlusHead, FCNHead
from segkit.heads.base import HeadBase
from segkit.heads.fcn import check_fcn_variant
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
            f"backbone must be a backbone name, a builder taking output_stride= or a Backbone, "
            f"got {type(backbone).__name__}"
        )
    built = backbone(output_stride=output_stride)
    if not isinstance(built, Backbone):
        raise ValueError(
            f"backbone built a {type(built).__name__}, not a segkit Backbone; "
            "its config needs _target_: segkit.backbones.<builder> and _partial_: true"
        )
    return built


def _head_keywords(head: type[HeadBase]) -> list[inspect.Parameter]:
    """The head's own options: its keyword-only arguments except the feature contract."""
    return [
        p
        for name, p in inspect.signature(head).parameters.items()
        if p.kind is p.KEYWORD_ONLY and name != "nominal_strides"
    ]


def head_options(head: type[HeadBase], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` completed with the head's defaults; ValueError naming unknown ones."""
    params = {p.name: p for p in _head_keywords(head)}
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(
            f"unknown argument(s) {unknown} for {head.__name__}; valid: {list(params)}"
        )
    return {name: options.get(name, p.default) for name, p in params.items()}


def assemble(
    head: type[HeadBase],
    *,
    backbone: BackboneSpec,
    num_classes: int,
    output_stride: int,
    aux: bool,
    options: dict[str, Any],
) -> Segmentor:
    """Backbone at ``output_stride`` + ``head(**options)`` (+ aux head), sized from its contract."""
    bb = build_backbone(backbone, output_stride)
    contract = (bb.channels, bb.strides, num_classes)
    nominal = {"nominal_strides": bb.nominal_strides}
    aux_head = AuxFCNHead(*contract, **nominal) if aux else None
    return Segmentor(bb, head(*contract, **nominal, **options), aux_head)


def fcn(
    *, backbone: BackboneSpec, num_classes: int, output_stride: int = 32, aux: bool = False, **opts
) -> Segmentor:
    """FCN-32s/16s/8s (Long et al. 2015) on ``backbone`` at ``output_stride`` (32 as in the paper);
    other keywords: ``FCNHead``'s (``fcn_variant``)."""
    opts = head_options(FCNHead, opts)
    # Check the variant before building a possibly large backbone.
    check_fcn_variant(opts["fcn_variant"], check_output_stride(output_stride))
    return assemble(FCNHead, backbone=backbone, num_classes=num_classes,
                    output_stride=output_stride, aux=aux, options=opts)  # fmt: skip


def deeplabv3(
    *, backbone: BackboneSpec, num_classes: int, output_stride: int = 16, aux: bool = False, **opts
) -> Segmentor:
    """DeepLabv3 (Chen et al. 2017): ASPP, rates given at OS 16 and scaled to ``output_stride``;
    other keywords: ``DeepLabV3Head``'s."""
    return assemble(DeepLabV3Head, backbone=backbone, num_classes=num_classes,
                    output_stride=output_stride, aux=aux,
                    options=head_options(DeepLabV3Head, opts))  # fmt: skip


def deeplabv3plus(
    *, backbone: BackboneSpec, num_classes: int, output_stride: int = 16, aux: bool = False, **opts
) -> Segmentor:
    """DeepLabv3+ (Chen et al. 2018): context module + decoder on the stride-4 feature;
    other keywords: ``DeepLabV3PlusHead``'s."""
    return assemble(DeepLabV3PlusHead, backbone=backbone, num_classes=num_classes,
                    output_stride=output_stride, aux=aux,
                    options=head_options(DeepLabV3PlusHead, opts))  # fmt: skip


def _publish_head_keywords(builder: Callable[..., Segmentor], head: type[HeadBase]) -> None:
    """Give ``builder`` the signature it accepts: its own keywords, then the head's."""
    own = [p for p in inspect.signature(builder).parameters.values() if p.kind is p.KEYWORD_ONLY]
    signature = inspect.Signature([*own, *_head_keywords(head)], return_annotation=Segmentor)
    builder.__signature__ = signature  # type: ignore[attr-defined]


MODELS: dict[str, Callable[..., Segmentor]] = {
    "fcn": fcn,
    "deeplabv3": deeplabv3,
    "deeplabv3plus": deeplabv3plus,
}
for _name, _head in (
    ("fcn", FCNHead),
    ("deeplabv3", DeepLabV3Head),
    ("deeplabv3plus", DeepLabV3PlusHead),
):
    _publish_head_keywords(MODELS[_name], _head)
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
