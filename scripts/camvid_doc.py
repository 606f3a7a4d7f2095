"""docs/camvid.md from the run root of scripts/run_camvid.py: run status, tables, learning curves,
SegNet's published rows and findings with intervals that respect the video (never typed by hand).

Works on a partial root (``make camvid`` is resumable and rewrites the doc after each call): runs
not started, not finished or not evaluated are listed, and only test evaluations enter the tables
and findings. The findings follow the wording rule of ``comparison_doc`` (``interval_text``: a
direction only when the interval excludes 0 and both sides have at least two seeds).

Test frames are consecutive frames of two videos, so neighbouring frames are not independent: the
intervals come from a moving-block bootstrap within each sequence (``segkit.compare.stats``), its
block length chosen from the autocorrelation of per-frame mIoU; each finding also gives the
frame-level interval (frames resampled as if independent) to show how much narrower that would be
(``camvid_findings``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from camvid_findings import SHOWN_WIDTHS, finding, questions, video, video_lines, width_table
from run_camvid import CORE_RUNS, DESIGNS, PLAN, STEPS_LOG, run_dir, run_state
from segkit.compare.curves import METRICS_CSV, Plateau, plateau, read_curve
from segkit.compare.groups import DesignGroup, group_by_seed
from segkit.compare.plots import plot_all
from segkit.compare.records import build_records, find_run_folders
from segkit.compare.table import (
    DASH,
    markdown,
    markdown_table,
    num,
    size_text,
    sort_records,
    spread,
)

#: SegNet (Badrinarayanan et al., TPAMI 2017) Table 1: G, C, mIoU, BF (%), trained from scratch
#: on the same 367 CamVid train frames at 360x480, evaluated on the same 233 test frames, on a GPU.
#: As printed there (strings: the paper's digits).
SEGNET_ROWS = (
    ("SegNet-Basic", "82.7", "62.0", "47.7", "35.78"),
    ("FCN-Basic", "81.7", "62.4", "47.3", "38.11"),
)
#: The issue's moonshot: this test mIoU for FCN-8s and DeepLabv3+, each run within this wall time.
MOONSHOT_MIOU, MOONSHOT_MIN = 0.50, 60
NAMES = {"fcn32s": "FCN-32s", "fcn8s": "FCN-8s", "deeplabv3": "DeepLabv3 (OS 16)"}
NAMES |= {"deeplabv3plus": "DeepLabv3+ (OS 16)", "deeplabv3plus_nocontext": "DeepLabv3+, no ASPP"}


def groups_of(root: Path, plan: Sequence[tuple[str, int]]) -> list[DesignGroup]:
    """Design rows over seeds from the plan's run folders, test evaluations only (a run trained
    but not evaluated, or not finished, is in the status table, not here)."""
    dirs = [run_dir(root, d, s) for d, s in plan if run_dir(root, d, s).is_dir()]
    if not dirs:
        return []
    try:
        records = build_records(find_run_folders(dirs))
    except ValueError:  # folders without any run file yet
        return []
    return group_by_seed(sort_records([r for r in records if r.eval is not None]))


def steps_log(root: Path) -> list[dict]:
    path = root / STEPS_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_wall_s(steps: Sequence[dict], design: str, seed: int) -> float | None:
    """Wall time of every training step of one run (its resumes included), None if none ran."""
    walls = [s["wall_s"] for s in steps if s.get("step") == f"train {design} seed {seed}"]
    return sum(walls) if walls else None


#: A training step whose 15-minute load average at its end exceeds this shared the machine: the
#: run itself keeps both cores busy (load ~2); the moonshot's time is for a quiet machine.
QUIET_LOAD = 2.5


def train_loads(steps: Sequence[dict], design: str, seed: int) -> list[float]:
    """The 15-minute load average at the end of each training step of one run (its resumes
    included), read from the step log's machine line (``... load 1.6, 2.0, 2.1 (1/5/15 min)``)."""
    loads = []
    for s in steps:
        if s.get("step") != f"train {design} seed {seed}":
            continue
        try:
            loads.append(float(s["machine"].split("load ")[-1].split(",")[2].split()[0]))
        except (KeyError, IndexError, ValueError):
            continue  # a line without a load: nothing to say about it
    return loads


#: A run whose CSV log starts later than this step lost its beginning (the first rows are logged
#: every ``trainer.log_every_n_steps``: 25 in the protocol).
LOST_LOG_STEP = 100


def _load(loads: Sequence[float]) -> str:
    return DASH if not loads else ", ".join(f"{x:.1f}" for x in loads)


