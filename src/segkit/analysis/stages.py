"""Per-stage table: size, stride, dilation, channels and receptive field of each watched tensor."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from segkit.analysis.tracer import ConvEvent, TraceResult, WatchedTensor

Global = str  # the literal "global"
GLOBAL: Global = "global"


@dataclass(frozen=True)
class Stage:
    """One row. ``stride`` is the tensor's real sampling step in input pixels (its jump; a
    bilinear resize to a given size can make it non-integer, e.g. 16 * 33 / 129). ``dilation`` is
    the largest dilation among the convolutions run since the previous row, measured on the input's
    own grid (so space-to-batch atrous counts as its rate). ``rf`` is in input pixels."""

    name: str
    height: int
    width: int
    stride: float
    dilation: float
    channels: int
    rf: int | Global

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "height": self.height,
            "width": self.width,
            "stride": nice(self.stride),
            "dilation": nice(self.dilation),
            "channels": self.channels,
            "rf": self.rf,
        }


def nice(x: float) -> int | float:
    """An integer when ``x`` is one up to rounding noise, else ``x`` to 3 decimals."""
    return int(round(x)) if abs(x - round(x)) < 1e-6 else round(x, 3)


def rf_value(record: WatchedTensor) -> int | Global:
    """Receptive field of a traced tensor: the larger of the two axes, or "global"."""
    rf = max(record.geometry.rf)
    return GLOBAL if math.isinf(rf) else int(math.ceil(rf - 1e-9))


def stride_of(record: WatchedTensor) -> float:
    """The tensor's finest sampling step on the height axis (1.0 when it has no spatial extent)."""
    jump = record.geometry.axis_jump(0)
    return 1.0 if jump is None else jump


def watch_points(model: nn.Module) -> dict[str, nn.Module]:
    """Modules whose outputs make the stage table.

    A ``Segmentor``-like model (``backbone`` + ``head`` attributes): the backbone (one row per
    returned feature), each child of the head (children of ModuleLists/Dicts, which are never
    called themselves) and the head (its logits). Any other model: its direct children.
    """
    head = getattr(model, "head", None)
    if not isinstance(getattr(model, "backbone", None), nn.Module) or head is None:
        return _called_children("", model)
    return {"backbone": model.backbone, **_called_children("head", head), "logits": head}


def _called_children(prefix: str, module: nn.Module) -> dict[str, nn.Module]:
    out: dict[str, nn.Module] = {}
    for name, child in module.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.ModuleList | nn.ModuleDict):
            out.update(_called_children(full, child))
        else:
            out[full] = child
    return out


def stage_table(result: TraceResult, feature_names: list[str] | None = None) -> list[Stage]:
    """Rows for every 4-D watched tensor in execution order, then the model output(s).

    ``feature_names`` renames ``backbone.<i>`` rows (e.g. from the backbone's ``feature_info``).
    """
    rows: list[Stage] = []
    records = [r for r in result.records if len(r.shape) == 4]
    records += [r for r in result.outputs.values() if len(r.shape) == 4]
    seen: set[tuple[str, int]] = set()
    last = 0
    for rec in records:
        if (rec.name, rec.index) in seen:
            continue
        seen.add((rec.name, rec.index))
        rows.append(_row(rec, _rename(rec.name, feature_names), result.convs, last))
        last = max(last, rec.index)
    return rows


def _rename(name: str, feature_names: list[str] | None) -> str:
    prefix = "backbone."
    if feature_names and name.startswith(prefix) and name[len(prefix) :].isdigit():
        i = int(name[len(prefix) :])
        if i < len(feature_names) and feature_names[i]:
            return f"{prefix}{feature_names[i]}"
    return name


def _row(rec: WatchedTensor, name: str, convs: list[ConvEvent], after: int) -> Stage:
    dil = [c.dilation for c in convs if after < c.index <= rec.index and not c.transposed]
    _, c, h, w = rec.shape
    return Stage(name, h, w, stride_of(rec), max(dil, default=1.0), c, rf_value(rec))
