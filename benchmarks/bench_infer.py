"""Inference backends side by side: images/s of ``evaluate`` and ``predict`` with eager PyTorch vs
onnxruntime, at each thread count, on VOC-sized images (one run, alternating repeats).

For each model (full-width MobileNetV2, 21 classes, random weights: speed does not depend on them):
a checkpoint in the train task's format and a synthetic VOC-format set of ``--images`` images of
375..500 px a side are written to a temporary folder; the onnxruntime export is made once up front
(its one-off cost is printed) and served from the cache afterwards. Then, per thread count, for
``--repeats`` rounds after one warm-up round, in alternating order (torch first on even rounds):

* ``evaluate``: the real task (``segkit.tasks.evaluate.evaluate``, whole image, the default
  batch size 8, trimap widths and sorting; no overlays), its own ``settings.images_per_s`` (the
  evaluation loop: loading, normalising, inference, metrics);
* ``predict``: the real task on a folder of the same images (PNG + overlay JPEG written per image),
  wall time end to end (checkpoint load and session start included; export cached);
* ``forward``: the bare forward of one 500x375 image, the ceiling of either task;
* ``smp``: segmentation_models_pytorch's DeepLabV3Plus (mobilenet_v2 encoder, its defaults) eager
  vs segkit's DeepLabv3+ eager, both in segkit's evaluation loop over the same images (inputs
  zero-padded to a multiple of 16 for smp, which requires it), when smp is installed
  (``pip install -e .[bench]``); smp has no FCN. The two designs differ (smp's ASPP is separable by
  default, segkit's is not): parameter counts are printed.

Medians and the ratio onnxruntime / torch are printed as a markdown table. The machine may be shared:
figures are only comparable side by side within one run.

    python benchmarks/bench_infer.py                          # defaults below
    python benchmarks/bench_infer.py --images 24 --repeats 5 --threads 1 2 --models deeplabv3plus
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segkit.cli.configs import compose_config
from segkit.data import SyntheticSpec, generate_synthetic, voc_split
from segkit.evaluation.batching import eval_loader
from segkit.evaluation.evaluator import Evaluator
from segkit.evaluation.inference import InferenceSettings
from segkit.evaluation.onnx_backend import BackendSettings, inference_model
from segkit.tasks.evaluate import evaluate
from segkit.tasks.predict import predict

MODELS = {
    "deeplabv3plus": ["model=deeplabv3plus", "backbone=mobilenetv2"],
    "fcn8s": ["model=fcn", "model.fcn_variant=8s", "backbone=mobilenetv2"],
}
BACKENDS = ("torch", "onnxruntime")


def _setup(tmp: Path, model_name: str, images: int) -> tuple[Path, Path, torch.nn.Module]:
    """(checkpoint, image folder, model) for one 21-class design on VOC-sized synthetic images."""
    # The generator draws at most 11 classes; read as VOC (21 classes) the labels are simply a subset.
    spec = SyntheticSpec(seed=0, num_train=1, num_val=images, min_size=375, max_size=500,
                         num_classes=11)  # fmt: skip
    root = tmp / f"voc_{images}"
    voc = generate_synthetic(root, spec)
    run = tmp / model_name
    cfg = compose_config("train", [f"paths.root_dir={run}", f"paths.output_dir={run}", "data=voc",
                             f"data.root={root}", "data.num_workers=0", *MODELS[model_name]])  # fmt: skip
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    plain = OmegaConf.to_container(cfg, resolve=True)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    ckpt = run / "model.ckpt"
    run.mkdir(parents=True, exist_ok=True)
    torch.save({"hyper_parameters": {"cfg": plain}, "state_dict": state}, ckpt)
    return ckpt, voc / "JPEGImages", model


def _evaluate(ckpt: Path, out: Path, backend: str, threads: int) -> float:
    cfg = compose_config("evaluate", [f"ckpt_path={ckpt}", f"paths.root_dir={out}",
                                f"paths.output_dir={out}", "eval.device=cpu",
                                f"eval.backend={backend}", f"eval.threads={threads}",
                                "eval.num_overlays=0", "eval.num_workers=0"])  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        return float(evaluate(cfg)["settings"]["images_per_s"])


def _predict(ckpt: Path, folder: Path, out: Path, backend: str, threads: int) -> float:
    cfg = compose_config("predict", [f"ckpt_path={ckpt}", f"input={folder}", f"output={out}",
                               f"paths.root_dir={out}", f"paths.output_dir={out}",
                               "predict.device=cpu", f"predict.backend={backend}",
                               f"predict.threads={threads}"])  # fmt: skip
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        written = predict(cfg)["written"]
    return written / (time.perf_counter() - start)


class _PadTo16(torch.nn.Module):
    """smp wants H, W divisible by its output stride: zero-pad bottom/right, crop the logits."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        padded = F.pad(x, (0, -w % 16, 0, -h % 16))
        return {"out": self.model(padded)[..., :h, :w]}


