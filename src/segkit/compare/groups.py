"""Comparison rows over seeds: the runs of one design that differ only in ``seed`` form one row.

A ``DesignGroup`` answers what a table cell or a finding needs: the design's identity (from its
first run: every run of a group shares it), per-seed figures summarised as mean ± std, and the
per-image confusion matrices of every seed for the paired bootstrap (``segkit.compare.stats``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from segkit.compare.records import Record
from segkit.compare.stats import ImageConfusion, Summary
from segkit.runs import IMAGE_CONFUSION_FILE


@dataclass(eq=False)
class DesignGroup:
    """The runs (one per seed, sorted by seed) of one design at one inference output stride."""

    runs: list[Record]

    # Identity: the same for every run of the group (``group_key``), so read from the first.
    @property
    def design(self) -> str:
        return self.runs[0].design

    @property
    def model(self) -> str | None:
        return self.runs[0].model

    @property
    def backbone(self) -> str | None:
        return self.runs[0].backbone

    @property
    def output_stride(self) -> int | None:
        return self.runs[0].output_stride

    @property
    def stride(self) -> int | None:
        return self.runs[0].stride

    @property
    def varies(self) -> dict[str, Any]:
        return self.runs[0].varies

    @property
    def group(self) -> str:
        return self.runs[0].group

    @property
    def label(self) -> str:
        return self.runs[0].label

    @property
    def config(self) -> dict[str, Any] | None:
        return self.runs[0].config

    def setting(self, dotted: str, default: Any = None) -> Any:
        """A training-config value by dotted key (``model.context``), ``default`` when absent."""
        node: Any = self.config or {}
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]

    @property
    def n(self) -> int:
        return len(self.runs)

    def first(self, attr: str) -> dict[str, Any]:
        """The first run's ``train`` / ``eval`` / ``analysis`` dict that exists (``{}`` if none):
        for figures every seed shares (params, multiply-adds, strides, receptive field)."""
        return next((getattr(r, attr) for r in self.runs if getattr(r, attr)), None) or {}

    def summary(self, value: Callable[[Record], float | None]) -> Summary | None:
        """Mean ± std over the group's seeds of ``value(run)`` (runs without it left out)."""
        return Summary.of([v for v in map(value, self.runs) if v is not None])

    @property
    def miou(self) -> Summary | None:
        return self.summary(lambda r: r.miou)

    def trimap(self, width: int) -> Summary | None:
        return self.summary(lambda r: trimap_value(r, width))

    @property
    def missing(self) -> list[str]:
        return [f"{m} (seed {r.seed})" if self.n > 1 else m for r in self.runs for m in r.missing]

    @property
    def dirs(self) -> dict[str, Path]:
        return self.runs[0].dirs

    @cached_property
    def image_confusion(self) -> list[ImageConfusion] | None:
        """Every seed's per-image matrices, or None when any run lacks them (an evaluation made
        before they were written, or none at all)."""
        out = []
        for r in self.runs:
            path = r.dirs.get("eval")
            file = path / IMAGE_CONFUSION_FILE if path else None
            if file is None or not file.is_file():
                return None
            out.append(ImageConfusion.load(file))
        return out


def trimap_value(rec: Record, width: int) -> float | None:
    """Evaluation mIoU within ``width`` px of a boundary (None when not evaluated at that width)."""
    trimap = (rec.eval or {}).get("trimap") or {}
    for w, v in zip(trimap.get("widths", []), trimap.get("mIoU", []), strict=False):
        if int(w) == width:
            return v
    return None


def group_key(rec: Record) -> tuple:
    varies = json.dumps(rec.varies, sort_keys=True, default=str)
    return (rec.design, rec.model, rec.backbone, rec.output_stride, rec.stride, varies)


def group_by_seed(records: Iterable[Record]) -> list[DesignGroup]:
    """One group per design (records equal in everything but ``seed``), in first-seen order; the
    runs of a group sorted by seed."""
    groups: dict[tuple, list[Record]] = {}
    for rec in records:
        groups.setdefault(group_key(rec), []).append(rec)
    return [
        DesignGroup(sorted(runs, key=lambda r: (r.seed is None, r.seed or 0)))
        for runs in groups.values()
    ]


def find_group(
    groups: Sequence[DesignGroup],
    design: str,
    trained: int | None = None,
    used: int | None = None,
    *,
    where: dict[str, tuple[Any, Any]] | None = None,
) -> DesignGroup | None:
    """The first group of ``design`` ("FCN-8s", "DeepLabv3+", ...) trained at ``trained`` (any when
    None), inferring at ``used`` (default: its trained stride), with a mIoU, whose training config
    has ``where``'s values (dotted key -> (value, default when the key is absent))."""
    for g in groups:
        if g.design != design or g.miou is None or (trained and g.output_stride != trained):
            continue
        if any(g.setting(k, default) != v for k, (v, default) in (where or {}).items()):
            continue
        if g.stride == (used or g.output_stride):
            return g
    return None


__all__ = [
    "IMAGE_CONFUSION_FILE",
    "DesignGroup",
    "find_group",
    "group_by_seed",
    "group_key",
    "trimap_value",
]
