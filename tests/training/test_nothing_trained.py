"""A run that trains nothing, or validates nothing, is an error: never `finished` at step 0."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from segkit.tasks.train import NothingTrained, check_batches, train


def test_a_train_split_smaller_than_one_batch_is_refused_before_training(
    compose_train, tiny_deeplab, tmp_path: Path
) -> None:
    """The issue: 6 train images, data.batch_size=16 -> "No training batches", status finished,
    global_step 0, no checkpoint, exit 0."""
    cfg = compose_train(*tiny_deeplab, "data.dataset.num_train=6", "data.batch_size=16")
    with pytest.raises(ValueError, match=r"has 6 images, fewer than data.batch_size=16: .*nothing "
                       r"would be trained; lower data.batch_size \(at most 6\)"):  # fmt: skip
        train(cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not (tmp_path / "run" / "checkpoints").exists()


class _Split(list):
    split_path = Path("/d/split.txt")


def test_check_batches_counts_images_per_ddp_process() -> None:
    data = SimpleNamespace(train_set=_Split(range(12)), batch_size=8)
    check_batches(data, SimpleNamespace(world_size=1))  # one batch of 8: trains
    with pytest.raises(ValueError, match=r"on each of trainer.devices=2 processes.*at most 6"):
        check_batches(data, SimpleNamespace(world_size=2))  # 6 images per process < 8


def test_a_run_that_ends_at_step_zero_is_an_error_not_finished(
    compose_train, tiny_deeplab, tmp_path: Path
) -> None:
    """The backstop, whatever the cause (here Lightning's own trainer.limit_train_batches=0)."""
    cfg = compose_train(*tiny_deeplab, "trainer.limit_train_batches=0")
    with pytest.raises(NothingTrained, match=r"training ended at step 0: no batch was trained"):
        train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["global_step"] == 0
    assert not list((tmp_path / "run").glob("checkpoints/*.ckpt"))  # as the message says


def test_a_resume_with_no_step_left_is_refused(compose_train, tiny_deeplab, tmp_path: Path) -> None:
    """A sibling: a checkpoint at or past trainer.max_steps trained nothing and ended finished."""
    train(compose_train(*tiny_deeplab, "trainer.max_steps=2", run="first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    cfg = compose_train(*tiny_deeplab, "trainer.max_steps=2", f"ckpt_path={last}", run="again")
    with pytest.raises(ValueError, match=r"is at step 2 and trainer.max_steps=2: nothing would be "
                       r"trained \(the run is finished; to train longer, start a new run"):  # fmt: skip
        train(cfg)
    assert not (tmp_path / "again" / "metrics.json").exists()