def _smp_model() -> torch.nn.Module | None:
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        return None
    torch.manual_seed(0)
    net = smp.DeepLabV3Plus(encoder_name="mobilenet_v2", encoder_weights=None, classes=21)
    return _PadTo16(net).eval()


def _loop(model, dataset) -> float:
    """images/s of segkit's evaluation loop (task defaults: same-size batches of 8, default trimap)."""
    widths = compose_config("evaluate", ["ckpt_path=x"]).eval.trimap_widths
    evaluator = Evaluator(model, num_classes=21, settings=InferenceSettings(),
                          trimap_widths=list(widths))  # fmt: skip
    start = time.perf_counter()
    evaluator.run(eval_loader(dataset, batch_size=8))
    return len(dataset) / (time.perf_counter() - start)


def _forward(net, x: torch.Tensor, calls: int = 3) -> float:
    with torch.inference_mode():
        net(x)
        start = time.perf_counter()
        for _ in range(calls):
            net(x)
    return calls / (time.perf_counter() - start)


def _bench_model(name: str, args: argparse.Namespace, tmp: Path) -> list[str]:
    ckpt, folder, model = _setup(tmp, name, args.images)
    start = time.perf_counter()
    exported = inference_model(model, ckpt, device=torch.device("cpu"),
                               settings=BackendSettings(backend="onnxruntime"))  # fmt: skip
    print(f"{name}: one-off ONNX export (dynamo) + check: {time.perf_counter() - start:.1f} s, "
          f"{exported.path.stat().st_size / 2**20:.1f} MB")  # fmt: skip
    dataset = voc_split(folder.parents[2], "val", num_classes=21)
    peer = _smp_model() if name == "deeplabv3plus" else None
    for who, net in (("segkit", model), ("smp", peer)):
        if net is not None:
            print(f"{name}: {who} {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M params")
    x = torch.randn(1, 3, 375, 500)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        nets = {"torch": model,
                "onnxruntime": inference_model(model, ckpt, device=torch.device("cpu"),
                                               settings=BackendSettings("onnxruntime", threads))}  # fmt: skip
        runs: dict[str, list[float]] = {}
        for r in range(args.repeats + 1):
            order = BACKENDS if r % 2 == 0 else BACKENDS[::-1]
            for backend in order:
                values = {
                    "evaluate": _evaluate(ckpt, tmp / "out" / f"e{backend}", backend, threads),
                    "predict": _predict(ckpt, folder, tmp / "out" / f"p{backend}", backend, threads),
                    "forward": _forward(nets[backend], x),
                }  # fmt: skip
                for task, value in values.items():
                    if r:  # round 0 warms up
                        runs.setdefault(f"{task}/{backend}", []).append(value)
            if peer is not None:  # the same loop for both: like with like
                torch.set_num_threads(threads)
                pair = {"segkit": _loop(model, dataset), "smp": _loop(peer, dataset)}
                for who, rate in pair.items():
                    if r:
                        runs.setdefault(f"loop/{who}", []).append(rate)
        for task in ("evaluate", "predict", "forward"):
            eager, onnx = (statistics.median(runs[f"{task}/{b}"]) for b in BACKENDS)
            spread = "; ".join(
                f"{b}: {', '.join(f'{v:.2f}' for v in runs[f'{task}/{b}'])}" for b in BACKENDS
            )
            rows.append(f"| {name} | {task} | {threads} | {eager:.2f} | {onnx:.2f} | "
                        f"**{onnx / eager:.2f}x** | {spread} |")  # fmt: skip
        if peer is not None:
            ours, smp = (statistics.median(runs[f"loop/{w}"]) for w in ("segkit", "smp"))
            rows.append(f"| smp DeepLabV3Plus eager (peer) vs segkit eager, same loop | evaluate "
                        f"loop | {threads} | segkit {ours:.2f}, smp {smp:.2f} | — | "
                        f"smp / segkit: {smp / ours:.2f}x | segkit: "
                        f"{', '.join(f'{v:.2f}' for v in runs['loop/segkit'])}; smp: "
                        f"{', '.join(f'{v:.2f}' for v in runs['loop/smp'])} |")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the tasks' "written to" lines
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, python "
          f"{platform.python_version()}, {os.cpu_count()} logical cores, {platform.processor()}, "
          f"{time.strftime('%Y-%m-%d')}, load average at start {load:.2f}; images={args.images} "
          f"(375..500 px), repeats={args.repeats} (+1 warm-up), threads={args.threads}")  # fmt: skip
    header = ("| model | task | threads | torch img/s | onnxruntime img/s | ratio | repeats (img/s) |\n"
              "|---|---|---|---|---|---|---|")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows += _bench_model(name, args, Path(tmp))
            print(header, *rows, sep="\n", flush=True)  # so far (a long run shows progress)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(header, *rows, sep="\n")


if __name__ == "__main__":
    main()
