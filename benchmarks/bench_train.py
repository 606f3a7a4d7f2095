"""Training throughput: segkit's train loop (what scripts/train.py runs) vs a bare PyTorch loop.

Usage: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_train.py [--steps 40] [--warmup 5]
        [--repeats 3] [--out benchmarks/results/train.md] [Hydra overrides ...]

Both sides use the same composed config (default: experiment=quickstart, i.e. synthetic data on the
CPU; pass e.g. ``trainer=gpu data.batch_size=16`` on a GPU machine): the same DataModule and batches,
the same network, the same SGD/AdamW parameter groups and per-step poly LR. The segkit side is
``segkit.tasks.train.train(cfg)`` with its default callbacks and loggers (checkpointing, NaN guard,
throughput meter, progress bar, CSV + TensorBoard), validation off. The bare side is a plain
``for batch in loader`` loop: copy, normalise, forward, cross-entropy, backward, step, scheduler
step. Images/s are timed from the end of step ``warmup`` to the end of the last step (CUDA
synchronised at both ends). The two sides alternate (A, B, A, B, ...) so load on a shared machine
hits them alike; the figure per side is the median. A benchmark, not a test: nothing is asserted.

``--numerics``: the CPU recipe against float32 and against segmentation_models_pytorch, in one
process (sections: ``train`` step images/s, work and achieved GFLOP/s against a matmul peak
measured in the same run, benchmarks/train_numerics.py; ``profile`` per-op-category time of one
step, _step_profile.py; ``eval`` torch bf16 vs onnxruntime vs torch fp32, _eval_backends.py;
``compile`` torch.compile's cost vs saving per recipe, _compile_cost.py; ``loader`` the input
pipeline's images/s, _loader_rate.py; ``rss`` peak memory of one step). Needs the ``bench`` extra.
Writes a JSON (``--json``) and its markdown (``--out``, _numerics_report.py); ``--render FILE.json``
re-renders one. The documented run (about 20 min on a quiet 2-core machine)::

    python benchmarks/bench_train.py --numerics --json benchmarks/results/train_cpu.json \
        --out benchmarks/results/train_cpu.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from _helpers import cpu_name
from segkit.cli.configs import compose_config
from segkit.constants import IGNORE_INDEX
from segkit.runs import builder_name
from segkit.tasks.train import train
from segkit.training import build_param_groups

ROOT = Path(__file__).resolve().parents[1]
TIMES: dict[str, float] = {}


def _clocks() -> tuple[float, float]:
    """(wall, process CPU) seconds. CPU time is the steadier figure on a shared machine: other
    users' load stretches wall time but not the work this process does."""
    return time.perf_counter(), time.process_time()


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer(pl.Callback):
    """Records the wall time between the end of step ``warmup`` and the end of step ``last``."""

    def __init__(self, warmup: int, last: int) -> None:
        self.warmup, self.last = warmup, last

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step in (self.warmup, self.last):
            _sync()
            key = "start" if step == self.warmup else "end"
            TIMES[f"{key}_wall"], TIMES[f"{key}_cpu"] = _clocks()


def compose_cfg(overrides: list[str], out_dir: Path):
    return compose_config(
        "train",
        [
            "experiment=quickstart",
            "module.scheduler.warmup_steps=0",  # short timed runs; the schedule does not affect speed
            f"paths.root_dir={ROOT}",
            f"paths.output_dir={out_dir}",
            *overrides,
        ],
    )


