"""What the boundary F1 (SegNet's BF) costs an evaluation at CamVid's 360x480.

The evaluator's metric update (``SegConfusion``: trimap bands at evaluate's default widths, per-image
matrices) with and without ``boundary=True``, over the CamVid test annotations (233 frames; void 11
-> 255) with a perturbed ground truth as the prediction (shifted 3 px, random blocks relabelled:
boundaries near but not on the truth, as a model's are). Passes with and without BF alternate for
``--rounds`` rounds after a warm-up pass; a loaded machine disturbs each pass differently, so the
least-disturbed (minimum) per-image times are compared, medians shown beside them, in wall time
and in process CPU time (which does not count waiting for a core: the steadier figure when the
machine is shared). The forward of a
MobileNetV2 DeepLabv3+ (OS 16, 11 classes) at 360x480 is timed in the same rounds, to put the extra
cost next to what an evaluation spends anyway.

    python benchmarks/bench_boundary.py                        # CamVid from ../shared/data/camvid
    python benchmarks/bench_boundary.py --root PATH --threads 2 --rounds 5 --batch-size 1

Without the CamVid files it uses synthetic 360x480 block masks (and says so).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _helpers import machine
from segkit.evaluation.metrics import SegConfusion
from segkit.models import create_model

TRIMAP_WIDTHS = (1, 2, 4, 8, 16, 24, 32, 40)  # configs/evaluate.yaml's default
CAMVID = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "camvid"
K = 11


def _masks(root: Path, limit: int) -> tuple[torch.Tensor, str]:
    """(N, 360, 480) uint8 test annotations, void as 255; synthetic blocks when absent."""
    files = sorted((root / "testannot").glob("*.png"))[:limit] if root.is_dir() else []
    if files:
        masks = np.stack([np.asarray(Image.open(f)) for f in files]).astype(np.uint8)
        masks[masks == 11] = 255
        return torch.from_numpy(masks), f"CamVid testannot ({len(files)} frames)"
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, K, size=(limit, 12, 16))
    masks = np.kron(coarse, np.ones((30, 30), dtype=np.int64)).astype(np.uint8)
    return torch.from_numpy(masks), f"synthetic 30 px blocks ({limit} masks, CamVid not found)"


def _perturbed(masks: torch.Tensor) -> torch.Tensor:
    """A plausible prediction: the truth shifted 3 px right, 2 down, 40 px blocks relabelled at
    random in 10 % of places; void pixels get class 0 (a model labels everything)."""
    g = torch.Generator().manual_seed(1)
    pred = torch.roll(masks.long(), shifts=(2, 3), dims=(1, 2))
    n, h, w = pred.shape
    noise = torch.randint(0, K, (n, h // 40 + 1, w // 40 + 1), generator=g)
    where = torch.rand(noise.shape, generator=g) < 0.1
    noise = noise.repeat_interleave(40, 1).repeat_interleave(40, 2)[:, :h, :w]
    where = where.repeat_interleave(40, 1).repeat_interleave(40, 2)[:, :h, :w]
    pred = torch.where(where, noise, pred)
    return pred.masked_fill(pred == 255, 0)


def _metric_pass(pred, masks, batch: int, boundary: bool) -> tuple[float, float, float | None]:
    """Wall and process-CPU seconds of one pass of updates over all images (and the compute); the
    split's BF."""
    metric = SegConfusion(K, trimap_widths=TRIMAP_WIDTHS, per_image=True, boundary=boundary)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(masks), batch):
        index = torch.arange(i, min(i + batch, len(masks)))
        metric.update(pred[index], masks[index], index)
    out = metric.compute()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, cpu, (float(out.bf) if boundary else None)


@torch.inference_mode()
def _forward_pass(model, images: int) -> tuple[float, float]:
    """Wall and CPU seconds per forward of one 360x480 image."""
    x = torch.randn(1, 3, 360, 480)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(images):
        model(x)
    return (time.perf_counter() - start) / images, (time.process_time() - cpu) / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=CAMVID)
    parser.add_argument("--images", type=int, default=233)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--forwards", type=int, default=5, help="forwards timed per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    masks, source = _masks(args.root.resolve(), args.images)
    pred = _perturbed(masks)
    model = create_model("deeplabv3plus", backbone="mobilenetv2", num_classes=K).eval()
    n = len(masks)
    keys = ("without", "with", "forward")
    times: dict[str, list[float]] = {f"{k} {c}": [] for k in keys for c in ("wall", "cpu")}
    bf = None
    for r in range(args.rounds + 1):  # round 0 warms up
        w0, c0, _ = _metric_pass(pred, masks, args.batch_size, boundary=False)
        w1, c1, bf = _metric_pass(pred, masks, args.batch_size, boundary=True)
        wf, cf = _forward_pass(model, args.forwards)
        if r:
            for key, value in (("without wall", w0 / n), ("without cpu", c0 / n),
                               ("with wall", w1 / n), ("with cpu", c1 / n),
                               ("forward wall", wf), ("forward cpu", cf)):  # fmt: skip
                times[key].append(value)
    lo = {k: min(v) for k, v in times.items()}
    print(f"date {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {machine()}; torch "
          f"{torch.__version__}; {args.threads} threads; load average {_load()}; masks: {source}; "
          f"batch {args.batch_size}; {args.rounds} rounds (+1 warm-up); split BF of the perturbed "
          f"truth {bf:.4f}")  # fmt: skip
    print(
        "| per image (ms) | wall, min | wall, median | CPU, min | CPU, median | wall, all rounds |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for key, label in (("without", "metric update, no BF"), ("with", "metric update with BF"),
                       ("forward", "DeepLabv3+ MobileNetV2 forward, 360x480")):  # fmt: skip
        wall, cpu = times[f"{key} wall"], times[f"{key} cpu"]
        rounds = ", ".join(f"{1e3 * t:.1f}" for t in wall)
        print(f"| {label} | {1e3 * min(wall):.1f} | {1e3 * statistics.median(wall):.1f} | "
              f"{1e3 * min(cpu):.1f} | {1e3 * statistics.median(cpu):.1f} | {rounds} |")  # fmt: skip
    for clock in ("wall", "cpu"):
        extra = lo[f"with {clock}"] - lo[f"without {clock}"]
        base = lo[f"forward {clock}"] + lo[f"without {clock}"]
        print(f"{clock} (least disturbed): BF adds {1e3 * extra:.1f} ms per image = "
              f"{100 * extra / base:.1f} % of forward + metric ({1e3 * base:.0f} ms); metric with / "
              f"without BF {lo[f'with {clock}'] / lo[f'without {clock}']:.2f}x")  # fmt: skip


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
