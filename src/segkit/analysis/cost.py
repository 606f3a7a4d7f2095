"""Cost of a model: parameters, multiply-adds, CPU latency and how far to trust it.

Multiply-adds (MACs) are counted per executed aten op, without bias/BN/activation terms (the usual
convention; one MAC = one multiplication plus one addition = 2 FLOPs):

- convolution: ``N * K_h * K_w * C_in / g * H_out * W_out`` per image (``out.numel() * K_h * K_w *
  C_in / g``); transposed: ``in.numel() * K_h * K_w * C_out / g``;
- its backward (``convolution_backward``): the forward's count once for the input gradient and once
  for the weight gradient, each when asked for (the first layer needs no input gradient);
- ``mm``/``addmm``: ``m * k * n``; ``bmm``/``baddbmm``: ``b * m * k * n``.

``MacCounter`` counts them over any code (a training step: forward, backward, optimizer) by kind;
``FlopCounterMode`` agrees on forward passes (tests/analysis/test_cost.py) but counts the gradients
of grouped convolutions as if dense.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode


def op_macs(func: Any, args: tuple, out: Any) -> int:
    """Multiply-adds of one aten op call (0 for ops that are not conv/matmul)."""
    name = func.overloadpacket.__name__
    if name == "convolution":
        x, w, transposed = args[0], args[1], bool(args[6])
        taps = math.prod(w.shape[2:])
        # weight is (C_out, C_in/g, k, k), or (C_in, C_out/g, k, k) when transposed
        return (x.numel() if transposed else out.numel()) * w.shape[1] * taps
    if name == "convolution_backward":
        grad_out, x, w, transposed, mask = args[0], args[1], args[2], bool(args[7]), args[10]
        forward = (
            (x.numel() if transposed else grad_out.numel()) * w.shape[1] * math.prod(w.shape[2:])
        )
        return forward * (int(mask[0]) + int(mask[1]))
    if name in ("mm", "bmm"):
        return out.numel() * args[0].shape[-1]
    if name in ("addmm", "baddbmm"):
        return out.numel() * args[1].shape[-1]
    return 0


def op_kind(func: Any, args: tuple) -> str:
    """``conv dense``, ``conv depthwise`` (one input channel per group) or ``matmul``: the kind of
    an op that :func:`op_macs` counts (forward or backward)."""
    name = func.overloadpacket.__name__
    if name in ("convolution", "convolution_backward"):
        w, groups = (args[1], args[8]) if name == "convolution" else (args[2], args[9])
        return "conv depthwise" if groups > 1 and w.shape[1] == 1 else "conv dense"
    return "matmul"


class MacCounter(TorchDispatchMode):
    """Multiply-adds of every op run inside it, by :func:`op_kind` (``macs``) and in total
    (``total``): ``with MacCounter() as c: step()``. Any model, forward and backward alike."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # see tracer._TraceMode: no torch._dynamo import for a counting mode

    def __init__(self) -> None:
        super().__init__()
        self.macs: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.macs.values())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        if kwargs:  # positional with schema defaults, as op_macs indexes them
            args = (*args, *(kwargs.get(a.name, a.default_value)
                             for a in func._schema.arguments[len(args):]))  # fmt: skip
        macs = op_macs(func, args, out)
        if macs:
            kind = op_kind(func, args)
            self.macs[kind] = self.macs.get(kind, 0) + macs
        return out


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
