"""Poly LR (torch's PolynomialLR after a LinearLR warm-up): exact values, per-group base LRs, the
warm-up clipped to short runs, state round trip."""

from __future__ import annotations

import logging

import pytest
import torch

from segkit.training.schedule import poly_lr


def _optimizer(*lrs: float) -> torch.optim.SGD:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0])


def _lrs(opt: torch.optim.Optimizer, sched, steps: int) -> list[list[float]]:
    """The LR of every group at optimizer steps 0 .. steps-1 (what each step trains with)."""
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return seen


def test_poly_without_warmup_is_deeplabs_formula_per_group() -> None:
    opt = _optimizer(0.1, 0.01)
    seen = _lrs(opt, poly_lr(opt, total_steps=10, power=0.9), 12)
    for step, (head, backbone) in enumerate(seen):
        factor = max(0.0, 1 - step / 10) ** 0.9
        assert head == pytest.approx(0.1 * factor, abs=1e-12), step
        assert backbone == pytest.approx(0.01 * factor, abs=1e-12), step
    assert seen[10] == seen[11] == [0.0, 0.0]  # the end of the horizon: LR 0, not negative


def test_warmup_ramps_linearly_then_poly_decays_over_the_rest() -> None:
    opt = _optimizer(1.0)
    seen = [lr for (lr,) in _lrs(opt, poly_lr(opt, total_steps=100, warmup_steps=10), 100)]
    assert seen[:10] == pytest.approx([0.1 + 0.9 * s / 10 for s in range(10)])
    assert seen[10:] == pytest.approx([(1 - (s - 10) / 90) ** 0.9 for s in range(10, 100)])
    assert seen.index(max(seen)) == 10  # rises during warm-up, then decays


def test_a_warmup_longer_than_half_the_run_is_clipped_and_said(caplog) -> None:
    """The quickstart's 20-step warm-up in a 20-step run (trainer.max_steps=20): trains."""
    opt = _optimizer(1.0)
    with caplog.at_level(logging.WARNING, logger="segkit"):
        sched = poly_lr(opt, total_steps=20, warmup_steps=20)
    assert "module.scheduler.warmup_steps=20" in caplog.text and "over 10 steps" in caplog.text
    seen = [lr for (lr,) in _lrs(opt, sched, 20)]
    assert seen.index(max(seen)) == 10 and seen[10] == pytest.approx(1.0)
    assert seen[-1] > 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="segkit"):
        poly_lr(_optimizer(1.0), total_steps=20, warmup_steps=10)  # fits: untouched, silent
    assert not caplog.text


def test_state_round_trip_continues_identically() -> None:
    opt = _optimizer(1.0)
    sched = poly_lr(opt, total_steps=20, warmup_steps=4)
    _lrs(opt, sched, 7)
    opt2 = _optimizer(1.0)
    sched2 = poly_lr(opt2, total_steps=20, warmup_steps=4)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert _lrs(opt2, sched2, 13) == _lrs(opt, sched, 13)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"total_steps": 0}, r"positive number of steps, got 0 \(the Trainer's max_steps"),
        ({"total_steps": 10, "warmup_steps": -1}, "^warmup_steps must be >= 0, got -1$"),
        (
            {"total_steps": 10, "warmup_start_factor": 0.0},
            r"^warmup_start_factor must be in \(0, 1\]",
        ),
    ],
)
def test_bad_schedule_settings_name_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        poly_lr(_optimizer(1.0), **kwargs)
