"""Batched vs batch-1 whole-image evaluation over the same images, in one run.

The full evaluation path of ``scripts/evaluate.py`` (VOC-format files on disk -> the task's loader,
``segkit.evaluation.batching.eval_loader``: same-size batches, nothing padded -> ``Evaluator``:
normalise, forward, argmax, trimap levels, one joint count for confusion / per-image / trimap
matrices), once with batch size 1 and once with ``--batch-size``, on synthetic VOC-format images of
one fixed size and of mixed sizes (drawn independently per side, so few images share a size and
most batches hold one image). Batch-1 and batched passes alternate for ``--rounds`` rounds after a
warm-up round; medians are reported.

    python benchmarks/bench_eval.py                       # defaults below
    python benchmarks/bench_eval.py --images 64 --batch-size 16 --device cuda
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from segkit.data import SyntheticSpec, generate_synthetic, voc_split
from segkit.evaluation.batching import eval_loader
from segkit.evaluation.evaluator import Evaluator
from segkit.evaluation.inference import InferenceSettings
from segkit.models import create_model

TRIMAP_WIDTHS = (1, 2, 4, 8, 16, 24, 32, 40)  # configs/evaluate.yaml's default


def _one_pass(model, dataset, batch_size: int, device: str) -> tuple[float, float, torch.Tensor]:
    """Wall seconds, process CPU seconds (all threads) of one evaluation pass; its confusion matrix."""
    start, cpu = time.perf_counter(), time.process_time()
    loader = eval_loader(dataset, batch_size=batch_size)  # header reads timed
    evaluator = Evaluator(
        model,
        num_classes=7,
        settings=InferenceSettings(),
        trimap_widths=TRIMAP_WIDTHS,
        device=device,
    )
    result = evaluator.run(loader)  # ends with a host copy, so GPU work is finished
    return time.perf_counter() - start, time.process_time() - cpu, result.confusion


def _compare(model, dataset, batch_size: int, device: str, rounds: int) -> dict[str, float | bool]:
    """Median wall and CPU seconds for batch 1 and for ``batch_size``, rounds interleaved (a shared
    machine's load then hits both alike); round 0 warms up (allocator, kernel choice, file cache).
    CPU seconds do not count time spent waiting for a core, so they are the steadier figure on a
    loaded machine (and meaningless for GPU work)."""
    runs: dict[str, list[float]] = {"wall1": [], "cpu1": [], "wallb": [], "cpub": []}
    same = True
    for r in range(rounds + 1):
        w1, c1, cm1 = _one_pass(model, dataset, 1, device)
        wb, cb, cmb = _one_pass(model, dataset, batch_size, device)
        same &= torch.equal(cm1, cmb)
        if r:
            for key, value in (("wall1", w1), ("cpu1", c1), ("wallb", wb), ("cpub", cb)):
                runs[key].append(value)
    return {**{k: statistics.median(v) for k, v in runs.items()}, "same": same}


@torch.inference_mode()
def _model_only(model, size: int, images: int, batch_size: int, device: str, rounds: int) -> float:
    """Speed-up of the bare forward at ``batch_size`` over batch 1 (same images, random tensors,
    rounds interleaved, medians): the ceiling of any batched evaluation, whatever its loop costs."""
    model = model.to(device)
    one = torch.randn(1, 3, size, size, device=device)
    many = torch.randn(batch_size, 3, size, size, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def seconds(x: torch.Tensor, calls: int) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(calls):
            model(x)
        sync()
        return time.perf_counter() - start

    t1, tb = [], []
    for r in range(rounds + 1):  # round 0 warms up
        a, b = seconds(one, images), seconds(many, max(1, images // batch_size))
        if r:
            t1.append(a / images)
            tb.append(b / (max(1, images // batch_size) * batch_size))
    return statistics.median(t1) / statistics.median(tb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="side of the fixed-size images")
    parser.add_argument("--min-size", type=int, default=96, help="mixed sizes: smallest side")
    parser.add_argument("--max-size", type=int, default=160, help="mixed sizes: largest side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    # The mobile DeepLabv3+ (MobileNetV2 x1.0, ASPP 256, decoder 256) at output stride 16.
    model = create_model("deeplabv3plus", backbone="mobilenetv2", num_classes=7).eval()
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"python={platform.python_version()} images={args.images} batch={args.batch_size}")  # fmt: skip
    print(
        f"| images | batch 1 (img/s, wall) | batch {args.batch_size} (img/s, wall) | speed-up (wall) "
        "| speed-up (CPU time) | confusion matrices |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, lo, hi in (
            (f"{args.size}x{args.size} fixed", args.size, args.size),
            (f"{args.min_size}..{args.max_size} mixed", args.min_size, args.max_size),
        ):
            spec = SyntheticSpec(
                seed=0, num_train=1, num_val=args.images, min_size=lo, max_size=hi, num_classes=7
            )
            root = Path(tmp) / f"{lo}_{hi}"
            generate_synthetic(root, spec)
            dataset = voc_split(root, "val", num_classes=7)
            m = _compare(model, dataset, args.batch_size, args.device, args.rounds)
            n = len(dataset)
            # Same-size batches, nothing padded: the same answer expected at any batch size.
            note = "identical" if m["same"] else "differ"
            print(
                f"| {label} | {n / m['wall1']:.1f} | {n / m['wallb']:.1f} | "
                f"{m['wall1'] / m['wallb']:.2f}x | {m['cpu1'] / m['cpub']:.2f}x | {note} |"
            )
    ceiling = _model_only(model, args.size, args.images, args.batch_size, args.device, args.rounds)
    print(
        f"ceiling: the model's forward alone at {args.size}x{args.size}, batch {args.batch_size} "
        f"vs batch 1: {ceiling:.2f}x (wall, per image)"
    )


if __name__ == "__main__":
    main()
