"""The compare tables flag a latency its analysis marked unreliable (``latency_warning``)."""

from __future__ import annotations

from segkit.compare.groups import DesignGroup
from segkit.compare.records import Record
from segkit.compare.table import LATENCY_MARK, cost_table, latency_notes, markdown


def _group(**analysis) -> DesignGroup:
    record = Record(design="DeepLabv3+", model="deeplabv3plus", backbone="mobilenetv2",
                    output_stride=16, eval_output_stride=None,
                    analysis={"latency_ms": 12.5, "params": 1e6, **analysis})  # fmt: skip
    return DesignGroup([record])


def test_flagged_latency_is_marked_and_explained() -> None:
    warning = "the machine was busy"
    groups = [_group(latency_warning=warning, latency_runs=5, latency_spread=0.4)]
    assert f"12.5 (n=1) {LATENCY_MARK}" in cost_table(groups)
    notes = latency_notes(groups)
    assert warning in notes and "5 timed runs" in notes and "spread 40 % of the median" in notes
    assert notes in markdown(groups)


def test_a_warning_that_states_runs_and_spread_is_not_repeated() -> None:
    warning = "5 timed runs spread 40% of the median: loaded machine?"
    groups = [_group(latency_warning=warning, latency_runs=5, latency_spread=0.4)]
    assert (
        latency_notes(groups)
        == f"- {LATENCY_MARK} row 1 (DeepLabv3+ / mobilenetv2, OS 16): {warning}"
    )


def test_warning_under_extra_is_read_too() -> None:
    assert LATENCY_MARK in cost_table([_group(extra={"latency_warning": "noisy"})])


def test_unflagged_latency_has_no_mark() -> None:
    groups = [_group(latency_runs=5, latency_spread=0.02, latency_warning=None)]
    assert LATENCY_MARK not in cost_table(groups)
    assert latency_notes(groups) == "" and LATENCY_MARK not in markdown(groups)
