"""How fast the command line answers: ``--help``, ``--cfg job``, Hydra errors and the project's own
config checks for every script, the start-to-first-training-step time of ``experiment=quickstart``,
and how long a failed process lingers after its error message.

    python benchmarks/bench_cli.py --repeats 5                          # this tree
    python benchmarks/bench_cli.py --before /tmp/segkit_before --repeats 3 --out benchmarks/results/cli.md

``--before ROOT`` times a second checkout (e.g. ``git archive <commit> | tar -x -C ROOT``) side by
side: for every command the repeats alternate between the two trees, so both see the same machine
load. Every figure is the median wall time of a fresh process (start to exit), next to
``python -c "import hydra"`` as the floor. ``--skip-train`` / ``--skip-lag`` leave out the two
slow parts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _helpers import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MISSING = "/nonexistent/segkit-bench"

#: script -> [(case, overrides)]. ``{file}`` is an existing file that is not a checkpoint.
CASES: dict[str, list[tuple[str, list[str]]]] = {
    "train": [
        ("unknown choice", ["model=nope"]),
        ("output stride", ["model.output_stride=12"]),
        ("FCN variant", ["model=fcn", "model.output_stride=16", "model.fcn_variant=32s"]),
        ("batch size", ["data=synthetic", "data.batch_size=0"]),
        ("negative warm-up", ["experiment=quickstart", "module.scheduler.warmup_steps=-1"]),
        ("missing data root", ["data=voc", f"data.root={MISSING}"]),
    ],
    "evaluate": [
        ("unknown choice", ["data=nope"]),
        ("missing checkpoint", [f"ckpt_path={MISSING}.ckpt"]),
        ("output stride", ["ckpt_path={file}", "eval.output_stride=12"]),
    ],
    "predict": [
        ("unknown choice", ["paths=nope"]),
        ("missing checkpoint", [f"ckpt_path={MISSING}.ckpt", "input=x.jpg"]),
        ("batch size", ["ckpt_path={file}", "input=x.jpg", "predict.batch_size=0"]),
    ],
    "export": [
        ("unknown choice", ["paths=nope"]),
        ("missing checkpoint", [f"ckpt_path={MISSING}.ckpt"]),
    ],
    "analyze": [
        ("unknown choice", ["model=nope"]),
        ("output stride", ["model.output_stride=12"]),
        ("FCN variant", ["model=fcn", "model.output_stride=8", "model.fcn_variant=16s"]),
    ],
    "inspect_data": [
        ("unknown choice", ["data=nope"]),
        ("batch size", ["data.val_batch_size=0"]),
        ("missing data root", ["data=voc", f"data.root={MISSING}"]),
    ],
}
COMMON = [("--help", ["--help"]), ("--cfg job", ["--cfg", "job"]), ("unknown key", ["no_such=1"])]
COMPARE = [("--help", ["--help"]), ("missing folder", [MISSING])]
#: A Lightning-level error: the loss diverges at the first steps (the non-finite-loss guard).
DIVERGE = [
    "data=synthetic", "data.dataset.num_train=32", "data.dataset.num_val=8",
    "data.dataset.min_size=64", "data.dataset.max_size=64", "data.crop_size=64",
    "data.batch_size=8", "data.val_batch_size=4", "data.num_workers=0", "backbone.width_mult=0.35",
    "model.aspp_channels=16", "model.decoder_channels=16", "model.low_level_channels=8",
    "trainer=cpu", "trainer.max_steps=30", "trainer.num_sanity_val_steps=0",
    "trainer.enable_model_summary=false", "callbacks.progress_bar=null", "logger=none",
    "module.lr=1e6", "optimizer=sgd",
]  # fmt: skip


def env_for(root: Path) -> dict[str, str]:
    path = os.pathsep.join([str(root / "src"), str(HERE)])
    return {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": ""}


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    return time.perf_counter() - start, proc.returncode


def exit_lag(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(seconds from start to the first stderr line that starts with 'error' or 'Could not',
    seconds from that line to the process's exit)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen: list[float] = []

    def pump() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            if not seen and line.lower().startswith(("error", "could not")):
                seen.append(time.perf_counter())

    reader = threading.Thread(target=pump)
    reader.start()
    proc.wait()
    end = time.perf_counter()
    reader.join()
    if not seen:
        return float("nan"), float("nan")
    return seen[0] - start, end - seen[0]


def first_step(root: Path, data_root: Path, cwd: Path) -> float:
    """Seconds from process start to the start of the first training step (then the run is
    stopped) of ``scripts/train.py experiment=quickstart``."""
    marker = cwd / f"first_step_{time.monotonic_ns()}"
    env = {**env_for(root), "SEGKIT_FIRST_STEP_FILE": str(marker)}
    cmd = [sys.executable, str(root / "scripts" / "train.py"), "experiment=quickstart",
           f"data.root={data_root}", "+callbacks.first_step._target_=_first_step.FirstStep",
           "logger=none", f"hydra.run.dir={cwd / 'runs' / marker.name}"]  # fmt: skip
    start_wall, start = time.time(), time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while not marker.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode} before a step")
            if time.perf_counter() - start > 900:
                raise RuntimeError("no training step within 900 s")
            time.sleep(0.05)
        time.sleep(0.05)  # the file is written before it is closed
        return float(marker.read_text()) - start_wall
    finally:
        proc.kill()
        proc.wait()


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt(xs: list[float]) -> str:
    return f"{median(xs):.2f}"


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", type=Path, help="a second checkout, timed side by side")
    parser.add_argument(
        "--after", type=Path, default=ROOT, help="the checkout to time (default: this one)"
    )
    parser.add_argument("--scripts", nargs="+", default=[*CASES, "compare"])
    parser.add_argument("--skip-train", action="store_true", help="no quickstart first-step runs")
    parser.add_argument("--skip-lag", action="store_true", help="no exit-lag runs")
    parser.add_argument("--train-repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the tables (markdown) here")
    args = parser.parse_args(argv)
    trees = {
        "after": args.after.resolve(),
        **({"before": args.before.resolve()} if args.before else {}),
    }
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    emit(f"# bench_cli: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    emit(f"command: python benchmarks/bench_cli.py {' '.join(argv)}")
    emit(f"machine: {machine()}; load average at start {load()} (1/5/15 min)")
    emit(f"trees: {', '.join(f'{k}={v}' for k, v in trees.items())}")
    emit()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        bogus = cwd / "not_a_checkpoint.ckpt"
        bogus.write_text("not a checkpoint")
        floor = [timed([sys.executable, "-c", "import hydra"], env_for(trees["after"]), cwd)[0]
                 for _ in range(args.repeats)]  # fmt: skip
        emit(f"floor `python -c \"import hydra\"`: median {fmt(floor)} s "
             f"(repeats {', '.join(f'{x:.2f}' for x in floor)})")  # fmt: skip
        emit()
        names = list(trees)
        emit("Each row: the median of its repeats; `floor` is `import hydra` timed in the same "
             "alternation (the load changes during a run).")  # fmt: skip
        emit()
        emit("| script | case | floor (s) | " + " | ".join(f"{n} (s)" for n in names)
             + (" | before / after |" if len(names) == 2 else " |"))  # fmt: skip
        emit("|---|---|---|" + "---|" * (len(names) + (1 if len(names) == 2 else 0)))
        for script in args.scripts:
            cases = COMPARE if script == "compare" else [*COMMON, *CASES[script]]
            for case, shown in cases:
                overrides = [o.replace("{file}", str(bogus)) for o in shown]
                times: dict[str, list[float]] = {n: [] for n in names}
                codes: dict[str, set[int]] = {n: set() for n in names}
                row_floor: list[float] = []
                for i in range(args.repeats):
                    hydra_only = [sys.executable, "-c", "import hydra"]
                    row_floor.append(timed(hydra_only, env_for(trees["after"]), cwd)[0])
                    for name in names:
                        run_dir = cwd / "runs" / f"{name}_{script}_{i}_{time.monotonic_ns()}"
                        hydra = [] if script == "compare" else [f"hydra.run.dir={run_dir}"]
                        cmd = [sys.executable, str(trees[name] / "scripts" / f"{script}.py"),
                               *overrides, *hydra]  # fmt: skip
                        seconds, code = timed(cmd, env_for(trees[name]), cwd)
                        times[name].append(seconds)
                        codes[name].add(code)
                row = " | ".join(f"{fmt(times[n])} (exit {'/'.join(map(str, sorted(codes[n])))})"
                                 for n in names)  # fmt: skip
                ratio = (f" | {median(times['before']) / median(times['after']):.1f}×"
                         if len(names) == 2 else "")  # fmt: skip
                emit(f"| {script} | {case} `{' '.join(shown)}` | {fmt(row_floor)} | {row}{ratio} |")
        emit()
        if not args.skip_lag:
            emit("Exit lag: seconds from the error line on stderr to the process's exit (median).")
            emit()
            emit("| error | " + " | ".join(f"{n}: message at / lag (s)" for n in names) + " |")
            emit("|---|" + "---|" * len(names))
            lag_cases = [("Hydra-level (unknown key)", ["no_such=1"]),
                         ("Lightning-level (loss diverges in fit)", DIVERGE)]  # fmt: skip
            for case, overrides in lag_cases:
                res: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
                for i in range(args.train_repeats):
                    for name in names:
                        run_dir = cwd / "lag" / f"{name}_{i}_{time.monotonic_ns()}"
                        extra = [f"data.root={cwd / 'lag_data'}"] if overrides is DIVERGE else []
                        cmd = [sys.executable, str(trees[name] / "scripts" / "train.py"),
                               *overrides, *extra, f"hydra.run.dir={run_dir}"]  # fmt: skip
                        res[name].append(exit_lag(cmd, env_for(trees[name]), cwd))
                row = " | ".join(
                    f"{median([a for a, _ in res[n]]):.2f} / {median([b for _, b in res[n]]):.2f} "
                    f"(lags {', '.join(f'{b:.2f}' for _, b in res[n])})"
                    for n in names
                )
                emit(f"| {case} | {row} |")
            emit()
        if not args.skip_train:
            emit("Start to first training step, `scripts/train.py experiment=quickstart` (median; "
                 "synthetic data generated beforehand).")  # fmt: skip
            emit()
            data_root = cwd / "quickstart_data"
            first_step(trees["after"], data_root, cwd)  # generates the data set once (not timed)
            steps: dict[str, list[float]] = {n: [] for n in names}
            for _ in range(args.train_repeats):
                for name in names:
                    steps[name].append(first_step(trees[name], data_root, cwd))
            for name in names:
                emit(f"- {name}: median {fmt(steps[name])} s "
                     f"(repeats {', '.join(f'{x:.2f}' for x in steps[name])})")  # fmt: skip
            emit()
        emit(f"load average at end {load()} (1/5/15 min)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
