"""CPU training-step numerics: segkit's CPU recipe (bf16 autocast + channels_last) vs float32
contiguous, and segmentation_models_pytorch's DeepLabV3Plus beside it.

Run through ``benchmarks/bench_train.py --numerics`` (see there); needs the ``bench`` extra
(``pip install -e '.[bench]'``) for the smp rows, which are skipped without it.

One step = forward, cross-entropy, backward, AdamW step on random 21-class batches (no data
loading: the loader is the same for both numerics); ``bf16`` wraps forward and loss in
``torch.autocast("cpu", torch.bfloat16)``, exactly what Lightning's ``bf16-mixed`` does on a CPU,
and ``channels_last`` converts model and batch as ``SegModule(channels_last=True)`` does. The
variants of one size alternate (A, B, C, ..., A, B, C, ...) so load hits them alike; the figure is
the median. Work per image: forward multiply-adds, segkit's exact count (``segkit.analysis.trace``)
or, for smp, ``torch.utils.flop_counter.FlopCounterMode``'s forward FLOPs / 2; a training step is
taken as 3 forwards (6 FLOPs per MAC: FlopCounterMode over the backward counted grouped convolutions'
gradients far above that, 21x the forward for smp, so it is not used). The achieved GFLOP/s
follow; a large ``torch.matmul`` in float32 and bfloat16 measured in the same run gives the
processor's practical peak to compare with. The peak RSS of one training step at batch 8 is read
in a fresh process per variant.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

NUM_CLASSES = 21


@dataclass(frozen=True)
class Variant:
    model: str  # key of MODELS
    bf16: bool
    channels_last: bool

    @property
    def label(self) -> str:
        return f"{self.model}, " + ("bf16 + channels_last" if self.bf16 else "fp32 contiguous")


def _segkit(model: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from segkit.cli.configs import compose_config

        cfg = compose_config(
            "train", [f"model={model}", "backbone.weights=null", "data.num_classes=21"]
        )
        return instantiate(cfg.model)

    return build


def _smp() -> nn.Module:
    import segmentation_models_pytorch as smp

    net = smp.DeepLabV3Plus(encoder_name="mobilenet_v2", encoder_weights=None, classes=NUM_CLASSES)

    class Wrapped(nn.Module):  # the Segmentor call shape
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"out": self.net(x)}

    return Wrapped()


MODELS: dict[str, Callable[[], nn.Module]] = {
    "segkit DeepLabv3+/MobileNetV2 OS16": _segkit("deeplabv3plus"),
    "segkit FCN-8s/MobileNetV2": _segkit("fcn"),
    "smp DeepLabV3Plus/mobilenet_v2": _smp,
}


def model_size(model: str, size: tuple[int, int]) -> tuple[int, int]:
    """The input size ``model`` runs at: smp refuses sides not divisible by 16 (360 -> 368)."""
    if model.startswith("smp"):
        return (-(-size[0] // 16) * 16, -(-size[1] // 16) * 16)
    return size


def smp_available() -> bool:
    try:
        import segmentation_models_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


class Stepper:
    """One model + optimizer + fixed random batch, stepped under a variant's numerics."""

    def __init__(self, variant: Variant, batch: int, size: tuple[int, int]) -> None:
        torch.manual_seed(0)
        size = model_size(variant.model, size)
        self.variant = variant
        self.model = MODELS[variant.model]().train()
        fmt = torch.channels_last if variant.channels_last else torch.contiguous_format
        self.model.to(memory_format=fmt)
        self.x = torch.randn(batch, 3, *size).contiguous(memory_format=fmt)
        self.y = torch.randint(0, NUM_CLASSES, (batch, *size))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)

    def step(self) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.variant.bf16):
            out = self.model(self.x)
            loss = F.cross_entropy(out["out"], self.y)
            if "aux" in out:
                loss = loss + 0.4 * F.cross_entropy(out["aux"], self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def images_per_s(self, steps: int, warmup: int) -> float:
        for _ in range(warmup):
            self.step()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return steps * self.x.shape[0] / (time.perf_counter() - start)


def forward_macs(model: str, size: tuple[int, int]) -> float:
    """Forward multiply-adds per image: segkit's exact count (``segkit.analysis.trace``), else
    FlopCounterMode's forward FLOPs / 2 (smp)."""
    net = MODELS[model]().eval()
    size = model_size(model, size)
    if model.startswith("segkit"):
        from segkit.analysis.tracer import trace

        return float(trace(net, torch.zeros(1, 3, *size), meta=True).macs)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 3, *size))
    return counter.get_total_flops() / 2


def matmul_gflops(dtype: torch.dtype, n: int = 2048, runs: int = 5) -> float:
    """Best-of-``runs`` GFLOP/s of an ``n`` x ``n`` ``torch.matmul`` in ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def _vm_hwm_mib() -> float:
    """This process's peak resident set (VmHWM) in MiB."""
    for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_child(variant: Variant, batch: int, size: tuple[int, int], threads: int, queue) -> None:
    torch.set_num_threads(threads)
    stepper = Stepper(variant, batch, size)
    # getrusage's ru_maxrss survives exec (a spawned child reports its parent's peak): reset the
    # kernel's high-water mark instead and read VmHWM (Linux).
    Path("/proc/self/clear_refs").write_text("5")
    before = _vm_hwm_mib()
    stepper.step()
    queue.put((before, _vm_hwm_mib()))