def run_curve(root: Path, design: str, seed: int) -> tuple[list, list, Plateau | None] | None:
    path = run_dir(root, design, seed) / METRICS_CSV
    if not path.is_file():
        return None
    curve = read_curve(path)
    return curve.loss, curve.val, plateau(curve.val)


def _minutes(seconds: float | None) -> str:
    return DASH if seconds is None else f"{seconds / 60:.0f}"


def _flat(flat: Plateau | None) -> str:
    if flat is None:
        return DASH
    if flat.step is None:
        return f"still climbing at step {flat.last_step}"
    return f"flat from step {flat.step} of {flat.last_step}"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def status_table(root: Path, plan: Sequence[tuple[str, int]], steps: list[dict]) -> list[str]:
    core = set(plan)
    rows = []
    for design, seed in PLAN:
        state = run_state(root, design, seed)
        found = run_curve(root, design, seed)
        logged = max((step for step, _ in found[0]), default=None) if found else None
        if state.startswith("resumable") and logged is not None:
            state += f"; its CSV log reaches step {logged} (a training may be running now)"
        elif state == "aborted":  # a folder without a checkpoint: running, or died before one
            state = "started, no checkpoint yet (running now, or make camvid starts it again)"
        if (design, seed) not in core:
            state += " (extra run: make camvid ARGS=--all)"
        flat = _flat(found[2] if found else None)
        first = min((step for step, _ in found[0]), default=0) if found else 0
        if first > LOST_LOG_STEP:
            flat += (
                f" (its log starts at step {first}: Lightning's CSV logger dropped the rows "
                "before a resume; segkit keeps them since 2026-12-08)"
            )
        wall = _minutes(train_wall_s(steps, design, seed))
        load = _load(train_loads(steps, design, seed))
        rows.append([NAMES[design], str(seed), state, wall, load, flat])
    header = [
        "design", "seed", "state", "train wall (min)", "load at its end (15 min)", "val mIoU curve",
    ]  # fmt: skip
    return [markdown_table(header, rows)]


def provenance(root: Path, steps: list[dict]) -> list[str]:
    if not steps:
        return ["- No step has run yet (no `steps.jsonl` in the run root)."]
    machines = list(dict.fromkeys(s.get("machine", "?").split(", load")[0] for s in steps))
    total = sum(s.get("wall_s", 0) for s in steps)
    failed = [s["step"] for s in steps if s.get("rc") not in (0, None)]
    lines = [
        "- Command: `make camvid` (= `python scripts/run_camvid.py`; resumable: run it again)",
        f"- Dates: first step {steps[0]['date']}, last step {steps[-1]['date']}",
        f"- Wall time of all steps: {_duration(total)} ({len(steps)} steps)",
        f"- Machine: {'; '.join(machines)} (load at the last step: "
        f"{steps[-1].get('machine', '?').split('load ')[-1]})",
        f"- Run root: `{root.name}/` (each step's command in `{STEPS_LOG}`)",
    ]
    if failed:
        lines.append(f"- Steps that ended with an error or were stopped: {', '.join(failed)}")
    return lines


def recipe(groups: Sequence[DesignGroup]) -> list[str]:
    cfg = next((g.config for g in groups if g.config), None)
    if not cfg:
        return []
    data, trainer, module = cfg.get("data", {}), cfg.get("trainer", {}), cfg.get("module", {})
    return [
        f"- Recipe (every run; `configs/experiment/camvid/protocol.yaml`): crop "
        f"{data.get('crop_size')} px, batch {data.get('batch_size')}, "
        f"{trainer.get('max_steps')} steps, lr {module.get('lr')}, class weights "
        f"{module.get('class_weight')}, MobileNetV2 from random init; the checkpoint with the "
        "best val mIoU evaluated once on the test split (whole 360×480 frames)."
    ]


def _latency(group: DesignGroup) -> str:
    """Batch-1 CPU latency over seeds: the least disturbed (smallest) measurement, not the mean:
    the weights do not change the cost, and a shared machine only ever adds time."""
    values = [
        r.analysis["latency_ms"] for r in group.runs if (r.analysis or {}).get("latency_ms")
    ]  # fmt: skip
    if not values:
        return DASH
    return f"{min(values):.0f}" + (
        f" (least disturbed of {len(values)})" if len(values) > 1 else ""
    )


