"""Poly learning-rate schedule with optional linear warmup, stepped every iteration.

DeepLab (v2, v3, v3+) trains with ``lr = base_lr * (1 - step / max_steps) ** power`` and power 0.9,
updated every iteration rather than every epoch. A short linear warmup (common for large batches /
AdamW) ramps the factor from ``warmup_start_factor`` to the poly value at ``warmup_steps``.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from segkit.checks import check_lr_schedule


class PolyFactor:
    """The multiplicative LR factor at a given optimizer step (a picklable callable).

    factor(step) = (1 - step / max_steps) ** power             for step >= warmup_steps
                 = poly(warmup_steps) * ramp(step)              before, with ramp linear from
                                                                 warmup_start_factor to 1.
    Steps past ``max_steps`` give ``min_factor`` (never a negative base for the power).
    """

    def __init__(
        self,
        *,
        max_steps: int,
        power: float = 0.9,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.1,
        min_factor: float = 0.0,
    ) -> None:
        check_lr_schedule(
            max_steps=max_steps, warmup_steps=warmup_steps, warmup_start_factor=warmup_start_factor
        )
        self.max_steps = int(max_steps)
        self.power = float(power)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = float(warmup_start_factor)
        self.min_factor = float(min_factor)

    def settings(self) -> dict[str, Any]:
        """The schedule's parameters (what a checkpoint restores), by name."""
        return dict(vars(self))

    def poly(self, step: int) -> float:
        remaining = max(0.0, 1.0 - step / self.max_steps)
        return max(self.min_factor, remaining**self.power)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            alpha = step / self.warmup_steps
            ramp = self.warmup_start_factor + (1.0 - self.warmup_start_factor) * alpha
            return self.poly(self.warmup_steps) * ramp
        return self.poly(step)


def poly_scheduler(
    optimizer: Optimizer,
    *,
    max_steps: int,
    power: float = 0.9,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.1,
) -> LambdaLR:
    """A ``LambdaLR`` applying :class:`PolyFactor` to every param group (each keeps its own base LR,
    so backbone/head LR multipliers survive). Step it once per optimizer step."""
    factor = PolyFactor(
        max_steps=max_steps,
        power=power,
        warmup_steps=warmup_steps,
        warmup_start_factor=warmup_start_factor,
    )
    return LambdaLR(optimizer, lr_lambda=factor)


def retarget_poly(scheduler: LambdaLR, factor: PolyFactor) -> dict[str, tuple[Any, Any]]:
    """Make a restored poly scheduler follow ``factor`` from its current step on.

    Loading a checkpoint restores the schedule it was trained with (``LambdaLR`` saves its
    callable's attributes), so resuming with a larger ``trainer.max_steps`` would keep the old
    horizon and train at LR 0 past it. This swaps in ``factor`` (the schedule the run now asks
    for) and sets each param group's LR to ``base_lr * factor(step)`` at the current step, which is
    the LR a run planned with ``factor`` from the start would have there. Steps already trained are
    not replayed: the LR jumps to the new curve at the resume step.

    Returns ``{setting: (restored, now)}`` for the settings that differ; empty (and nothing
    changed) when the checkpoint's schedule is ``factor``'s.
    """
    restored = [lam for lam in scheduler.lr_lambdas if isinstance(lam, PolyFactor)]
    if not restored:
        return {}
    old, new = restored[0].settings(), factor.settings()
    changes = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
    if not changes:
        return {}
    step = scheduler.last_epoch
    scheduler.lr_lambdas = [factor for _ in scheduler.optimizer.param_groups]
    lrs = [base * factor(step) for base in scheduler.base_lrs]
    for group, lr in zip(scheduler.optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    scheduler._last_lr = lrs  # what get_last_lr() reports (torch keeps it in this attribute)
    return changes
