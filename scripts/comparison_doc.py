"""docs/comparison.md from comparison groups: provenance, tables, plots, and findings computed from
the numbers (never typed in by hand). Used by scripts/run_comparison.py; lives beside it because
writing this one document is the script's job, not the library's.

Every finding names the design rows it compares and gives the difference with its 95 % interval
(``segkit.compare.stats``: a paired two-level bootstrap over validation images and seeds). A
direction ("higher", "lower") is stated only when the interval excludes 0 and both rows have at least
two seeds; otherwise the text says "no measurable difference" or that one seed measures no spread.
A finding whose rows are missing is left out.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segkit.compare.groups import DesignGroup, find_group
from segkit.compare.stats import (
    RESAMPLES,
    Bootstrap,
    Interval,
    background_floor,
    verdict,
    welch_interval,
)
from segkit.compare.table import aspp_at_crop, size_text, trimap_widths
from segkit.runs import builder_name

if TYPE_CHECKING:  # the task module imports torch; the doc's prose needs none of it
    from segkit.tasks.compare import CompareResult

DLP = "DeepLabv3+"
ASPP = {"model.context": ("aspp", "aspp")}


def _pts(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def mean_text(g: DesignGroup) -> str:
    s = g.miou
    if s is None:
        return "n/a"
    return (
        f"{100 * s.mean:.1f} ± {100 * s.std:.1f} %"
        if s.std is not None
        else f"{_pts(s.mean)} (1 seed)"
    )


def _ratio(a: Any, b: Any) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}x"


def interval_text(iv: Interval, scale: float = 100.0, unit: str = "points") -> str:
    """The wording rule of the module docstring applied to one interval."""
    d = (
        f"Δ = {scale * iv.delta:+.1f} {unit}, 95 % CI [{scale * iv.low:+.1f}, "
        f"{scale * iv.high:+.1f}]"
    )
    word = verdict(iv)
    if word in ("higher", "lower"):
        return f"{word} ({d})"
    if word == "none":
        return f"no measurable difference ({d})"
    return f"{d} over images only: one seed, so seed-to-seed variation is unmeasured and no direction is claimed"


def _stacks(a: DesignGroup, b: DesignGroup, width: int | None, order: Sequence[str] | None = None):
    """Per-seed (N, K, K) stacks of both groups on the same image order (``order``, else the first
    evaluation's), or None when a side lacks per-image matrices, the band, or the two were
    evaluated on different images. ``width`` ``"BF"``: per-seed (N,) boundary F1 arrays."""
    ca, cb = a.image_confusion, b.image_confusion
    if not ca or not cb:
        return None
    ids = tuple(order) if order is not None else ca[0].ids
    if any(set(c.ids) != set(ids) or len(c.ids) != len(ids) for c in [*ca, *cb]):
        return None
    if width == "BF" and any(c.bf is None for c in [*ca, *cb]):
        return None
    if width not in (None, "BF") and any(width not in c.widths for c in [*ca, *cb]):
        return None

    def ordered(c):
        index = {image: n for n, image in enumerate(c.ids)}
        values = c.bf if width == "BF" else c.band(width)
        return values[np.array([index[i] for i in ids])]

    return [ordered(c) for c in ca], [ordered(c) for c in cb]


class Pair:
    """One comparison A vs B: differences of mIoU overall and per band (and of BF), from one
    bootstrap: ``boot`` when given (e.g. a block bootstrap over video frames, drawn for the images
    in ``order``), else a frame-level one over the images of A's first evaluation."""

    def __init__(
        self,
        a: DesignGroup,
        b: DesignGroup,
        *,
        same_networks: bool = False,
        boot: Bootstrap | None = None,
        order: Sequence[str] | None = None,
    ) -> None:
        self.a, self.b, self.order = a, b, order
        stacks = _stacks(a, b, None, order)
        self.boot = (boot or Bootstrap(len(stacks[0][0]))) if stacks else None
        # The same trained networks (another inference stride): their seeds are resampled jointly.
        self.keys = ("joint", "joint") if same_networks else (a.label, b.label)

    def diff(self, width: int | None = None) -> Interval | None:
        """mIoU(A) - mIoU(B) overall (``width`` None) or within ``width`` px of a boundary."""
        stacks = _stacks(self.a, self.b, width, self.order)
        if self.boot is None or stacks is None:
            return None
        return self.boot.difference(*stacks, keys=self.keys)

    def diff_bf(self) -> Interval | None:
        """BF(A) - BF(B) (SegNet's boundary F1, a mean over images), None without per-image BF."""
        stacks = _stacks(self.a, self.b, "BF", self.order)
        if self.boot is None or stacks is None:
            return None
        return self.boot.difference(*stacks, keys=self.keys, score="BF")

    def text(self, width: int | None = None) -> str:
        iv = self.diff(width)
        if iv is not None:
            return interval_text(iv)
        if width is None:
            sa, sb = self.a.miou, self.b.miou
        else:
            sa, sb = self.a.trimap(width), self.b.trimap(width)
        delta = "n/a" if sa is None or sb is None else f"{100 * (sa.mean - sb.mean):+.1f} points"
        return f"Δ = {delta} (no per-image confusion matrices: no interval, no direction claimed)"

    def heading(self, what: str) -> str:
        return (
            f"- **{what}**: {self.a.label} ({mean_text(self.a)}, {self.a.n} seed(s)) vs "
            f"{self.b.label} ({mean_text(self.b)}, {self.b.n} seed(s))"
        )


def boundary(pair: Pair, widths: list[int], what: str) -> str:
    """Overall and near-boundary mIoU differences of a pair, and whether the gain is larger near
    boundaries (the contrast band - overall, from the same resamples)."""
    parts = [f"overall mIoU {pair.text()}"]
    for w in widths:
        parts.append(f"within {w} px of a boundary {pair.text(w)}")
    if widths:
        overall, band = pair.diff(), pair.diff(widths[0])
        if overall is not None and band is not None:
            parts.append(
                f"gain within {widths[0]} px minus the overall gain: "
                f"{interval_text(band.minus(overall))}"
            )
    return f"{pair.heading(what)}: " + "; ".join(parts) + "."


def output_stride(groups: Sequence[DesignGroup]) -> list[str]:
    out = []
    fine, coarse = find_group(groups, DLP, 8, where=ASPP), find_group(groups, DLP, 16, where=ASPP)
    if fine and coarse:
        a, b = fine.first("analysis"), coarse.first("analysis")
        la = fine.summary(lambda r: (r.analysis or {}).get("latency_ms"))
        lb = coarse.summary(lambda r: (r.analysis or {}).get("latency_ms"))
        latency = _ratio(la and la.mean, lb and lb.mean)
        out.append(
            f"{Pair(fine, coarse).heading('Output stride 8 vs 16, trained')}: mIoU "
            f"{Pair(fine, coarse).text()}, for {_ratio(a.get('macs'), b.get('macs'))} the "
            f"multiply-adds (exact) and {latency} the measured CPU latency (mean over seeds)."
        )
    re_dilated = find_group(groups, DLP, 16, 8, where=ASPP)
    if re_dilated and coarse:
        same = re_dilated.seeds == coarse.seeds
        pair = Pair(re_dilated, coarse, same_networks=same)
        out.append(
            f"{pair.heading('Output stride 16 → 8 at inference only')} (same weights, backbone "
            f"re-dilated, ASPP rates doubled; seeds resampled jointly): mIoU {pair.text()}."
        )
    return out


def receptive_fields(groups: Sequence[DesignGroup]) -> list[str]:
    """Theoretical RF per output stride (deterministic) and the ERF r90 over seeds."""
    rows = [g for g in groups if g.first("analysis") and g.output_stride == g.stride]
    if not rows:
        return []
    by_os: dict[tuple[str, str | None], dict[int, Any]] = {}
    for g in rows:
        key = (g.design, g.backbone)
        by_os.setdefault(key, {})[g.output_stride] = g.first("analysis").get("backbone_rf")
    rf = "; ".join(
        f"{d} / {b}: " + ", ".join(f"OS {os_} {v} px" for os_, v in sorted(vals.items()))
        for (d, b), vals in by_os.items()
    )
    erf = "; ".join(
        f"{g.label}: r90 {_summary_px(g, 'erf')} trained, {_summary_px(g, 'erf_init')} at init"
        for g in rows
    )
    size = size_text(rows[0].first("analysis").get("erf_input_size"))
    lines = [f"- **Receptive fields**: theoretical RF of the backbone output, traced: {rf}."]
    lines.append(
        f"- **Effective receptive field** (r90 on {size} px inputs, mean ± std over seeds): {erf}."
    )
    fine, coarse = find_group(groups, DLP, 8, where=ASPP), find_group(groups, DLP, 16, where=ASPP)
    if fine and coarse:
        r90 = [
            [(r.analysis or {}).get("erf", {}).get("r90") for r in g.runs] for g in (fine, coarse)
        ]
        found = welch_interval(*[[x for x in v if x is not None] for v in r90])
        if found:
            delta, low, high = found
            word = "differs" if low > 0 or high < 0 else "shows no measurable difference"
            lines.append(
                f"- **ERF across output stride** ({fine.label} vs {coarse.label}): the trained "
                f"ERF r90 {word} (Δ = {delta:+.1f} px, 95 % Welch interval over seeds "
                f"[{low:+.1f}, {high:+.1f}]) while the backbone's theoretical RF is the same "
                "at every output stride (dilation keeps it)."
            )
    return lines


def _summary_px(g: DesignGroup, key: str) -> str:
    s = g.summary(lambda r: ((r.analysis or {}).get(key) or {}).get("r90"))
    if s is None:
        return "n/a"
    return f"{s.mean:.0f} ± {s.std:.0f} px" if s.std is not None else f"{s.mean:.0f} px (1 seed)"


def aspp_lines(groups: Sequence[DesignGroup]) -> str | None:
    items = []
    for g in groups:
        found = aspp_at_crop(g)
        if found:
            crop, side, rates, dead = found
            items.append(
                f"{g.label}: {crop} px crop -> {side}x{side} map, rates {rates}, "
                f"{len(dead)} of {len(rates)} degenerate"
            )
    if not items:
        return None
    return (
        "- **ASPP at the training crop**: a 3x3 atrous branch whose rate is at least the "
        "feature-map side reads only zero padding off its centre tap, i.e. acts as a 1x1 conv "
        "(DeepLabv3, sec. 3.3): " + "; ".join(items) + "."
    )


def cost(groups: Sequence[DesignGroup]) -> str | None:
    fcn, dl = find_group(groups, "FCN-8s"), find_group(groups, DLP, 16, where=ASPP)
    if not (fcn and dl and fcn.first("analysis") and dl.first("analysis")):
        return None
    a, b = dl.first("analysis"), fcn.first("analysis")
    lat = [g.summary(lambda r: (r.analysis or {}).get("latency_ms")) for g in (dl, fcn)]
    text = (
        f"- **Cost**: {dl.label} has {_ratio(a.get('params'), b.get('params'))} the parameters "
        f"and {_ratio(a.get('macs'), b.get('macs'))} the multiply-adds of {fcn.label} (at "
        f"{size_text(a.get('input_size'))} px; exact counts)"
    )
    if all(lat):
        spread = [f"{s.mean:.1f} ± {s.std or 0:.1f} ms" for s in lat]
        text += (
            f"; batch-1 CPU latency {spread[0]} vs {spread[1]} (each seed's median of its timed "
            "runs, on a machine shared with other work: read the ratio, not the milliseconds)"
        )
    return text + "."


def means(groups: Sequence[DesignGroup]) -> str | None:
    rows = [g for g in groups if g.miou is not None]
    if not rows:
        return None
    items = "; ".join(f"{g.label}: {mean_text(g)}" for g in rows)
    text = f"- **mIoU** (evaluation on whole validation images, mean ± std over seeds): {items}."
    cm = next((g.first("eval").get("confusion_matrix") for g in rows if g.first("eval")), None)
    floor = background_floor([sum(row) for row in cm]) if cm else None
    if floor is not None:
        text += f" Labelling every pixel background would score {_pts(floor)} (the floor)."
    return text


def findings(groups: Sequence[DesignGroup]) -> list[str]:
    """Bullets of measured comparisons (see the module docstring)."""
    widths = trimap_widths(groups)[:1]
    fcn, fcn32 = find_group(groups, "FCN-8s"), find_group(groups, "FCN-32s")
    v3 = find_group(groups, "DeepLabv3", 16, where=ASPP)
    v3p = find_group(groups, DLP, 16, where=ASPP)
    bare = find_group(groups, DLP, 16, where={"model.context": ("none", "aspp")})
    lines = [means(groups)]
    if fcn and v3p:
        lines.append(boundary(Pair(v3p, fcn), widths, "FCN vs DeepLabv3+"))
    if fcn and fcn32:
        lines.append(boundary(Pair(fcn, fcn32), widths, "FCN skip connections (8s vs 32s)"))
    if v3 and v3p:
        lines.append(boundary(Pair(v3p, v3), widths, "The DeepLabv3+ decoder (vs DeepLabv3)"))
    if v3p and bare:
        lines.append(
            boundary(Pair(v3p, bare), widths, "ASPP with image pooling vs no context module")
        )
    lines += output_stride(groups)
    lines += receptive_fields(groups)
    lines += [aspp_lines(groups), cost(groups)]
    return [line for line in lines if line] or ["- No row has both a design and its figures."]


def recipe_lines(groups: Sequence[DesignGroup]) -> list[str]:
    """The training recipe shared by the runs (from the first training config found)."""
    cfg = next((g.config for g in groups if g.config and g.first("train")), None)
    if not cfg:
        return []
    data, trainer, module = cfg.get("data", {}), cfg.get("trainer", {}), cfg.get("module", {})
    synth = data.get("synthetic") or {}
    bb = cfg.get("backbone", {})
    width = f" (width {bb['width_mult']})" if "width_mult" in bb else ""
    seeds = sorted({s for g in groups for s in g.seeds if s is not None})
    return [
        f"- Training recipe (every run): data={data.get('dataset')} "
        f"({synth.get('num_train', '?')} train / {synth.get('num_val', '?')} val images, "
        f"{synth.get('min_size', '?')}-{synth.get('max_size', '?')} px), crop "
        f"{data.get('crop_size')} px, scale range {data.get('scale_range')}, batch "
        f"{data.get('batch_size')}, {trainer.get('max_steps')} steps, "
        f"{builder_name(module.get('optimizer')) or '?'} "
        f"lr {module.get('lr')}, backbone {builder_name(bb) or '?'}"
        f"{width} from random init; seeds {', '.join(map(str, seeds))}",
    ]


#: The checkout this script lives in: paths below it are shown relative to it (the doc is read in
#: other checkouts, where the absolute path of the machine that ran the comparison means nothing).
CHECKOUT = Path(__file__).resolve().parents[1]


def _in_checkout(text: Any) -> str:
    """``text`` with this checkout's absolute path prefix removed (``<root>/logs/x`` -> ``logs/x``)."""
    return str(text).replace(f"{CHECKOUT}/", "")


#: run_comparison.py options that only say where outputs go: a reader reruns without them (the
#: defaults: a fresh logs/comparison-<scale>/<time>/ and docs/comparison.md), so the doc leaves
#: them out of its command line, and with them the temporary paths of the machine that ran it.
LOCATION_OPTIONS = ("--out-root", "--doc", "--assets", "--reuse")


def user_command(command: str) -> str:
    """``command`` without :data:`LOCATION_OPTIONS` (``--doc X`` and ``--doc=X`` alike)."""
    words, kept = shlex.split(command), []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in LOCATION_OPTIONS:
            skip = True
        elif not word.startswith(tuple(f"{o}=" for o in LOCATION_OPTIONS)):
            kept.append(word)
    return shlex.join(kept)


def write_comparison_doc(
    result: CompareResult, *, doc: str | Path, provenance: dict[str, Any]
) -> Path:
    """docs/comparison.md: how it was made, the tables and plots, what they show and what not.

    ``provenance``: ``command``, ``date``, ``machine``, ``wall_s``, ``run_root`` of the run (and
    ``experiment``, ``designs``, ``notes`` -- deviations from the command, added by hand to the
    run root's record -- when present).
    """
    doc = Path(doc)
    command = user_command(_in_checkout(provenance["command"]))
    run_root = _in_checkout(provenance["run_root"])
    parts = [
        "# FCN vs DeepLab on the synthetic set",
        "",
        "_Generated by `scripts/run_comparison.py`: do not edit by hand; rerun the command below._",
        "",
        "## How this was produced",
        "",
        f"- Command: `{command}` (from the repository root)",
        f"- Date: {provenance['date']}; wall time {provenance['wall_s'] / 60:.1f} min",
        f"- Machine: {provenance['machine']}",
        f"- Run folders: `{run_root}` (compare them again with "
        f"`python scripts/compare.py {run_root}`)",
        *recipe_lines(result.groups),
        *_design_lines(provenance),
        *[f"- Note: {note}" for note in provenance.get("notes") or []],
        "",
        "## Results",
        "",
        READING.format(resamples=RESAMPLES),
        "",
        result.section(doc.parent),
        "## What it shows",
        "",
        *findings(result.groups),
        "",
        CANNOT_SHOW,
    ]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(parts).rstrip() + "\n")
    return doc


