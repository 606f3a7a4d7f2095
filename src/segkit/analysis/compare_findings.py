"""Sentences for docs/comparison.md computed from the comparison records (never typed in by hand).

Every finding names the rows it compares and gives the numbers; a finding whose rows are missing
is left out. Directions ("higher", "lower") follow the sign of the measured difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segkit.analysis.compare import Record
from segkit.analysis.compare_table import trimap_at, trimap_widths

DLP = "DeepLabv3+"


def pick(
    records: Sequence[Record], design: str, trained: int | None = None, used: int | None = None
) -> Record | None:
    """The first row of ``design`` (``Record.design``: "FCN-8s", "DeepLabv3+", ...) trained at
    ``trained`` (any when None), inferring at ``used`` (default: its trained stride), with a mIoU."""
    for r in records:
        if r.design != design or r.miou is None or (trained and r.output_stride != trained):
            continue
        if r.stride == (used or r.output_stride):
            return r
    return None


def _pts(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "n/a"
    d = 100 * (a - b)
    word = "higher" if d > 0 else "lower" if d < 0 else "equal"
    return f"{d:+.1f} points, {word}"


def _ratio(a: Any, b: Any) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}x"


def background_floor(confusion: Sequence[Sequence[int]]) -> float | None:
    """mIoU of predicting class 0 (background) everywhere, from an evaluation's confusion matrix
    (rows = ground truth): background IoU = its share of the pixels, every other present class 0."""
    gt = [sum(row) for row in confusion]
    total, present = sum(gt), sum(1 for n in gt if n > 0)
    return None if not total or not present else gt[0] / total / present


def ranking(records: Sequence[Record]) -> str | None:
    rows = sorted((r for r in records if r.miou is not None), key=lambda r: -r.miou)
    if not rows:
        return None
    items = "; ".join(f"{r.label}: {_pts(r.miou)}" for r in rows)
    text = f"- **Ranking by mIoU** (evaluation on whole validation images): {items}."
    cm = next(
        (r.eval["confusion_matrix"] for r in rows if (r.eval or {}).get("confusion_matrix")), None
    )
    floor = background_floor(cm) if cm else None
    if floor is not None:
        text += f" Labelling every pixel background would score {_pts(floor)} (the floor)."
    return text


def boundary(a: Record, b: Record, widths: list[int], what: str) -> str:
    """mIoU and trimap mIoU of row ``a`` against row ``b``."""
    parts = [f"overall {_pts(a.miou)} vs {_pts(b.miou)} ({_delta(a.miou, b.miou)})"]
    for w in widths:
        ta, tb = trimap_at(a, w), trimap_at(b, w)
        parts.append(f"within {w} px of a boundary {_pts(ta)} vs {_pts(tb)} ({_delta(ta, tb)})")
    gaps = [(r, trimap_at(r, widths[0]) if widths else None) for r in (a, b)]
    gap = "; ".join(
        f"{r.label} loses {100 * (r.miou - t):.1f} points in the {widths[0]} px band"
        for r, t in gaps
        if t is not None
    )
    return f"- **{what}**: {a.label} vs {b.label}: {'; '.join(parts)}." + (
        f" Boundary penalty: {gap}." if gap else ""
    )


def output_stride(records: Sequence[Record]) -> list[str]:
    out = []
    fine, coarse = pick(records, DLP, 8), pick(records, DLP, 16)
    if fine and coarse:
        a, b = fine.analysis or {}, coarse.analysis or {}
        out.append(
            f"- **Output stride, trained**: {fine.label} vs {coarse.label}: mIoU "
            f"{_pts(fine.miou)} vs {_pts(coarse.miou)} ({_delta(fine.miou, coarse.miou)}) for "
            f"{_ratio(a.get('macs'), b.get('macs'))} the multiply-adds and "
            f"{_ratio(a.get('latency_ms'), b.get('latency_ms'))} the CPU latency."
        )
    re_dilated = pick(records, DLP, 16, 8)
    if re_dilated and coarse:
        out.append(
            f"- **Output stride, at inference only** (same weights, backbone re-dilated, ASPP rates "
            f"doubled): {re_dilated.label} {_pts(re_dilated.miou)} vs {_pts(coarse.miou)} at the "
            f"trained OS ({_delta(re_dilated.miou, coarse.miou)})."
        )
    return out


def receptive_fields(records: Sequence[Record]) -> str | None:
    """Theoretical RF of the logits vs the input, and the ERF r90 at init and trained, per row."""
    rows = [r for r in records if r.analysis and r.output_stride == r.stride]
    if not rows:
        return None
    items, beyond, erf_inside = [], 0, 0
    for r in rows:
        a = r.analysis
        rf, size = a.get("model_rf"), a.get("input_size") or 0
        beyond += rf == "global" or (isinstance(rf, int | float) and rf >= size)
        rf = "global (image pooling)" if rf == "global" else f"{rf} px"
        erf, init = a.get("erf") or {}, a.get("erf_init") or {}
        erf_size = a.get("erf_input_size") or size
        erf_inside += bool(erf) and erf["r90"] < erf_size / 2
        grow = ""
        if erf and init:
            grow = f", ERF r90 {init['r90']:.0f} px at init -> {erf['r90']:.0f} px trained"
        elif erf:
            grow = f", ERF r90 {erf['r90']:.0f} px"
        items.append(f"{r.label}: logits RF {rf}{grow}")
    size = rows[0].analysis.get("input_size")
    erf_size = rows[0].analysis.get("erf_input_size") or size
    text = f"- **Receptive fields** (RF at {size} px, ERF on {erf_size} px inputs): "
    text += "; ".join(items) + "."
    text += (
        f" The theoretical RF of the logits covers the whole input in {beyond} of {len(rows)} "
        f"rows, while the ERF radius holding 90 % of the gradient is under half the ERF input side "
        f"in {erf_inside} of {len(rows)}."
    )
    if beyond and erf_inside:
        text += " The theoretical RF bounds the context; the ERF is the part the network uses."
    return text


def aspp_at_crop(records: Sequence[Record]) -> str | None:
    """Which ASPP rates see nothing but padding off-centre at the training crop (DeepLabv3 sec. 3.3:
    a 3x3 atrous conv whose rate reaches past the feature map degenerates to a 1x1 conv)."""
    items = []
    for r in records:
        cfg = r.config or {}
        model, crop = cfg.get("model") or {}, (cfg.get("data") or {}).get("crop_size")
        if r.model not in ("deeplabv3", "deeplabv3plus") or not crop or r.stride != r.output_stride:
            continue
        if model.get("context", "aspp") != "aspp" or not r.output_stride:
            continue
        side = -(-int(crop) // r.output_stride)  # ceil: padded conv stem
        rates = [int(x * 16 / r.output_stride) for x in model.get("aspp_rates") or []]
        dead = [x for x in rates if x >= side]
        items.append(
            f"{r.label}: {crop} px crop -> {side}x{side} map, rates {rates}, "
            f"{len(dead)} of {len(rates)} degenerate"
        )
    if not items:
        return None
    return (
        "- **ASPP at the training crop**: a 3x3 atrous branch whose rate is at least "
        "the feature-map side reads only zero padding off its centre tap, i.e. acts as a 1x1 conv "
        "(DeepLabv3, sec. 3.3): " + "; ".join(items) + "."
    )


def cost(records: Sequence[Record]) -> str | None:
    fcn, dl = pick(records, "FCN-8s"), pick(records, DLP, 16)
    if not (fcn and dl and fcn.analysis and dl.analysis):
        return None
    a, b = dl.analysis, fcn.analysis
    text = (
        f"- **Cost**: {dl.label} has {_ratio(a.get('params'), b.get('params'))} the parameters, "
        f"{_ratio(a.get('macs'), b.get('macs'))} the multiply-adds and "
        f"{_ratio(a.get('latency_ms'), b.get('latency_ms'))} the batch-1 CPU latency of "
        f"{fcn.label} (at {a.get('input_size')} px)."
    )
    spread = latency_spread(records)
    if spread:
        ratio, x, y = spread
        text += (
            f" Latency noise on this machine: {x.label} and {y.label} cost the same multiply-adds "
            f"(within 5 %) yet measured {ratio:.2f}x apart, so latency gaps below that are noise."
        )
    return text


def latency_spread(records: Sequence[Record]) -> tuple[float, Record, Record] | None:
    """The largest latency ratio between two rows whose multiply-adds agree within 5 % (a
    measured noise level of the latency column), or None when no such pair exists."""
    rows = [r for r in records if (r.analysis or {}).get("latency_ms") and r.analysis.get("macs")]
    best = None
    for i, x in enumerate(rows):
        for y in rows[i + 1 :]:
            mx, my = x.analysis["macs"], y.analysis["macs"]
            if abs(mx - my) > 0.05 * max(mx, my):
                continue
            lx, ly = x.analysis["latency_ms"], y.analysis["latency_ms"]
            ratio = max(lx, ly) / min(lx, ly)
            if best is None or ratio > best[0]:
                best = (ratio, x, y) if lx >= ly else (ratio, y, x)
    return best


def findings(records: Sequence[Record]) -> list[str]:
    """Bullets of measured comparisons (see the module docstring)."""
    widths = trimap_widths(records)
    lines = [ranking(records)]
    fcn, v3, v3p = pick(records, "FCN-8s"), pick(records, "DeepLabv3", 16), pick(records, DLP, 16)
    if fcn and v3p:
        lines.append(boundary(v3p, fcn, widths, "FCN vs DeepLabv3+"))
    fcn32 = pick(records, "FCN-32s")
    if fcn and fcn32:
        lines.append(boundary(fcn, fcn32, widths, "FCN skip connections (8s vs 32s)"))
    if v3 and v3p:
        lines.append(boundary(v3p, v3, widths, "The DeepLabv3+ decoder (vs DeepLabv3, same ASPP)"))
    lines += output_stride(records)
    lines += [receptive_fields(records), aspp_at_crop(records), cost(records)]
    return [line for line in lines if line] or ["- No row has both a design and its figures."]


def recipe_lines(records: Sequence[Record]) -> list[str]:
    """The training recipe shared by the runs (from the first training config found)."""
    cfg = next((r.config for r in records if r.config and r.train), None)
    if not cfg:
        return []
    data, trainer, module = cfg.get("data", {}), cfg.get("trainer", {}), cfg.get("module", {})
    synth = data.get("synthetic") or {}
    bb = cfg.get("backbone", {})
    width = f" (width {bb['width_mult']})" if "width_mult" in bb else ""
    return [
        f"- Training recipe (every run): data={data.get('dataset')} "
        f"({synth.get('num_train', '?')} train / {synth.get('num_val', '?')} val images, "
        f"{synth.get('min_size', '?')}-{synth.get('max_size', '?')} px), crop "
        f"{data.get('crop_size')} px, scale range {data.get('scale_range')}, batch "
        f"{data.get('batch_size')}, {trainer.get('max_steps')} steps, {module.get('optimizer')} "
        f"lr {module.get('lr')}, backbone {str(bb.get('_target_', '?')).rsplit('.', 1)[-1]}"
        f"{width} from random init, seed {cfg.get('seed')}",
    ]
