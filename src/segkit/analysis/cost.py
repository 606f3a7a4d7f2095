"""Cost of a model: parameters, multiply-adds, CPU latency.

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


def measure_latency(model: nn.Module, x: Tensor, *, runs: int = 3, warmup: int = 1) -> float:
    """Median wall time in ms of ``model(x)`` under ``torch.inference_mode`` after ``warmup`` runs.

    Uses the current ``torch.get_num_threads()``; the caller reports it next to the figure.
    """
    if runs < 1:
        raise ValueError(f"analyze.latency_runs must be >= 1, got {runs}")
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