READING = """\
How to read the tables: every row is one design; its runs differ only in the training seed and each
cell is the **mean ± standard deviation over seeds** (`(n=1)`: one seed, no spread measured).
**mIoU** is `scripts/evaluate.py` on the best checkpoint, whole validation images (no crop); **val
mIoU in training** is the best of the validations during training; **trimap mIoU ≤w px** counts only
the pixels within w px of an object boundary (DeepLabv3+ fig. 5); **OS 16 → 8 (eval)** is the
OS-16-trained network re-dilated to output stride 8 at inference; **ASPP rates at the crop** flags
a row whose atrous branches are degenerate at the training crop. **RF** is the theoretical receptive
field traced through the real modules ("global": an image-pooling branch sees the whole input);
**ERF r50 / r90** are the radii holding 50 / 90 % of the input-gradient mass of the centre output
(Luo et al. 2016). Cost (params, multiply-adds, batch-1 CPU latency, peak memory) is measured at the
training crop.

How differences are judged: each finding gives Δ = mean over A's seeds − mean over B's seeds and a
95 % interval from a paired two-level bootstrap ({resamples} resamples, fixed seed): each resample
draws validation images with replacement (the same images for both designs, whose per-image
confusion matrices `per_image_confusion.npz` are summed and scored) and, per design, seeds with
replacement (the seed-to-seed spread). A direction is stated only when the interval excludes 0 and
both designs have at least two seeds."""