def run_segkit(overrides: list[str], steps: int, warmup: int, batch: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_cfg(
            [
                *overrides,
                f"trainer.max_steps={warmup + steps}",
                "trainer.limit_val_batches=0",
                "trainer.num_sanity_val_steps=0",
                "trainer.enable_model_summary=false",
                "+callbacks.bench_timer._target_=__main__.StepTimer",
                f"+callbacks.bench_timer.warmup={warmup}",
                f"+callbacks.bench_timer.last={warmup + steps}",
            ],
            Path(tmp),
        )
        TIMES.clear()
        train(cfg)
    images = steps * batch
    return (
        images / (TIMES["end_wall"] - TIMES["start_wall"]),
        images / (TIMES["end_cpu"] - TIMES["start_cpu"]),
    )


def _batches(loader) -> Any:
    while True:  # as many epochs as needed, like max_steps
        yield from loader


def run_bare(overrides: list[str], steps: int, warmup: int, batch: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_cfg(overrides, Path(tmp))
    pl.seed_everything(cfg.seed, workers=True)
    device = torch.device("cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu")
    dm = instantiate(cfg.data, _convert_="all")
    dm.prepare_data()
    dm.setup("fit")
    model = instantiate(cfg.model).to(device).train()
    m = cfg.module
    groups = build_param_groups(
        model,
        lr=m.lr,
        weight_decay=m.weight_decay,
        backbone_lr_mult=m.backbone_lr_mult,
        no_decay_depthwise=m.no_decay_depthwise,
    )
    opt = instantiate(m.optimizer, _convert_="all")(groups, lr=m.lr)
    sched = instantiate(m.scheduler, _convert_="all")(opt, total_steps=warmup + steps)
    start = (0.0, 0.0)
    for step, b in enumerate(_batches(dm.train_dataloader()), start=1):
        b = dm.on_after_batch_transfer(
            {
                "image": b["image"].to(device, non_blocking=True),
                "mask": b["mask"].to(device, non_blocking=True),
            },
            0,
        )
        out = model(b["image"])
        loss = F.cross_entropy(out["out"], b["mask"], ignore_index=IGNORE_INDEX)
        if "aux" in out:
            loss = loss + m.aux_weight * F.cross_entropy(
                out["aux"], b["mask"], ignore_index=IGNORE_INDEX
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step == warmup:
            _sync()
            start = _clocks()
        if step == warmup + steps:
            _sync()
            wall, cpu = _clocks()
            return steps * batch / (wall - start[0]), steps * batch / (cpu - start[1])
    raise RuntimeError("the loader ended early")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    if "--numerics" in sys.argv[1:]:
        return main_numerics([a for a in sys.argv[1:] if a != "--numerics"])
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_cfg(overrides, Path(tmp))
    batch = int(cfg.data.batch_size)
    results: dict[str, list[tuple[float, float]]] = {"segkit": [], "bare": []}
    for _ in range(args.repeats):
        results["segkit"].append(run_segkit(overrides, args.steps, args.warmup, batch))
        results["bare"].append(run_bare(overrides, args.steps, args.warmup, batch))
    report = render(args, overrides, cfg, results)
    print(report)
    if args.out:
        args.out.write_text(report)


SECTIONS = ("train", "profile", "eval", "compile", "loader", "rss")
MODEL_NAMES = {"deeplabv3plus": "segkit DeepLabv3+", "fcn8s": "segkit FCN-8s", "smp": "smp DeepLabV3Plus"}  # fmt: skip
CAMVID = ROOT.parent / "shared" / "data" / "camvid"
#: Numeric settings below which a run is a smoke run (its report says so), and the size settings
#: that must be the documented ones.
AT_LEAST = ("batch", "rounds", "warmup", "matmul", "eval_batch", "eval_rounds", "compile_rounds",
            "compile_warmup", "voc_images", "loader_rounds")  # fmt: skip
EXACTLY = ("sizes", "profile_size", "eval_sizes", "rss", "recipe_overrides", "loader_max_batches",
           "compile_backend", "threads")  # fmt: skip


def numerics_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench_train.py --numerics", description=__doc__.splitlines()[0]
    )
    add = p.add_argument
    add("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    add("--models", default="deeplabv3plus,smp", help=f"comma list of {', '.join(MODEL_NAMES)}")
    add("--threads", type=int, default=2, help="intra-op threads of every variant")
    add("--batch", type=int, default=8, help="train: images per step (the CamVid recipe's)")
    add("--sizes", default="256x256,360x480", help="train: HxW,...")
    add("--rounds", type=int, default=5, help="train: timed steps per variant, interleaved")
    add("--warmup", type=int, default=2, help="untimed steps per variant (and compiled copy)")
    add("--matmul", type=int, default=4096, help="side of the peak-measuring matmul")
    add("--profile-size", default="360x480", help="profile: HxW of the profiled step")
    add("--eval-batch", type=int, default=8, help="eval: images per forward (evaluate's default)")
    add("--eval-sizes", default="256x256,360x480", help="eval: HxW,...")
    add("--eval-rounds", type=int, default=5)
    add("--onnx-exporter", default="dynamo", choices=("dynamo", "legacy"))
    add("--recipes", default="camvid/deeplabv3plus,quickstart", help="compile: experiments")
    add("--recipe-overrides", nargs="*", default=[], help="compile + loader: Hydra overrides")
    add("--compile-backend", default="inductor")
    add("--compile-rounds", type=int, default=5)
    add("--compile-warmup", type=int, default=2)
    add("--camvid", default=str(CAMVID), help="loader: the CamVid folder ('none': skip it)")
    add("--voc-images", type=int, default=200, help="loader: VOC-sized JPEGs to write")
    add("--loader-rounds", type=int, default=3)
    add("--loader-max-batches", type=int, default=None, help="loader: cut each epoch short")
    add("--rss", default="8x360x480", help="rss: BxHxW of the measured step")
    add("--json", type=Path, default=None, help="write the result here")
    add("--out", type=Path, default=None, help="write its markdown here")
    add("--render", type=Path, default=None, help="only render this result JSON as markdown")
    return p


def _hw(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.split("x"))
    return h, w


def _is_smoke(args: argparse.Namespace, parser: argparse.ArgumentParser) -> bool:
    return any(getattr(args, k) < parser.get_default(k) for k in AT_LEAST) or any(
        getattr(args, k) != parser.get_default(k) for k in EXACTLY
    )


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _profile(models: list[str], steppers: dict, size: tuple[int, int], args, counted: dict
             ) -> dict[str, Any]:  # fmt: skip
    """One profiled step of every variant at ``size`` (the train section's warm steppers when it
    ran that size), and the GFLOP/s of each conv kind from the MACs it counted (``counted``)."""
    import _step_profile
    import train_numerics as tn

    variants = []
    for m in models:
        work = (counted.get(f"{m} @ {size[0]}x{size[1]}") or tn.step_macs(m, size))["step_by_kind"]
        for fast in (True, False):
            v = tn.Variant(m, fast)
            st = steppers.get((v, size))
            if st is None:  # the train section did not run this size: warm a stepper here
                st = tn.Stepper.of(v, args.batch, size)
                for _ in range(args.warmup):
                    st.step()
            prof = _step_profile.profile_step(st.step)
            rates = {kind: 2 * macs * st.images / prof["seconds"][kind] / 1e9
                     for kind, macs in work.items() if prof["seconds"].get(kind)}  # fmt: skip
            variants.append({"model": m, "numerics": v.numerics, **prof,
                             "step_macs_by_kind": work, "gflop_s_by_kind": rates})  # fmt: skip
            _say(f"profile: {v.label} done")
    return {"size": f"{size[0]}x{size[1]}", "batch": args.batch, "variants": variants}


def _sections(args: argparse.Namespace, sections: list[str], res: dict[str, Any]) -> None:
    import _compile_cost
    import _eval_backends
    import _loader_rate
    import train_numerics as tn

    models = [MODEL_NAMES[m] for m in args.models.split(",")]
    steppers: dict = {}
    for section in sections:
        _say(f"--numerics: section {section}")
        try:
            if section == "train":
                sizes = [_hw(s) for s in args.sizes.split(",")]
                t = tn.run(models, sizes, args.batch, args.rounds, args.warmup, args.matmul)
                steppers, res["train"] = t.pop("steppers"), t
            elif section == "profile":
                counted = (res.get("train") or {}).get("work", {})
                res["profile"] = _profile(models, steppers, _hw(args.profile_size), args, counted)
            elif section == "eval":
                sizes = [_hw(s) for s in args.eval_sizes.split(",")]
                res["eval"] = _eval_backends.run(tn.MODELS["segkit DeepLabv3+"], sizes,
                                                 args.eval_batch, args.eval_rounds,
                                                 args.onnx_exporter)  # fmt: skip
            elif section == "compile":
                res["compile"] = _compile_cost.run(args.recipes.split(","), args.recipe_overrides,
                                                   args.compile_rounds, args.compile_warmup,
                                                   args.compile_backend)  # fmt: skip
            elif section == "loader":
                camvid = None if args.camvid == "none" else Path(args.camvid)
                res["loader"] = _loader_rate.run(camvid, args.voc_images, args.loader_rounds,
                                                 args.loader_max_batches,
                                                 tuple(args.recipe_overrides))  # fmt: skip
            elif section == "rss":
                b, h, w = (int(v) for v in args.rss.split("x"))
                res["rss"] = tn.rss(models, b, (h, w))
        except Exception as err:  # a long run keeps its other sections; the report names it
            _say(f"--numerics: section {section} failed: {err!r}")
            res.setdefault("errors", {})[section] = repr(err)
        if section == "profile" or "profile" not in sections:
            steppers.clear()  # the warm steppers are kept for the profile only


def main_numerics(argv: list[str]) -> None:
    import json

    import _numerics_report
    import train_numerics as tn
    from _helpers import load_average, run_header

    parser = numerics_parser()
    args = parser.parse_args(argv)
    if args.render:
        report = _numerics_report.render(json.loads(args.render.read_text()))
    else:
        sections = args.sections.split(",")
        unknown = sorted(set(sections) - set(SECTIONS))
        bad = sorted(set(args.models.split(",")) - set(MODEL_NAMES))
        if unknown or bad:
            parser.error(f"unknown section(s) {unknown} or model(s) {bad}")
        if "smp" in args.models.split(",") and not tn.smp_available():
            parser.error("the smp rows need segmentation_models_pytorch: pip install -e '.[bench]'")
        torch.set_num_threads(args.threads)
        res: dict[str, Any] = {"schema": "segkit.bench_train_numerics/1",
                               "header": run_header("benchmarks/bench_train.py"),
                               "settings": {k: str(v) if isinstance(v, Path) else v
                                            for k, v in vars(args).items()},
                               "smoke": _is_smoke(args, parser)}  # fmt: skip
        _sections(args, sections, res)
        res["header"]["load_end"] = load_average()
        if args.json:
            args.json.write_text(json.dumps(res, indent=1) + "\n")
        report = _numerics_report.render(res)
    print(report)
    if args.out:
        args.out.write_text(report)


def render(args, overrides, cfg, results) -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name()

    def med(side: str, i: int) -> float:
        return statistics.median(r[i] for r in results[side])

    def runs(side: str, i: int) -> str:
        return ", ".join(f"{r[i]:.1f}" for r in results[side])

    lines = [
        "# Training throughput: segkit train loop vs bare PyTorch loop",
        "",
        f"- machine: {device}; torch {torch.__version__}, threads {torch.get_num_threads()}",
        f"- date: {dt.date.today().isoformat()}",
        f"- command: `{' '.join(['python', 'benchmarks/bench_train.py', *sys.argv[1:]])}`",
        f"- config: experiment=quickstart {' '.join(overrides)} -> model "
        f"{builder_name(cfg.model)}, batch {cfg.data.batch_size}, crop "
        f"{cfg.data.crop_size}, precision {cfg.trainer.precision}",
        f"- {args.steps} timed steps after {args.warmup} warm-up steps, "
        f"{args.repeats} alternating repeats (segkit, bare, segkit, bare, ...)",
        "",
        "| loop | images/s wall (median) | runs | images/CPU-s (median) | runs |",
        "|---|---:|---|---:|---|",
    ]
    labels = {
        "segkit": "segkit `train()` (Lightning + callbacks + loggers)",
        "bare": "bare PyTorch loop",
    }
    for side, label in labels.items():
        lines.append(
            f"| {label} | {med(side, 0):.1f} | {runs(side, 0)} | {med(side, 1):.1f} | {runs(side, 1)} |"
        )
    lines += [
        "",
        f"**ratio segkit / bare: {med('segkit', 0) / med('bare', 0):.3f} (wall), "
        f"{med('segkit', 1) / med('bare', 1):.3f} (CPU time)** -- target >= 0.95",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