def peak_rss_mib(variant: Variant, batch: int, size: tuple[int, int]) -> tuple[float, float]:
    """(MiB before the step, peak MiB over it) of a fresh process running one training step."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_rss_child, args=(variant, batch, size, torch.get_num_threads(), queue)
    )
    proc.start()
    try:
        result = queue.get(timeout=900)
    except Exception:  # the child failed (its traceback is on stderr)
        result = (float("nan"), float("nan"))
    proc.join()
    return result


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(
    sizes: list[tuple[int, int]],
    batch: int,
    steps: int,
    warmup: int,
    repeats: int,
    rss_at: tuple[int, int, int] = (8, 360, 480),
) -> dict:
    """All measurements; see the module docstring."""
    models = [m for m in MODELS if m.startswith("segkit") or smp_available()]
    variants = [Variant(m, bf16, bf16) for m in models for bf16 in (False, True)]
    peaks: dict[str, list[float]] = {"fp32": [], "bf16": []}
    speed: dict[tuple[str, tuple[int, int]], list[float]] = {}
    for size in sizes:
        steppers = [Stepper(v, batch, size) for v in variants]
        for _ in range(repeats):  # interleaved: every variant once per round
            peaks["fp32"].append(matmul_gflops(torch.float32))
            peaks["bf16"].append(matmul_gflops(torch.bfloat16))
            for s in steppers:
                speed.setdefault((s.variant.label, size), []).append(s.images_per_s(steps, warmup))
                _say(f"{s.variant.label} {size}: {speed[(s.variant.label, size)][-1]:.2f} img/s")
        del steppers
    work = {(m, size): forward_macs(m, size) for m in models for size in sizes}
    _say("work per image counted; peak RSS next (a fresh process per variant)")
    rss = {}
    for v in variants:
        rss[v.label] = peak_rss_mib(v, rss_at[0], rss_at[1:])
        _say(f"{v.label}: peak RSS {rss[v.label][1]:.0f} MiB")
    return {"models": models, "variants": variants, "speed": speed, "work": work, "rss": rss,
            "peaks": peaks, "rss_at": rss_at}  # fmt: skip


def render(res: dict, sizes: list[tuple[int, int]], batch: int) -> list[str]:
    """Markdown tables of :func:`run`'s result."""
    med = statistics.median
    peak32, peak16 = max(res["peaks"]["fp32"]), max(res["peaks"]["bf16"])
    lines = [
        f"- matmul peak in this run (2048^3, best of 5 per round, best round): fp32 "
        f"{peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s (rounds: fp32 "
        f"{', '.join(f'{p:.0f}' for p in res['peaks']['fp32'])}; bf16 "
        f"{', '.join(f'{p:.0f}' for p in res['peaks']['bf16'])})",
        "",
        "| model | size | numerics | images/s (median) | runs | x fp32 | fwd GMAC/img "
        "| images/s x fwd GMAC | step GFLOP/img | achieved GFLOP/s | % of matmul peak |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        for m in res["models"]:
            macs = res["work"][(m, size)]
            flops = 3 * 2 * macs  # a step ~ 3 forwards (backward: input and weight gradients)
            base = med(res["speed"][(Variant(m, False, False).label, size)])
            for bf16 in (False, True):
                v = Variant(m, bf16, bf16)
                runs = res["speed"][(v.label, size)]
                ips = med(runs)
                gflops = ips * flops / 1e9
                peak = peak16 if bf16 else peak32
                gmac, per = f"{macs / 1e9:.2f}", f"{ips * macs / 1e9:.1f}"
                run_size = model_size(m, size)
                lines.append(
                    f"| {m} | {run_size[0]}x{run_size[1]} | {v.label.split(', ')[1]} | {ips:.2f} | "
                    f"{', '.join(f'{r:.2f}' for r in runs)} | {ips / base:.2f} | {gmac} | {per} | "
                    f"{flops / 1e9:.1f} | {gflops:.0f} | {100 * gflops / peak:.0f}% |"
                )
    b, h, w = res["rss_at"]
    lines += ["", f"Peak RSS of one training step, batch {b}, {h}x{w} (fresh process each):", "",
              "| model | numerics | RSS before the step (MiB) | peak RSS (MiB) | step's growth (MiB) |",
              "|---|---|---:|---:|---:|"]  # fmt: skip
    for label, (before, peak) in res["rss"].items():
        model, numerics = label.split(", ")
        lines.append(f"| {model} | {numerics} | {before:.0f} | {peak:.0f} | {peak - before:.0f} |")
    return lines


__all__ = ["MODELS", "Variant", "render", "run"]
