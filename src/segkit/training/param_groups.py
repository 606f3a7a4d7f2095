"""Optimizer parameter groups: backbone vs head learning rate, and which weights get no weight
decay; the optimizer partial receives them and must leave ``lr`` / ``weight_decay`` to them.

Weight decay is an L2 pull towards zero. It is dropped for
- normalisation layers (BN/GN/LN scale and shift): decaying them only fights the normalisation;
- biases: they carry no capacity that needs regularising;
- any other 1-D parameter (a norm class torch does not know, e.g. timm's ``RmsNorm``, or a
  per-channel layer-scale ``gamma`` as in ConvNeXt): a per-channel scale or shift, like a norm's;
- depthwise-conv weights (switch ``no_decay_depthwise``, default on): a depthwise filter has only
  K*K parameters per channel, so decay hurts it much more than a full conv (MobileNet paper, sec. 3.3:
  "very little or no weight decay on the depthwise filters"). A depthwise conv is detected by
  ``groups == in_channels > 1``: every filter sees one input channel, with or without a channel
  multiplier (``out_channels = m * in_channels``, as in some timm models, e.g. FastViT).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from torch import nn

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def is_depthwise(module: nn.Module) -> bool:
    """True for a depthwise conv: each filter sees a single input channel (``groups ==
    in_channels > 1``; ``out_channels`` may be a multiple of ``in_channels``). A grouped conv with
    several input channels per group is not depthwise."""
    return (
        isinstance(module, nn.modules.conv._ConvNd)
        and module.groups > 1
        and module.groups == module.in_channels
    )


def _no_decay(
    module: nn.Module, param_name: str, param: nn.Parameter, *, no_decay_depthwise: bool
) -> bool:
    if isinstance(module, _NORM_TYPES) or param_name == "bias" or param.ndim <= 1:
        return True
    return no_decay_depthwise and param_name == "weight" and is_depthwise(module)


def _named_leaf_params(root: nn.Module) -> Iterator[tuple[nn.Module, str, nn.Parameter]]:
    """(owning module, local param name, param) for every trainable parameter, each once."""
    seen: set[int] = set()
    for module in root.modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                yield module, name, param


def build_param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    backbone_lr_mult: float = 1.0,
    no_decay_depthwise: bool = True,
) -> list[dict[str, Any]]:
    """Parameter groups for a Segmentor-like model with a ``.backbone`` attribute.

    Returns up to four groups, ``{"params", "lr", "weight_decay", "name"}``, named
    ``backbone/decay``, ``backbone/no_decay``, ``head/decay``, ``head/no_decay``; "head" is every
    parameter outside ``model.backbone`` (decoder, classifier, aux head). Empty groups are dropped.
    Models without a ``backbone`` attribute put everything in the head groups.
    """
    backbone = getattr(model, "backbone", None)
    backbone_ids = set() if backbone is None else {id(p) for p in backbone.parameters()}
    groups: dict[str, list[nn.Parameter]] = {
        "backbone/decay": [],
        "backbone/no_decay": [],
        "head/decay": [],
        "head/no_decay": [],
    }
    for owner, name, param in _named_leaf_params(model):
        part = "backbone" if id(param) in backbone_ids else "head"
        skip = _no_decay(owner, name, param, no_decay_depthwise=no_decay_depthwise)
        kind = "no_decay" if skip else "decay"
        groups[f"{part}/{kind}"].append(param)
    out = []
    for name, params in groups.items():
        if not params:
            continue
        mult = backbone_lr_mult if name.startswith("backbone") else 1.0
        wd = weight_decay if name.endswith("/decay") else 0.0
        out.append({"params": params, "lr": lr * mult, "weight_decay": wd, "name": name})
    return out


#: Optimizer arguments SegModule sets per parameter group; a partial that sets them is refused.
GROUP_KEYS = {
    "lr": "SegModule's lr (the head's LR; the backbone gets lr x backbone_lr_mult)",
    "weight_decay": "SegModule's weight_decay (norms, biases and depthwise weights get 0)",
}


def check_optimizer(optimizer: Any) -> None:
    """ValueError when the ``optimizer`` partial sets what the param groups decide (it would be
    overridden in every group, silently)."""
    if not callable(optimizer):
        raise ValueError(
            f"optimizer must be a partial optimizer (e.g. functools.partial(torch.optim.SGD, "
            f"momentum=0.9); in a config _partial_: true), got {optimizer!r}"
        )
    keywords = getattr(optimizer, "keywords", {}) or {}
    for key, where in GROUP_KEYS.items():
        if key in keywords:
            raise ValueError(
                f"optimizer's {key} is not used: every parameter group sets its own {key}. "
                f"Remove it from the optimizer partial and set {where}"
            )
    target = getattr(optimizer, "func", None)
    try:
        accepted = inspect.signature(target).parameters if target is not None else {}
    except (TypeError, ValueError):  # no introspectable signature: let the call decide
        accepted = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [k for k in keywords if accepted and not takes_any and k not in accepted]
    if unknown:
        name = f"{target.__module__}.{target.__qualname__}"
        raise ValueError(
            f"optimizer {name} takes no argument {', '.join(unknown)} (left from another "
            "optimizer's settings?): drop it from the optimizer partial, or pick the optimizer "
            "that takes it"
        )
