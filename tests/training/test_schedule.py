"""Poly LR with warmup: exact values, per-group base LRs, and state round trip."""

from __future__ import annotations

import math

import pytest
import torch

from segkit.training.schedule import PolyFactor, poly_scheduler


def test_poly_values_without_warmup() -> None:
    f = PolyFactor(max_steps=100, power=0.9)
    assert f(0) == 1.0
    assert f(50) == pytest.approx(0.5**0.9)
    assert f(99) == pytest.approx(0.01**0.9)
    assert f(100) == 0.0
    assert f(150) == 0.0  # past the end: clamped, no complex power


def test_warmup_ramps_linearly_into_poly() -> None:
    f = PolyFactor(max_steps=100, power=0.9, warmup_steps=10, warmup_start_factor=0.1)
    at_end = (1 - 10 / 100) ** 0.9
    assert f(0) == pytest.approx(0.1 * at_end)
    assert f(5) == pytest.approx(0.55 * at_end)
    assert f(10) == pytest.approx(at_end)
    assert f(11) == pytest.approx((1 - 11 / 100) ** 0.9)
    values = [f(s) for s in range(100)]
    assert values.index(max(values)) == 10  # rises during warmup, then decays


def test_scheduler_steps_per_iteration_and_keeps_group_lrs() -> None:
    w1, w2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [w1], "lr": 0.1}, {"params": [w2], "lr": 0.01}], lr=0.01)
    sched = poly_scheduler(opt, max_steps=10, power=0.9)
    for _ in range(3):
        opt.step()
        sched.step()
    factor = (1 - 3 / 10) ** 0.9
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1 * factor, 0.01 * factor])


def test_scheduler_state_round_trip() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = poly_scheduler(opt, max_steps=20, warmup_steps=4)
    for _ in range(7):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = poly_scheduler(opt2, max_steps=20, warmup_steps=4)
    sched2.load_state_dict(sched.state_dict())
    opt2.load_state_dict(opt.state_dict())
    opt.step(), sched.step(), opt2.step(), sched2.step()
    assert math.isclose(opt.param_groups[0]["lr"], opt2.param_groups[0]["lr"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_steps": 0}, "trainer.max_steps"),
        ({"max_steps": 10, "warmup_steps": 10}, "module.warmup_steps"),
        ({"max_steps": 10, "warmup_steps": 2, "warmup_start_factor": 0.0}, "warmup_start_factor"),
    ],
)
def test_bad_schedule_settings_name_the_key(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PolyFactor(**kwargs)
