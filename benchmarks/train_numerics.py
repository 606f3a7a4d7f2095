"""CPU training step side by side in one process: segkit's CPU recipe (bf16 autocast +
channels_last) and float32, next to segmentation_models_pytorch's DeepLabV3Plus(mobilenet_v2) in
float32 eager and under the same bf16 + channels_last (which separates "uses the hardware" from
"is faster"). Run through ``benchmarks/bench_train.py --numerics`` (see there); needs the ``bench``
extra (``pip install -e '.[bench]'``) for the smp rows.

Like with like: one step = forward, cross-entropy, backward, AdamW step, at the same input size,
batch, thread count and class count (12) for every model, on a fixed random batch (no data
loading: `_loader_rate.py` measures that). segkit's network is the CamVid recipe's
(``experiment=camvid/deeplabv3plus``: MobileNetV2 x1.0, DeepLabv3+ OS 16), built from its configs,
fed uint8 as in training (it normalises itself); smp's is
``DeepLabV3Plus(encoder_name="mobilenet_v2", encoder_weights=None, classes=12)`` (output stride 16),
fed float32, its input zero-padded to a multiple of 16 (which smp requires: 360 -> 368) and its
logits cropped back. ``bf16`` wraps forward and loss in ``torch.autocast("cpu", torch.bfloat16)``,
exactly what Lightning's ``bf16-mixed`` does on a CPU, and ``channels_last`` converts model and
batch as ``SegModule(channels_last=True)`` does.

Every step is timed; the variants and a large ``torch.matmul`` in float32 and bfloat16 (this
CPU's practical peak) alternate step by step (``_helpers.interleave``), and the least disturbed
(shortest) step is the figure, with the spread beside it. Work: the multiply-adds each model
really runs, forward and the whole step (backward included), counted by one counter for both
(``segkit.analysis.cost.MacCounter``), so "per GMAC" is fair. Peak RSS of one step is read in a
fresh process per variant.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from _helpers import interleave, least_disturbed

NUM_CLASSES = 12
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def segkit_builder(experiment: str, *overrides: str) -> Callable[[int], nn.Module]:
    """The network of ``experiment=<experiment>`` (its configs, random init), ``classes`` outputs."""

    composed: dict[int, DictConfig] = {}  # Hydra's compose takes seconds: once per class count

    def build(classes: int = NUM_CLASSES) -> nn.Module:
        from segkit.cli.configs import compose_config

        if classes not in composed:
            composed[classes] = compose_config(
                "train",
                [f"experiment={experiment}", "backbone.weights=null", f"data.num_classes={classes}",
                 *overrides],
            )  # fmt: skip
        return instantiate(composed[classes].model)

    return build


class SmpDeepLabV3Plus(nn.Module):
    """smp's DeepLabV3Plus(mobilenet_v2) with the Segmentor call shape: float input zero-padded
    to a multiple of 16 (smp refuses other sides), logits cropped back to the input size."""

    def __init__(self, classes: int = NUM_CLASSES) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        self.net = smp.DeepLabV3Plus(
            encoder_name="mobilenet_v2", encoder_weights=None, classes=classes
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        return {"out": self.net(F.pad(x, (0, -w % 16, 0, -h % 16)))[..., :h, :w]}


MODELS: dict[str, Callable[[int], nn.Module]] = {
    "segkit DeepLabv3+": segkit_builder("camvid/deeplabv3plus"),
    "segkit FCN-8s": segkit_builder("camvid/fcn8s"),
    "smp DeepLabV3Plus": SmpDeepLabV3Plus,
}
DEFAULT_MODELS = ("segkit DeepLabv3+", "smp DeepLabV3Plus")


@dataclass(frozen=True)
class Variant:
    model: str  # key of MODELS
    fast: bool  # bf16 autocast + channels_last (segkit's CPU recipe) instead of float32 NCHW

    @property
    def numerics(self) -> str:
        return "bf16 + channels_last" if self.fast else "fp32"

    @property
    def label(self) -> str:
        return f"{self.model}, {self.numerics}"


def smp_available() -> bool:
    try:
        import segmentation_models_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def example_batch(
    model: str, batch: int, size: tuple[int, int], classes: int = NUM_CLASSES
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image, mask): uint8 for segkit (its contract: the model normalises), normalised float32
    for smp (what its users feed it)."""
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (batch, 3, *size), dtype=torch.uint8, generator=g)
    if not model.startswith("segkit"):
        mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
        image = (image.float() / 255 - mean) / std
    return image, torch.randint(0, classes, (batch, *size), generator=g)


