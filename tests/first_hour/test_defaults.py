"""Defaults that fit the machine: DataLoader workers capped by the CPUs, an inspection grid that
samples the whole split (not its first, near-identical video frames)."""

from __future__ import annotations

import os

import pytest

from segkit.cli.configs import compose_config, workers
from segkit.tasks.inspect_data import spread


@pytest.mark.parametrize("cpus,limit,expected", [(2, 4, 2), (16, 4, 4), (1, 4, 1), (8, 0, 1)])
def test_workers_is_capped_by_the_cpus_this_process_may_use(monkeypatch, cpus, limit, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cpus)), raising=False)
    assert workers(limit) == expected


@pytest.mark.parametrize("data", ["voc", "cityscapes", "ade20k", "folder", "camvid"])
def test_data_configs_default_to_no_more_workers_than_cpus(data):
    cfg = compose_config("train", [f"data={data}"])
    assert 1 <= cfg.data.num_workers <= min(4, len(os.sched_getaffinity(0)))


def test_an_explicit_worker_count_still_wins():
    assert compose_config("train", ["data=voc", "data.num_workers=7"]).data.num_workers == 7


def test_spread_takes_first_last_and_evenly_spaced_items():
    items = list(range(100))
    assert spread(items, 5) == [0, 25, 50, 74, 99]
    assert spread(items, 1) == [0]
    assert spread(items[:3], 8) == [0, 1, 2]
    picked = spread(items, 8)
    assert len(set(picked)) == 8 and picked[0] == 0 and picked[-1] == 99
