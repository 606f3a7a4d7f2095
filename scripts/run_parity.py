"""Accuracy parity of the CPU numerics: one recipe trained in bf16-mixed + channels_last (the CPU
trainer's default where the processor has AVX512-BF16 or AMX) and in exact float32
(``trainer.precision=32-true module.channels_last=false``), over seeds; every selected checkpoint
evaluated in float32 on the same split; the paired bootstrap of bf16 minus fp32 mIoU.

    python scripts/run_parity.py                                     # quickstart, seeds 1-3
    python scripts/run_parity.py --experiment camvid/deeplabv3plus \\
        --data-root ../shared/data/camvid --split test               # the CamVid recipe
    python scripts/run_parity.py --experiment camvid/fcn8s \
        --data-root ../shared/data/camvid --split test \
        --bf16-runs logs/camvid/fcn8s                                # bf16 side already trained
    python scripts/run_parity.py --report-only                       # the table again

Resumable like scripts/run_camvid.py (whose step runner it uses): a finished training or
evaluation is kept, a stopped training continues from its ``last.ckpt``. Runs go to
``<root>/<numerics>/seed<k>/`` with the evaluation in ``.../eval/``, every step in
``<root>/steps.jsonl`` (the runner's log); the report (markdown, and the
JSON it is made from) to ``--out`` (default ``benchmarks/results/parity_<experiment>.md``).

``--bf16-runs DIR`` takes the bf16 side from runs already trained in ``DIR/seed<k>`` (the CamVid
comparison's ``logs/camvid/fcn8s``: the same recipe under the CPU trainer's default
numerics) instead of training it again; each must be finished, bf16-mixed + channels_last, and
its stored recipe must equal the fp32 run's but for the numerics (checked key by key), and it is
evaluated here in float32 like the fp32 side. ``--eval-data GROUP`` evaluates both sides on
``data=GROUP`` (with ``--data-root``) instead of each checkpoint's stored data config.

Evaluation is float32 for both (``eval.precision=32``), so the difference is the training's. The
interval resamples seeds and images (``segkit.compare.stats.Bootstrap``); CamVid test frames are
video, so there whole blocks of consecutive frames are resampled (the block length from the
per-frame mIoU's autocorrelation, as docs/camvid.md does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# scripts/: the step runner of the CamVid comparison (its own process per CLI step, resumable)
from run_camvid import (
    STEPS_LOG,
    Stop,
    fresh,
    machine,
    read_json,
    run_cli,
    step,
    training_state,
)
from segkit.compare.groups import DesignGroup, group_by_seed
from segkit.compare.records import build_records, find_run_folders
from segkit.compare.stats import Bootstrap, Interval, block_length, miou, verdict
from segkit.runs import IMAGE_CONFUSION_FILE, METRICS_FILE

ROOT = Path(__file__).resolve().parents[1]

#: numerics name -> training overrides. ``bf16`` is what ``trainer=cpu`` picks on this processor;
#: spelled out so the run means the same on a processor without bf16 (where it would be slow).
#: fp32 first: a bf16 run given by ``--bf16-runs`` is checked against the fp32 run's recipe.
NUMERICS: dict[str, tuple[str, ...]] = {
    "fp32": ("trainer.precision=32-true", "module.channels_last=false"),
    "bf16": ("trainer.precision=bf16-mixed", "module.channels_last=true"),
}


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="quickstart", help="experiment=<this>")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--data-root", type=Path, help="data.root (not for the synthetic set)")
    parser.add_argument("--split", default="val", help="the split each checkpoint is scored on")
    parser.add_argument("--root", type=Path, help="run root (default logs/parity/<experiment>)")
    parser.add_argument("--out", type=Path, help="report (default benchmarks/results/...)")
    parser.add_argument("--report-only", action="store_true", help="no training, the report only")
    parser.add_argument(
        "--bf16-runs", type=Path, help="take the bf16 side from DIR/seed<k> (already trained)"
    )
    parser.add_argument("--eval-data", help="evaluate on data=<this group> (default: stored)")
    return parser.parse_known_args(argv)


def slug(experiment: str) -> str:
    return experiment.replace("/", "_")


def run_folder(args: argparse.Namespace, root: Path, name: str, seed: int) -> Path:
    """Where the ``name`` (bf16 | fp32) run of ``seed`` is trained (``--bf16-runs``: given)."""
    if name == "bf16" and args.bf16_runs is not None:
        return args.bf16_runs.resolve() / f"seed{seed}"
    return root / name / f"seed{seed}"


def eval_folder(root: Path, name: str, seed: int) -> Path:
    """Where the ``name`` run of ``seed`` is evaluated in float32 (always under ``root``)."""
    return root / name / f"seed{seed}" / "eval"


#: Keys that may differ between the two sides of a pair: the numerics, and where things were
#: written (a trailing dot: the whole node).
NOT_RECIPE: tuple[str, ...] = (
    "trainer.precision", "module.channels_last", "trainer.default_root_dir", "ckpt_path",
    "paths.", "hydra.", "callbacks.", "logger.",
)  # fmt: skip


def recipe_differences(a: dict, b: dict) -> list[str]:
    """The dotted keys whose values differ between run configs ``a`` and ``b``, but for
    :data:`NOT_RECIPE`: a pair differs in its numerics only when this is empty."""
    from segkit.training.resume import flatten  # the resume policy's reading of a config

    fa, fb = flatten(a), flatten(b)
    sections = tuple(k for k in NOT_RECIPE if k.endswith("."))
    return [
        f"{key}: {fa.get(key)!r} vs {fb.get(key)!r}"
        for key in sorted(set(fa) | set(fb))
        if key not in NOT_RECIPE and not key.startswith(sections) and fa.get(key) != fb.get(key)
    ]


def check_given_bf16_run(folder: Path, fp32_folder: Path) -> None:
    """RuntimeError unless ``folder`` (``--bf16-runs``) is a finished bf16-mixed + channels_last
    run of the fp32 run's recipe."""
    import yaml

    metrics = read_json(folder / METRICS_FILE) or {}
    if metrics.get("status") != "finished":
        raise RuntimeError(
            f"{folder}: not a finished training run (metrics.json: {metrics.get('status')}); "
            "finish it (make camvid) or leave out --bf16-runs to train the bf16 side here"
        )
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    fp32 = yaml.safe_load((fp32_folder / "config.yaml").read_text())
    numerics = (str(cfg["trainer"]["precision"]), bool(cfg["module"].get("channels_last")))
    if not numerics[0].startswith("bf16") or not numerics[1]:
        raise RuntimeError(
            f"{folder}: trained with precision {numerics[0]}, channels_last {numerics[1]}: "
            "--bf16-runs needs bf16-mixed + channels_last runs"
        )
    differ = recipe_differences(cfg, fp32)
    if differ:
        raise RuntimeError(
            f"{folder}: not the fp32 run's recipe ({len(differ)} keys differ, e.g. {differ[0]}); "
            "--bf16-runs needs runs of the same experiment, seed and overrides"
        )