def _design_lines(provenance: dict[str, Any]) -> list[str]:
    designs = provenance.get("designs") or {}
    if not designs:
        return []
    experiment = provenance.get("experiment", "quickstart")
    lines = [f"- Designs (training overrides on top of `experiment={experiment}`):"]
    return lines + [f"  - `{name}`: `{' '.join(over)}`" for name, over in designs.items()]


CANNOT_SHOW = """## What it cannot show (without PASCAL VOC and a GPU)

- **Absolute accuracy against published figures.** The synthetic set (shape x colour-family
  classes on textures shared with the background) is not VOC 2012; its mIoU is not comparable with
  any paper's table. Only the direction of effects can be read, only for this data, and only where
  the interval says so.
- **Pretrained backbones.** Nothing is downloaded here, so every backbone starts from random
  initialisation; the papers' results rest on ImageNet (and for DeepLabv3+ also COCO / JFT)
  pretraining, which changes both the absolute numbers and, often, the size of the gaps.
- **Long schedules.** The recipe above is minutes of CPU training with a narrow backbone; the
  DeepLab papers train tens of thousands of iterations on 513 px crops. What a design gains from a
  long schedule, and the ranking at convergence, is not measured here.
- **Other validation sets.** The intervals cover resampling this validation set's images and the
  seeds run here; a different data distribution is outside them.
- **GPU cost.** Latency is batch-1 CPU time on a shared machine; on a GPU the ranking by
  multiply-adds and by latency can differ (dilated convolutions and large feature maps are
  memory-bound there), and multi-scale + flip inference was not timed.
"""