class Stepper:
    """One model + AdamW + fixed batch, stepped under the given numerics (``step`` -> seconds)."""

    def __init__(
        self,
        model: nn.Module,
        batch: tuple[torch.Tensor, torch.Tensor],
        *,
        bf16: bool,
        channels_last: bool,
        compile_backend: str | None = None,
    ) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.bf16, self.model = bf16, model.train().to(memory_format=fmt)
        if compile_backend:
            self.model.compile(backend=compile_backend)  # in place, as compile=true does
        self.x, self.y = batch[0].contiguous(memory_format=fmt), batch[1]
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)

    @classmethod
    def of(cls, variant: Variant, batch: int, size: tuple[int, int]) -> Stepper:
        torch.manual_seed(0)
        model = MODELS[variant.model](NUM_CLASSES)
        x_y = example_batch(variant.model, batch, size)
        return cls(model, x_y, bf16=variant.fast, channels_last=variant.fast)

    @property
    def images(self) -> int:
        return self.x.shape[0]

    def step(self) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(self.x)
            loss = F.cross_entropy(out["out"], self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - start


def step_macs(model: str, size: tuple[int, int]) -> dict[str, object]:
    """Multiply-adds per image of ``model`` at ``size``: ``forward`` and the whole training
    ``step`` (forward + backward), ``step_by_kind`` (dense / depthwise conv, matmul)."""
    from segkit.analysis.cost import MacCounter

    torch.manual_seed(0)
    net = MODELS[model](NUM_CLASSES).train()
    x, y = example_batch(model, 2, size)  # 2: a training-mode batch norm after global pooling
    with MacCounter() as fwd:
        loss = F.cross_entropy(net(x)["out"], y)
    with MacCounter() as bwd:
        loss.backward()
    kinds = {k: (fwd.macs.get(k, 0) + bwd.macs.get(k, 0)) // 2 for k in {*fwd.macs, *bwd.macs}}
    return {"forward": fwd.total // 2, "step": (fwd.total + bwd.total) // 2, "step_by_kind": kinds}


class Matmul:
    """One ``n`` x ``n`` ``torch.matmul`` in ``dtype`` (2 n^3 FLOPs); a call returns its seconds."""

    def __init__(self, dtype: torch.dtype, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.a, self.b = (torch.randn(n, n, generator=g).to(dtype) for _ in range(2))

    def __call__(self) -> float:
        start = time.perf_counter()
        torch.matmul(self.a, self.b)
        return time.perf_counter() - start


def run(
    models: list[str],
    sizes: list[tuple[int, int]],
    batch: int,
    steps: int,
    warmup: int,
    matmul_n: int = 4096,
) -> dict[str, object]:
    """Every variant at every size, ``steps`` timed steps each after ``warmup`` untimed ones, and
    the matmul peaks, all interleaved; step times as ``_helpers.least_disturbed``, the work per
    image, images/s and achieved GFLOP/s. ``steppers`` (kept for the profile) in the result."""
    variants = [Variant(m, fast) for m in models for fast in (True, False)]
    steppers = {(v, s): Stepper.of(v, batch, s) for s in sizes for v in variants}
    for stepper in steppers.values():
        for _ in range(warmup):
            stepper.step()
    jobs: dict[str, Callable[[], float]] = {
        f"{v.label} @ {s[0]}x{s[1]}": st.step for (v, s), st in steppers.items()
    }
    for dtype in (torch.float32, torch.bfloat16):
        jobs[f"matmul {dtype}"] = Matmul(dtype, matmul_n)
        jobs[f"matmul {dtype}"]()  # warm-up (packing, AMX tile set-up)
    times = interleave(jobs, steps)
    peaks = {name: 2 * matmul_n**3 / least_disturbed(times[f"matmul {dtype}"])["best"] / 1e9
             for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}  # fmt: skip
    work = {f"{m} @ {s[0]}x{s[1]}": step_macs(m, s) for m in models for s in sizes}
    rows = []
    for (v, s), st in steppers.items():
        key = f"{s[0]}x{s[1]}"
        t = least_disturbed(times[f"{v.label} @ {key}"])
        w = work[f"{v.model} @ {key}"]
        ips = st.images / t["best"]
        gflops = ips * 2 * w["step"] / 1e9
        peak = peaks["bf16" if v.fast else "fp32"]
        rows.append({"model": v.model, "numerics": v.numerics, "size": key, "batch": batch,
                     "step_seconds": t, "images_per_s": ips,
                     "fwd_gmac_per_image": w["forward"] / 1e9,
                     "step_gmac_per_image": w["step"] / 1e9,
                     "gmac_per_s": ips * w["forward"] / 1e9, "achieved_gflop_s": gflops,
                     "share_of_peak": gflops / peak})  # fmt: skip
    return {"peaks_gflop_s": peaks, "matmul_n": matmul_n,
            "matmul_seconds": {k: least_disturbed(v) for k, v in times.items() if "matmul" in k},
            "work": work, "rows": rows, "steppers": steppers}  # fmt: skip


def _vm_hwm_mib() -> float:
    """This process's peak resident set (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_child(variant: Variant, batch: int, size: tuple[int, int], threads: int, queue) -> None:
    torch.set_num_threads(threads)
    stepper = Stepper.of(variant, batch, size)
    # getrusage's ru_maxrss survives exec (a spawned child reports its parent's peak): reset the
    # kernel's high-water mark instead and read VmHWM (Linux).
    Path("/proc/self/clear_refs").write_text("5")
    before = _vm_hwm_mib()
    stepper.step()
    queue.put((before, _vm_hwm_mib()))


def peak_rss_mib(variant: Variant, batch: int, size: tuple[int, int]) -> dict[str, float]:
    """MiB resident before one training step and at its peak, in a fresh process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    args = (variant, batch, size, torch.get_num_threads(), queue)
    proc = ctx.Process(target=_rss_child, args=args)
    proc.start()
    try:
        before, peak = queue.get(timeout=900)
    except Exception:  # the child failed (its traceback is on stderr)
        before, peak = float("nan"), float("nan")
    proc.join()
    return {"before_mib": before, "peak_mib": peak, "growth_mib": peak - before}


def rss(models: list[str], batch: int, size: tuple[int, int]) -> list[dict[str, object]]:
    """Peak RSS of one step of every variant at ``batch`` x ``size`` (the CamVid recipe's batch)."""
    return [{"model": v.model, "numerics": v.numerics, "batch": batch, "size": f"{size[0]}x{size[1]}",
             **peak_rss_mib(v, batch, size)}
            for m in models for v in (Variant(m, True), Variant(m, False))]  # fmt: skip


__all__ = ["DEFAULT_MODELS", "MODELS", "NUM_CLASSES", "Stepper", "Variant", "rss", "run"]
