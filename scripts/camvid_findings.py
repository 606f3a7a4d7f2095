"""The findings of docs/camvid.md: the comparisons the issue asks for, each with a paired
moving-block bootstrap interval over the test videos and, beside it, the frame-level interval that
treats consecutive frames as independent (how much narrower that one is, is part of the finding).

The block length is the smallest lag at which the autocorrelation of per-frame mIoU, pooled over
the sequences and every evaluated run, falls below 0.2 (``segkit.compare.stats.block_length``).
Wording: ``comparison_doc.interval_text``. Used by scripts/camvid_doc.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from comparison_doc import ASPP, DLP, Pair, interval_text
from segkit.compare.groups import DesignGroup, find_group
from segkit.compare.stats import (
    BOOTSTRAP_SEED,
    RESAMPLES,
    Bootstrap,
    Interval,
    autocorrelation,
    block_length,
    miou,
)
from segkit.compare.table import DASH, markdown_table
from segkit.data.camvid_layout import frame_of, sequence_of

#: Trimap widths (px) shown in the headline table and the boundary findings.
SHOWN_WIDTHS = (2, 8)


@dataclass(frozen=True)
class Video:
    """The test frames in (sequence, frame) order and the two bootstraps drawn over them."""

    order: tuple[str, ...]
    sequences: tuple[str, ...]
    block: int
    lag1: float | None
    blocks: Bootstrap
    frames: Bootstrap


def frame_order(ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(ids, key=lambda i: (sequence_of(i), frame_of(i))))


def per_frame_series(groups: Sequence[DesignGroup], order: Sequence[str]) -> list[np.ndarray]:
    """Per-frame mIoU of every evaluated run (at its trained stride), one series per sequence."""
    seqs = np.array([sequence_of(i) for i in order])
    out = []
    for g in groups:
        if g.stride != g.output_stride:
            continue
        for c in g.image_confusion or []:
            index = {image: n for n, image in enumerate(c.ids)}
            scores = miou(c.confusion[[index[i] for i in order]])
            out += [scores[seqs == s] for s in dict.fromkeys(seqs)]
    return [s[~np.isnan(s)] for s in out]


def video(groups: Sequence[DesignGroup]) -> Video | None:
    first = next((g.image_confusion[0] for g in groups if g.image_confusion), None)
    if first is None:
        return None
    order = frame_order(first.ids)
    sequences = tuple(sequence_of(i) for i in order)
    series = per_frame_series(groups, order)
    block = block_length(series)
    blocks = Bootstrap(len(order), sequences=sequences, block=block)
    frames = Bootstrap(len(order), resamples=RESAMPLES, seed=BOOTSTRAP_SEED)
    return Video(order, sequences, block, autocorrelation(series, 1), blocks, frames)


@dataclass(frozen=True)
class Question:
    """One comparison the issue asks for: A vs B, and whether its boundary figures are shown."""

    what: str
    a: DesignGroup | None
    b: DesignGroup | None
    needs: str
    near_boundaries: bool = True
    same_networks: bool = False


def questions(groups: Sequence[DesignGroup]) -> list[Question]:
    fcn8, fcn32 = find_group(groups, "FCN-8s"), find_group(groups, "FCN-32s")
    v3 = find_group(groups, "DeepLabv3", 16, where=ASPP)
    v3p = find_group(groups, DLP, 16, where=ASPP)
    os8 = find_group(groups, DLP, 16, 8, where=ASPP)
    bare = find_group(groups, DLP, 16, where={"model.context": ("none", "aspp")})
    same = bool(os8 and v3p and os8.seeds == v3p.seeds)
    return [
        Question("FCN skips: FCN-8s vs FCN-32s", fcn8, fcn32, "fcn8s, fcn32s"),
        Question("The decoder: DeepLabv3+ vs DeepLabv3", v3p, v3, "deeplabv3plus, deeplabv3"),
        Question("DeepLabv3+ vs FCN-8s", v3p, fcn8, "deeplabv3plus, fcn8s"),
        Question(
            "DeepLabv3+ trained at OS 16, evaluated at OS 8 vs OS 16 (same weights, backbone "
            "re-dilated, ASPP rates doubled; seeds resampled jointly)",
            os8,
            v3p,
            "deeplabv3plus eval_os8",
            near_boundaries=False,
            same_networks=same,
        ),  # fmt: skip
        Question(
            "ASPP vs no context module (DeepLabv3+, OS 16)",
            v3p,
            bare,
            "deeplabv3plus_nocontext (an extra run: make camvid ARGS=--all)",
            near_boundaries=False,
        ),  # fmt: skip
    ]


def _ci(iv: Interval | None) -> str:
    return DASH if iv is None else f"[{100 * iv.low:+.1f}, {100 * iv.high:+.1f}]"


def _ratio(block: Interval | None, frame: Interval | None) -> str:
    if block is None or frame is None or frame.high == frame.low:
        return DASH
    return f"{(block.high - block.low) / (frame.high - frame.low):.2f}×"


def finding(q: Question, v: Video, widths: list[tuple]) -> str:
    """One bullet: block-bootstrap intervals worded by the rule, the frame-level one beside; the
    (quantity, frame, block) intervals are appended to ``widths`` for the width table."""
    if q.a is None or q.b is None:
        return (
            f"- **{q.what}**: not measured yet (needs {q.needs} evaluated on test; see Run status)."
        )
    keys = dict(same_networks=q.same_networks, order=v.order)
    block, frame = Pair(q.a, q.b, boot=v.blocks, **keys), Pair(q.a, q.b, boot=v.frames, **keys)
    overall, overall_f = block.diff(), frame.diff()
    widths.append((q.what, "mIoU", overall_f, overall))
    parts = [
        f"test mIoU {block.text()} (frame-level interval {_ci(overall_f)}: the block interval "
        f"is {_ratio(overall, overall_f)} as wide)"
    ]
    if q.near_boundaries:
        for w in SHOWN_WIDTHS:
            parts.append(f"trimap mIoU within {w} px of a boundary {block.text(w)}")
            widths.append((q.what, f"trimap ≤{w} px", frame.diff(w), block.diff(w)))
        bf, bf_f = block.diff_bf(), frame.diff_bf()
        if bf is not None:
            parts.append(f"BF {interval_text(bf)}")
            widths.append((q.what, "BF", bf_f, bf))
        band = block.diff(SHOWN_WIDTHS[0])
        if overall is not None and band is not None:
            parts.append(
                f"gain within {SHOWN_WIDTHS[0]} px minus the overall gain "
                f"{interval_text(band.minus(overall))}"
            )
    return f"{block.heading(q.what)}: " + "; ".join(parts) + "."


def width_table(widths: list[tuple]) -> str:
    rows = [
        [what, quantity, _ci(frame), _ci(block), _ratio(block, frame)]
        for what, quantity, frame, block in widths
    ]
    header = ["comparison", "difference of", "frame-level 95 % CI", "block 95 % CI", "width ratio"]
    return markdown_table(header, rows)


def video_lines(v: Video) -> list[str]:
    counts = {s: v.sequences.count(s) for s in dict.fromkeys(v.sequences)}
    frames = ", ".join(f"{s}: {n} frames" for s, n in counts.items())
    lag1 = "n/a" if v.lag1 is None else f"{v.lag1:.2f}"
    return [
        f"The {len(v.order)} test frames are consecutive video frames ({frames}), so a frame "
        "says much of what its neighbours say. The intervals below come from a paired moving-block "
        f"bootstrap ({RESAMPLES} resamples, fixed seed): each resample covers every sequence with "
        f"blocks of **{v.block} consecutive frames** (random starts, wrapped within the sequence) "
        "and resamples each design's seeds. The block length is the smallest lag at which the "
        "autocorrelation of per-frame mIoU (pooled over both sequences and every evaluated run) "
        f"falls below 0.2; its lag-1 autocorrelation is {lag1}. The frame-level interval "
        "(frames drawn as if independent) is given beside each finding and in the table below: "
        "the ratio says how much too narrow it would be. A direction (higher / lower) is stated "
        "only when the block interval excludes 0 and both designs have at least two seeds; with "
        "one seed the seed-to-seed spread is unmeasured and no direction is claimed.",
    ]
