"""Cost of a model: parameters, multiply-adds, CPU latency and how far to trust it.

Multiply-adds (MACs) are counted per executed aten op, without bias/BN/activation terms (the usual
convention; one MAC = one multiplication plus one addition = 2 FLOPs):

- convolution: ``N * K_h * K_w * C_in / g * H_out * W_out`` per image (``out.numel() * K_h * K_w *
  C_in / g``); transposed: ``in.numel() * K_h * K_w * C_out / g``;
- ``mm``/``addmm``: ``m * k * n``; ``bmm``/``baddbmm``: ``b * m * k * n``.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch
from torch import Tensor, nn


def op_macs(func: Any, args: tuple, out: Any) -> int:
    """Multiply-adds of one aten op call (0 for ops that are not conv/matmul)."""
    name = func.overloadpacket.__name__
    if name == "convolution":
        x, w, transposed = args[0], args[1], bool(args[6])
        taps = math.prod(w.shape[2:])
        # weight is (C_out, C_in/g, k, k), or (C_in, C_out/g, k, k) when transposed
        return (x.numel() if transposed else out.numel()) * w.shape[1] * taps
    if name in ("mm", "bmm"):
        return out.numel() * args[0].shape[-1]
    if name in ("addmm", "baddbmm"):
        return out.numel() * args[1].shape[-1]
    return 0


def count_params(module: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def state_bytes(module: nn.Module) -> int:
    """Bytes held by parameters and buffers (e.g. BN running statistics)."""
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def latency_samples(
    model: nn.Module,
    x: Tensor,
    *,
    runs: int = 3,
    warmup: int = 1,
    budget_s: float | None = None,
) -> list[float]:
    """Wall times in ms of up to ``runs`` timed ``model(x)`` calls under ``torch.inference_mode``,
    after ``warmup`` untimed ones (0 when the caller has just run the same forward).

    ``budget_s``: stop once the timed runs total more than this many seconds (at least one run
    is always timed), so a heavy model is timed fewer times; ``None`` = exactly ``runs``.
    Uses the current ``torch.get_num_threads()``; the caller reports it next to the figure.
    """
    if runs < 1:
        raise ValueError(f"latency_runs must be >= 1, got {runs}")
    if budget_s is not None and budget_s <= 0:
        raise ValueError(f"latency_budget_s must be > 0 or None, got {budget_s}")
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        while len(times) < runs and (budget_s is None or sum(times) <= budget_s * 1e3):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return times


#: Fewer timed runs than this measure no spread worth the name: the figure is flagged.
LATENCY_MIN_RUNS = 3
#: A spread (max - min) / median above this is flagged (a loaded machine, frequency scaling...).
LATENCY_MAX_SPREAD = 0.25


def latency_summary(times_ms: list[float]) -> dict[str, float | int | str | None]:
    """``latency_ms`` (median), ``latency_runs``, ``latency_spread`` ((max - min) / median of the
    timed runs; None below 2 runs) and ``latency_warning`` (a short reason not to trust the figure,
    or None) of the timed runs ``times_ms``; all None when nothing was timed."""
    if not times_ms:
        return dict.fromkeys(("latency_ms", "latency_runs", "latency_spread", "latency_warning"))
    median = statistics.median(times_ms)
    spread = (max(times_ms) - min(times_ms)) / median if len(times_ms) > 1 else None
    warning = None
    if len(times_ms) < LATENCY_MIN_RUNS:
        warning = f"only {len(times_ms)} timed run(s): spread not measured"
    elif spread is not None and spread > LATENCY_MAX_SPREAD:
        warning = f"{len(times_ms)} timed runs spread {spread:.0%} of the median: loaded machine?"
    return {
        "latency_ms": median,
        "latency_runs": len(times_ms),
        "latency_spread": None if spread is None else round(spread, 3),
        "latency_warning": warning,
    }