def train_and_evaluate(args: argparse.Namespace, root: Path, extra: list[str]) -> None:
    data = [f"data.root={args.data_root.resolve()}"] if args.data_root else []
    eval_data = [f"data={args.eval_data}", *data] if args.eval_data else data
    for seed in args.seeds:
        for name, overrides in NUMERICS.items():
            folder = run_folder(args, root, name, seed)
            if folder.parent != root / name:  # given: trained elsewhere, checked against fp32
                check_given_bf16_run(folder, root / "fp32" / f"seed{seed}")
            state = training_state(folder)
            if state == "aborted":
                raise RuntimeError(f"{folder} holds no checkpoint: remove it and run again")
            argv = [
                "scripts/train.py",
                f"experiment={args.experiment}",
                *overrides,
                *data,
                f"seed={seed}",
                f"hydra.run.dir={folder}",
                *extra,
            ]
            if state == "resumable":
                argv.append(f"ckpt_path={folder / 'checkpoints' / 'last.ckpt'}")
            if state != "finished":
                step(root, f"train {name} seed {seed}", argv)
            metrics = read_json(folder / METRICS_FILE) or {}
            best = metrics.get("best_ckpt")
            if metrics.get("status") != "finished" or not best:
                raise RuntimeError(f"{folder}: training did not finish ({metrics.get('status')})")
            best = Path(best) if Path(best).is_absolute() else ROOT / best
            out = eval_folder(root, name, seed)
            if fresh(out, METRICS_FILE, IMAGE_CONFUSION_FILE):
                step(
                    root,
                    f"evaluate {name} seed {seed} ({args.split}, fp32)",
                    [
                        "scripts/evaluate.py",
                        f"ckpt_path={best}",
                        *eval_data,
                        f"eval.split={args.split}",
                        "eval.precision=32",
                        "eval.channels_last=false",
                        f"hydra.run.dir={out}",
                    ],
                )


