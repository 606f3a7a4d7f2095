"""The training clock (segkit.training.clock): a run's time over the processes that trained it."""

from __future__ import annotations

import time

import pytest

from segkit.training.clock import TrainClock


def test_one_process_is_one_segment() -> None:
    clock = TrainClock()
    clock.begin()
    clock.first_step(0)
    time.sleep(0.02)
    summary = clock.summary(5)
    (segment,) = summary["train_segments"]
    assert (segment["from_step"], segment["to_step"]) == (0, 5)
    assert summary["train_time_s"] == segment["wall_s"] >= 0.02
    assert summary["train_untimed_steps"] == 0


def test_a_resume_adds_its_segment_to_the_checkpoints() -> None:
    first = TrainClock()
    first.begin()
    first.first_step(0)
    time.sleep(0.02)
    saved = first.state(3)  # what last.ckpt holds when the process is pre-empted after step 3

    second = TrainClock()
    second.begin()  # Lightning may load the checkpoint after on_fit_start ...
    second.load(saved)
    second.first_step(3)  # ... but the loops are restored before on_train_start
    summary = second.summary(7)
    spans = [(s["from_step"], s["to_step"]) for s in summary["train_segments"]]
    assert spans == [(0, 3), (3, 7)]
    assert summary["train_time_s"] == pytest.approx(
        sum(s["wall_s"] for s in summary["train_segments"])
    )
    assert summary["train_time_s"] >= 0.02 and summary["train_untimed_steps"] == 0


def test_a_checkpoint_without_a_clock_leaves_its_steps_untimed() -> None:
    """A checkpoint of an older segkit has no clock: its steps' time is unknown, and says so."""
    clock = TrainClock()
    clock.load(None)
    clock.begin()
    clock.first_step(253)
    summary = clock.summary(2500)
    assert summary["train_untimed_steps"] == 253
    assert [(s["from_step"], s["to_step"]) for s in summary["train_segments"]] == [(253, 2500)]
    # and a later resume of this run keeps the count
    again = TrainClock()
    again.load(clock.state(1000))
    again.first_step(1000)
    assert again.summary(2500)["train_untimed_steps"] == 253


def test_no_segment_before_fit_starts() -> None:
    assert TrainClock().summary(0) == {
        "train_time_s": 0, "train_cpu_s": 0, "train_segments": [], "train_untimed_steps": 0,
    }  # fmt: skip


def test_the_summary_line_says_a_run_was_resumed() -> None:
    from segkit.tasks.train import summary_lines

    segment = {"from_step": 0, "to_step": 3, "wall_s": 1.0, "cpu_s": 1.0, "load_avg_1min": 0.5}
    one = summary_lines({"global_step": 7, "train_time_s": 12.0, "train_segments": [segment]})
    assert one[0].startswith("done: 7 steps in 12 s; ")
    two = summary_lines(
        {"global_step": 7, "train_time_s": 12.0, "train_segments": [segment, segment],
         "train_untimed_steps": 2}
    )  # fmt: skip
    assert two[0].startswith("done: 7 steps in 12 s over 2 resumed segments (2 steps before them")
