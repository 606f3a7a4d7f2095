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
from bisect import bisect_right
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LinearLR, LRScheduler, PolynomialLR, SequentialLR

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
    the same with and without warm-up, which lets a resume restore it whatever the config says.
    """
    check_lr_schedule(
        max_steps=total_steps, warmup_steps=warmup_steps, warmup_start_factor=warmup_start_factor
    )
    warmup = clip_warmup(int(warmup_steps), int(total_steps))
    ramp = LinearLR(optimizer, start_factor=warmup_start_factor, total_iters=max(warmup, 1))
    decay = PolynomialLR(optimizer, total_iters=int(total_steps) - warmup, power=float(power))
    return SequentialLR(optimizer, [ramp, decay], milestones=[warmup])


def _poly_part(scheduler: LRScheduler) -> tuple[PolynomialLR, int] | None:
    """(the ``PolynomialLR``, the step it starts at) inside ``scheduler``; None if it has none."""
    if isinstance(scheduler, PolynomialLR):
        return scheduler, 0
    if isinstance(scheduler, SequentialLR) and isinstance(scheduler._schedulers[-1], PolynomialLR):
        return scheduler._schedulers[-1], (scheduler._milestones or [0])[-1]
    return None


def poly_settings(scheduler: LRScheduler) -> dict[str, Any] | None:
    """``{"total_steps", "power"}`` of a poly schedule (None for another kind of scheduler)."""
    found = _poly_part(scheduler)
    if found is None:
        return None
    poly, start = found
    return {"total_steps": poly.total_iters + start, "power": poly.power}


def retarget_poly(
    scheduler: LRScheduler, *, total_steps: int, power: float
) -> dict[str, tuple[Any, Any]]:
    """Make a restored poly schedule end at ``total_steps`` with ``power``, from its current step.

    Loading a checkpoint restores the schedule it was trained with, so resuming with a larger
    ``trainer.max_steps`` would keep the old horizon and train at LR 0 past it. This sets the
    ``PolynomialLR``'s ``total_iters`` (and power) to what the run now asks for and, once the decay
    has started, each param group's LR to its closed-form value at the current step (torch steps
    ``PolynomialLR`` by a ratio of consecutive factors, so the LR must be on the new curve for the
    following steps to stay on it). The warm-up is the checkpoint's. Steps already trained are
    not replayed: the LR jumps to the new curve at the resume step.

    Returns ``{setting: (restored, now)}`` for the settings that differ; empty (and nothing
    changed) when they agree or ``scheduler`` holds no ``PolynomialLR``.
    """
    found = _poly_part(scheduler)
    if found is None:
        return {}
    poly, start = found
    old = {"total_steps": poly.total_iters + start, "power": poly.power}
    new = {"total_steps": int(total_steps), "power": float(power)}
    changes = {k: (old[k], v) for k, v in new.items() if old[k] != v}
    if not changes:
        return {}
    poly.total_iters, poly.power = max(1, new["total_steps"] - start), new["power"]
    if scheduler.last_epoch >= start:  # decaying: put every group's LR on the new curve
        lrs = poly._get_closed_form_lr()
        for group, lr in zip(scheduler.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        poly._last_lr = scheduler._last_lr = list(lrs)  # what get_last_lr() reports
    return changes


def upgrade_lambda_state(state: dict[str, Any]) -> dict[str, Any]:
    """The :func:`poly_lr` state for a scheduler state written before segkit used torch's
    schedulers (a ``LambdaLR`` whose ``lr_lambdas`` hold segkit's former ``PolyFactor`` settings:
    ``max_steps``, ``power``, ``warmup_steps``, ``warmup_start_factor``), at the same step, so
    such a checkpoint resumes. Without warm-up both schedules give the same LRs; with one, the
    former ramp ended on poly(W) over the whole run where ``poly_lr`` decays over the steps after
    it, so call :func:`put_lrs_on_schedule` after loading."""
    factor = state["lr_lambdas"][0]
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in state["base_lrs"]
    ]
    opt = torch.optim.SGD(groups, lr=state["base_lrs"][0])
    scheduler = poly_lr(
        opt,
        total_steps=int(factor["max_steps"]),
        power=float(factor["power"]),
        warmup_steps=int(factor["warmup_steps"]),
        warmup_start_factor=float(factor["warmup_start_factor"]),
    )
    for _ in range(int(state["last_epoch"])):
        opt.step()  # no gradients: nothing moves; keeps torch's step-order check quiet
        scheduler.step()
    return scheduler.state_dict()


def put_lrs_on_schedule(scheduler: LRScheduler) -> None:
    """Set every param group's LR to the closed-form value of the scheduler's current phase (torch
    steps ``LinearLR`` / ``PolynomialLR`` by ratios from the current LR, which must therefore be on
    the curve)."""
    if not isinstance(scheduler, SequentialLR):
        return
    active = scheduler._schedulers[bisect_right(scheduler._milestones, scheduler.last_epoch)]
    lrs = active._get_closed_form_lr()
    for group, lr in zip(scheduler.optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    active._last_lr = scheduler._last_lr = list(lrs)


__all__ = [
    "clip_warmup",
    "poly_lr",
    "poly_settings",
    "put_lrs_on_schedule",
    "retarget_poly",
    "upgrade_lambda_state",
]