def numerics_of(group: DesignGroup) -> str:
    precision = str(group.setting("trainer.precision", ""))
    return "bf16" if precision.startswith("bf16") else "fp32" if precision.startswith("32") else ""


def stacks(group: DesignGroup, order: list[str]) -> list[np.ndarray]:
    """Each seed's (N, K, K) per-image confusion matrices, images in ``order``."""
    out = []
    for c in group.image_confusion or []:
        index = {image: n for n, image in enumerate(c.ids)}
        missing = [i for i in order if i not in index]
        if missing:
            raise ValueError(f"{len(missing)} images not evaluated by every run, e.g. {missing[0]}")
        out.append(c.confusion[[index[i] for i in order]])
    return out


def bootstrap(group: DesignGroup, order: list[str], per_run: list[np.ndarray]):
    """Image-level bootstrap; a moving-block one within each sequence for CamVid's video frames."""
    if not str(group.setting("data.dataset._target_", "")).endswith(".CamVid"):
        return Bootstrap(len(order)), "images resampled one by one (independent images)"
    from segkit.data.camvid_layout import sequence_of

    sequences = [sequence_of(i) for i in order]
    seqs = np.array(sequences)
    series = []
    for cm in per_run:
        scores = miou(cm)
        series += [s[~np.isnan(s)] for s in (scores[seqs == q] for q in dict.fromkeys(sequences))]
    block = block_length(series)
    return (
        Bootstrap(len(order), sequences=sequences, block=block),
        f"blocks of {block} consecutive frames resampled within each video sequence",
    )


#: ``segkit.compare.stats.verdict`` in words.
VERDICT = {
    "none": "no measurable difference: the interval holds 0",
    "higher": "bf16 measurably higher",
    "lower": "bf16 measurably lower",
    "single-seed": "one seed per side: seed variation is not in the interval",
}


