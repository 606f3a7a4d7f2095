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
    """The head's own options: its keyword-only arguments (the contract is positional)."""
    return [p for p in inspect.signature(head).parameters.values() if p.kind is p.KEYWORD_ONLY]


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
    aux_head = AuxFCNHead(bb.feature_info, num_classes) if aux else None
    return Segmentor(bb, head(bb.feature_info, num_classes, **options), aux_head)


def _check_fcn(output_stride: int, opts: dict[str, Any]) -> None:
    # Check the variant before building a possibly large backbone.
    check_fcn_variant(opts["fcn_variant"], check_output_stride(output_stride))


def model_builder(
    name: str,
    head: type[HeadBase],
    *,
    output_stride: int,
    doc: str,
    precheck: Callable[[int, dict[str, Any]], None] | None = None,
) -> Callable[..., Segmentor]:
    """A public builder ``name(*, backbone, num_classes, output_stride, aux, <head keywords>)``.

    Its signature (``inspect.signature``, the config schema) is its own four keywords followed by
    the head's; unknown keywords raise a ValueError listing the valid ones; ``precheck(output_stride,
    options)`` runs before the backbone is built.
    """
    default_os = output_stride

    def build(
        *,
        backbone: BackboneSpec,
        num_classes: int,
        output_stride: int = default_os,
        aux: bool = False,
        **opts: Any,
    ) -> Segmentor:
        opts = head_options(head, opts)
        if precheck is not None:
            precheck(output_stride, opts)
        return assemble(head, backbone=backbone, num_classes=num_classes,
                        output_stride=output_stride, aux=aux, options=opts)  # fmt: skip

    own = [p for p in inspect.signature(build).parameters.values() if p.kind is p.KEYWORD_ONLY]
    build.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*own, *_head_keywords(head)], return_annotation=Segmentor
    )
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{doc}\n\nOther keywords: ``{head.__name__}``'s (its docstring)."
    return build


fcn = model_builder(
    "fcn", FCNHead, output_stride=32, precheck=_check_fcn,
    doc="FCN-32s/16s/8s (Long et al. 2015) on ``backbone`` at ``output_stride`` (32 as in the paper).",
)  # fmt: skip
deeplabv3 = model_builder(
    "deeplabv3", DeepLabV3Head, output_stride=16,
    doc="DeepLabv3 (Chen et al. 2017): ASPP, rates given at OS 16 and scaled to ``output_stride``.",
)  # fmt: skip
deeplabv3plus = model_builder(
    "deeplabv3plus", DeepLabV3PlusHead, output_stride=16,
    doc="DeepLabv3+ (Chen et al. 2018): context module + decoder on the stride-4 feature.",
)  # fmt: skip
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