def headline(groups: Sequence[DesignGroup], steps: list[dict]) -> str:
    """SegNet's metrics (G, C, mIoU, BF) + trimap + cost + train time, and SegNet's Table 1."""
    header = ["design", "OS", "seeds", "G (%)", "C (%)", "mIoU (%)", "BF (%)"]
    header += [f"trimap ≤{w} px (%)" for w in SHOWN_WIDTHS]
    header += ["params (M)", "GMACs", "CPU latency (ms)", "input (px)", "train wall (min)"]
    rows = []
    for g in groups:
        a = g.first("analysis")
        key = next((d for d in DESIGNS if g.dirs.get("train", Path()).parent.name == d), None)
        walls = [train_wall_s(steps, key, r.seed) for r in g.runs] if key else []
        walls = [w / 60 for w in walls if w is not None]
        wall = f"{np.mean(walls):.0f}" + (
            f" ± {np.std(walls, ddof=1):.0f}" if len(walls) > 1 else ""
        )
        rows.append(
            [
                g.label,
                str(g.stride),
                ", ".join(str(s) for s in g.seeds),
                spread(g.summary(lambda r: r.eval.get("pixel_acc"))),
                spread(g.summary(lambda r: r.eval.get("mean_class_acc"))),
                spread(g.miou),
                spread(g.summary(lambda r: r.bf)),
                *[spread(g.trimap(w)) for w in SHOWN_WIDTHS],
                num(a.get("params"), "{:.2f}", 1e-6),
                num(a.get("macs"), "{:.1f}", 1e-9),
                _latency(g),
                size_text(a.get("input_size")),
                wall if walls else DASH,
            ]
        )
    for name, *values in SEGNET_ROWS:
        rows.append(
            [
                f"{name} (published, SegNet Table 1: GPU, same split and resolution, from scratch "
                "on the 367 train frames)",
                DASH,
                DASH,
                *values,
                *[DASH] * (len(header) - 7),
            ]
        )
    return markdown_table(header, rows)


def plateau_lines(root: Path, plan: Sequence[tuple[str, int]]) -> list[str]:
    lines = []
    for design in dict.fromkeys(d for d, _ in plan):
        parts, climbing = [], False
        for d, seed in plan:
            found = run_curve(root, d, seed) if d == design else None
            if not found:
                continue
            flat = found[2]
            if flat is None:
                parts.append(f"seed {seed}: fewer than two validations")
                continue
            climbing |= flat.step is None
            parts.append(f"seed {seed}: {flat.describe()}")
        if parts:
            flag = " **⚠ still climbing: not converged, its comparison is provisional**"
            lines.append(f"- **{NAMES[design]}**: " + "; ".join(parts) + (flag if climbing else ""))
    return lines or ["- No learning curve yet (no run has a CSV log)."]