def report(root: Path, args: argparse.Namespace) -> tuple[str, dict]:
    given = [run_folder(args, root, "bf16", seed) for seed in args.seeds] if args.bf16_runs else []
    folders = [
        f
        for f in find_run_folders([root, *(g for g in given if g.is_dir())])
        if f.kind == "train" or f.path.resolve().is_relative_to(root)  # only our fp32 evaluations
    ]
    groups = {numerics_of(g): g for g in group_by_seed(build_records(folders))}
    if set(groups) != set(NUMERICS) or any(g.image_confusion is None for g in groups.values()):
        raise RuntimeError(
            f"{root}: not every run is trained and evaluated yet; run the same command without "
            "--report-only to finish them"
        )
    bf16, fp32 = groups["bf16"], groups["fp32"]
    if bf16.seeds != fp32.seeds:
        raise RuntimeError(f"unpaired seeds: bf16 {bf16.seeds}, fp32 {fp32.seeds}")
    order = sorted(bf16.image_confusion[0].ids)
    a, b = stacks(bf16, order), stacks(fp32, order)
    boot, how = bootstrap(bf16, order, a + b)
    iv: Interval = boot.difference(a, b, keys=("bf16", "fp32"))
    rows, deltas = [], []
    for ra, rb in zip(bf16.runs, fp32.runs, strict=True):
        deltas.append(ra.miou - rb.miou)
        rows.append(
            f"| {ra.seed} | {100 * rb.miou:.2f} | {100 * ra.miou:.2f} | {100 * deltas[-1]:+.2f} "
            f"| {(rb.train or {}).get('train_time_s', 0) / 60:.1f} "
            f"| {(ra.train or {}).get('train_time_s', 0) / 60:.1f} |"
        )
    fa, fb = bf16.miou, fp32.miou
    spread = max(fa.std or 0.0, fb.std or 0.0)
    within = abs(iv.delta) <= spread
    lines = [
        f"# Accuracy parity of the CPU numerics: `experiment={args.experiment}`",
        "",
        f"Generated by `python scripts/run_parity.py {' '.join(sys.argv[1:])}`".rstrip() + ", "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()} "
        f"(load at report time; each step's load is in the run root's `{STEPS_LOG}`).",
        "",
        f"Trained in bf16-mixed + channels_last and in float32 contiguous, seeds "
        f"{', '.join(map(str, bf16.seeds))}; each selected (best-val) checkpoint evaluated in "
        f"float32 on the `{args.split}` split ({len(order)} images).",
        "",
        "| seed | fp32 mIoU % | bf16 mIoU % | bf16 − fp32 | fp32 train min | bf16 train min |",
        "|---|---|---|---|---|---|",
        *rows,
        f"| mean ± std | {100 * fb.mean:.2f} ± {100 * (fb.std or 0.0):.2f} | "
        f"{100 * fa.mean:.2f} ± {100 * (fa.std or 0.0):.2f} | {100 * float(np.mean(deltas)):+.2f} | | |",
        "",
        f"Paired bootstrap of bf16 − fp32 mIoU (seeds and images resampled; {how}): "
        f"**{100 * iv.delta:+.2f} points, 95 % interval [{100 * iv.low:+.2f}, {100 * iv.high:+.2f}]** "
        f"({VERDICT[verdict(iv)]}).",
        "",
        f"Within the seed spread (|difference| ≤ the larger seed std, {100 * spread:.2f} points): "
        f"**{'yes' if within else 'no'}**.",
        "",
        "Train minutes are wall time on a shared machine (other work ran beside them): not a speed "
        "figure; docs/benchmarks.md has the interleaved step timings.",
    ]
    data = {
        "experiment": args.experiment,
        "split": args.split,
        "seeds": bf16.seeds,
        "miou_fp32": [r.miou for r in fp32.runs],
        "miou_bf16": [r.miou for r in bf16.runs],
        "difference": {"delta": iv.delta, "low": iv.low, "high": iv.high, "resampling": how},
        "within_seed_spread": within,
        "seed_std_max": spread,
    }
    return "\n".join(lines) + "\n", data


def main(argv: list[str]) -> int:
    args, extra = parse(argv)
    root = (args.root or ROOT / "logs" / "parity" / slug(args.experiment)).resolve()
    out = args.out or ROOT / "benchmarks" / "results" / f"parity_{slug(args.experiment)}.md"
    if not args.report_only:
        root.mkdir(parents=True, exist_ok=True)
        try:
            train_and_evaluate(args, root, extra)
        except Stop as stop:
            print(f"stopped: {stop}", file=sys.stderr)
            return 130
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    try:
        text, data = report(root, args)
    except (RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    print(text)
    print(f"wrote {out} and {out.with_suffix('.json')} (runs: {root})")
    return 0


if __name__ == "__main__":
    run_cli(main)
