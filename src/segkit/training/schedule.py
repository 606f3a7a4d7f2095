"""Poly learning rate with an optional linear warm-up, stepped every iteration: torch's schedulers.

DeepLab (v2, v3, v3+) trains with ``lr = base_lr * (1 - step / max_steps) ** power`` and power 0.9,
updated every iteration. As in the torchvision segmentation reference, a warm-up of W steps is
``LinearLR`` (factor ``warmup_start_factor`` -> 1) followed by ``PolynomialLR`` decaying over the
remaining ``total_steps - W`` steps, chained by ``SequentialLR``. Every param group keeps its own
base LR, so the backbone/head LR multiplier survives.

:func:`poly_lr` is the ``module.scheduler`` partial (``configs/scheduler/poly.yaml``); SegModule
calls it with the optimizer and the run's number of optimizer steps.
"""

from __future__ import annotations

import logging

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LinearLR, PolynomialLR, SequentialLR

from segkit.checks import check_lr_schedule

log = logging.getLogger(__name__)


def clip_warmup(warmup_steps: int, total_steps: int) -> int:
    """The warm-up a run of ``total_steps`` gets: at most half of it. A recipe's warm-up (e.g.
    the quickstart's 20 steps) must not make a shortened run (``trainer.max_steps=20``) fail."""
    limit = total_steps // 2
    if warmup_steps <= limit:
        return warmup_steps
    log.warning(
        "module.scheduler.warmup_steps=%d does not fit in half of this %d-step run: warming up "
        "over %d steps instead (set module.scheduler.warmup_steps to choose)",
        warmup_steps,
        total_steps,
        limit,
    )
    return limit


def poly_lr(
    optimizer: Optimizer,
    *,
    total_steps: int,
    power: float = 0.9,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.1,
) -> SequentialLR:
    """``SequentialLR(LinearLR warm-up, PolynomialLR)`` over ``total_steps`` optimizer steps.

    The warm-up is clipped to half the run (:func:`clip_warmup`, logged). Without warm-up the
    ``LinearLR`` is never stepped (milestone 0): the structure, and so the checkpointed state, is
    the same with and without warm-up. A resume restores this state as saved (its horizon
    included): ``tasks.train`` refuses one that asks for another ``trainer.max_steps``.
    """
    check_lr_schedule(
        max_steps=total_steps, warmup_steps=warmup_steps, warmup_start_factor=warmup_start_factor
    )
    warmup = clip_warmup(int(warmup_steps), int(total_steps))
    ramp = LinearLR(optimizer, start_factor=warmup_start_factor, total_iters=max(warmup, 1))
    decay = PolynomialLR(optimizer, total_iters=int(total_steps) - warmup, power=float(power))
    return SequentialLR(optimizer, [ramp, decay], milestones=[warmup])


__all__ = ["clip_warmup", "poly_lr"]