def plot_curves(root: Path, plan: Sequence[tuple[str, int]], path: Path) -> Path | None:
    fig = Figure(figsize=(11, 4))
    loss_ax, val_ax = fig.subplots(1, 2)
    colours = {d: f"C{i}" for i, d in enumerate(DESIGNS)}
    drawn = False
    for design, seed in plan:
        found = run_curve(root, design, seed)
        if not found:
            continue
        loss, val, _ = found
        style = dict(color=colours[design], ls=("-", "--", ":")[(seed - 1) % 3], lw=1)
        label = f"{NAMES[design]} s{seed}"
        if loss:
            loss_ax.plot(*zip(*loss, strict=True), **style, label=label)
        if val:
            steps, values = zip(*val, strict=True)
            val_ax.plot(steps, [100 * x for x in values], marker="o", ms=3, **style, label=label)
        drawn = True
    if not drawn:
        return None
    loss_ax.set(xlabel="step", ylabel="train loss", title="train loss")
    val_ax.set(xlabel="step", ylabel="val mIoU (%)", title="val mIoU (whole val frames)")
    val_ax.legend(fontsize=7, loc="lower right")
    for ax in (loss_ax, val_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def moonshot(root: Path, steps: list[dict]) -> list[str]:
    lines = []
    for design in ("fcn8s", "deeplabv3plus"):
        trained = DESIGNS[design].eval_strides[0]
        for d, seed in PLAN:
            if d != design:
                continue
            metrics = root / design / f"seed{seed}" / f"eval_os{trained}" / "metrics.json"
            wall = train_wall_s(steps, design, seed)
            if not metrics.is_file():
                state = run_state(root, design, seed)
                lines.append(f"- {NAMES[design]} seed {seed}: no test mIoU yet ({state}).")
                continue
            value = json.loads(metrics.read_text()).get("mIoU") or 0.0
            gap = 100 * (MOONSHOT_MIOU - value)
            reached = "reached" if gap <= 0 else f"{gap:.1f} points short"
            loads = train_loads(steps, design, seed)
            loaded = [x for x in loads if x > QUIET_LOAD]
            time = "no training wall time recorded" if wall is None else (
                f"training {wall / 60:.0f} min wall "
                f"({'within' if wall <= 60 * MOONSHOT_MIN else 'over'} {MOONSHOT_MIN} min"
                + (
                    f"; on a shared machine, 15-min load up to {max(loaded):.1f} at a segment's "
                    "end: not the quiet-machine time the target names"
                    if loaded else ""
                )
                + ")"
            )  # fmt: skip
            lines.append(
                f"- {NAMES[design]} seed {seed}: test mIoU {100 * value:.1f} % ({reached} of "
                f"{100 * MOONSHOT_MIOU:.0f} %), {time}."
            )
    return lines


def write_camvid_doc(
    root: str | Path,
    *,
    doc: str | Path,
    assets: str | Path,
    plan: Sequence[tuple[str, int]] | None = None,
) -> Path:
    """docs/camvid.md (``doc``) and its plots (``assets``) from the run root ``root``; ``plan``:
    the runs the user asks for (default the core plan); the others are marked as extra runs."""
    root, doc, assets = Path(root), Path(doc), Path(assets)
    plan = list(plan or PLAN[:CORE_RUNS])
    steps = steps_log(root)
    groups = groups_of(root, PLAN)
    v = video(groups)
    curves = plot_curves(root, PLAN, assets / "learning_curves.png")
    plots = plot_all(groups, assets)[0] if groups else []
    parts = [
        "# FCN vs DeepLabv3+ on CamVid, from scratch on a CPU",
        "",
        "_Generated by `scripts/run_camvid.py` (`make camvid`): do not edit by hand._",
        "",
        "## How this was produced",
        "",
        *provenance(root, steps),
        *recipe(groups),
        "",
        "## Run status",
        "",
        *status_table(root, plan, steps),
        "",
    ]
    pending = [f"{NAMES[d]} seed {s}" for d, s in PLAN if run_state(root, d, s) != "done"]
    if pending:
        parts += [
            f"**Partial results**: {len(pending)} of {len(PLAN)} planned runs are not done "
            f"({', '.join(pending)}). Only runs evaluated on test enter the tables and findings; "
            "a row with one seed has no seed spread (`(n=1)`) and its findings claim no direction.",
            "",
        ]
    parts += ["## Results on the test split", ""]
    if not groups:
        parts += ["No run has been evaluated on the test split yet.", ""]
    else:
        parts += [headline(groups, steps), "", "mean ± std over seeds; `(n=1)`: one seed.", ""]
        parts += [markdown(groups, plots, rel_to=doc.parent), ""]
    parts += ["## Learning curves", "", *plateau_lines(root, PLAN), ""]
    if curves is not None:
        parts += [f"![learning curves]({_link(curves, doc.parent)})", ""]
    parts += ["## What it shows", ""]
    if v is None:
        parts += ["- Nothing yet: no test evaluation with per-image confusion matrices.", ""]
    else:
        widths: list[tuple] = []
        parts += [*video_lines(v), ""]
        parts += [finding(q, v, widths) for q in questions(groups)]
        parts += ["", "### Block vs frame-level intervals", ""]
        parts += [width_table(widths) if widths else "No comparison has both rows yet.", ""]
    parts += ["## The moonshot: ≥ 50 % test mIoU, ≤ 60 min per run", "", *moonshot(root, steps)]
    parts += ["", CANNOT_SHOW]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(parts).rstrip() + "\n")
    return doc


def _link(path: Path, rel_to: Path) -> str:
    return (path.relative_to(rel_to) if path.is_relative_to(rel_to) else path).as_posix()


CANNOT_SHOW = """## What it cannot show

- **The published numbers' conditions.** SegNet's rows were trained on a GPU for far longer, with
  their own architectures (no MobileNetV2); they are beside ours as a yardstick on the same split
  and resolution, not as a controlled comparison.
- **Pretraining.** Every backbone here starts from random initialisation; ImageNet pretraining
  changes both the absolute numbers and often the size of the gaps.
- **Other data.** The intervals cover resampling blocks of these test frames and the seeds run
  here; other cities, weather or cameras are outside them.
- **GPU cost.** Latency is batch-1 CPU time on a shared 2-core machine: read ratios, not
  milliseconds.
"""
