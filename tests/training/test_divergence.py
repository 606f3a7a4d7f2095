"""A diverged run writes no checkpoint, is not validated, and a poisoned checkpoint is refused by
every reader (evaluate / predict / export / analyze through load_segmentor, and resume)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from segkit.cli.jobs import to_plain
from segkit.tasks.checkpoints import load_segmentor, read_checkpoint
from segkit.tasks.train import build_trainer, train
from segkit.training import NonFiniteLossError, NonFiniteLossGuard, non_finite_counts


def _checkpoints(run: Path) -> list[Path]:
    folder = run / "checkpoints"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_diverged_run_is_neither_validated_nor_checkpointed(
    compose_train, tiny_deeplab, tmp_path: Path
) -> None:
    """module.lr=1e6 diverges in the first steps (NaN loss at step 2); the guard's periodic check
    (every 10 steps) comes after the first validation, at step 3 and mid-epoch as in the VOC
    recipe (val_check_interval), where ModelCheckpoint saves best.ckpt and last.ckpt: that
    validation and those checkpoints must not happen."""
    cfg = compose_train(
        *tiny_deeplab,
        "module.lr=1e6",
        "trainer.max_steps=8",
        "trainer.val_check_interval=3",
        "trainer.check_val_every_n_epoch=null",
    )
    assert cfg.callbacks.nan_guard.check_every_n_steps > 3  # not the periodic check: validation
    with pytest.raises(NonFiniteLossError, match="became NaN/inf") as err:
        train(cfg)
    run = tmp_path / "run"
    for path in _checkpoints(run):  # nothing written, or only finite states
        assert not non_finite_counts(torch.load(path, weights_only=True)["state_dict"]), path
    assert not (run / "checkpoints" / "best.ckpt").exists()
    csv = next((run / "csv").rglob("metrics.csv"), None)
    assert csv is None or "val/mIoU" not in csv.read_text()  # no validation scored it
    assert "No checkpoint was written from the diverged state" in str(err.value)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.bn = nn.BatchNorm2d(2)


def test_guard_finds_non_finite_weights_while_the_loss_was_finite() -> None:
    guard, net = NonFiniteLossGuard(), _Net()
    guard.check(net)  # finite: nothing
    with torch.no_grad():
        net.bn.running_var[1] = float("inf")  # a buffer counts too (eval-mode output = NaN)
    with pytest.raises(NonFiniteLossError, match=r"weights became NaN/inf.*1 NaN/inf values"):
        guard.check(net)


def test_checkpoint_io_refuses_non_finite_weights(compose_train, tmp_path: Path) -> None:
    io = build_trainer(compose_train()).strategy.checkpoint_io
    path = tmp_path / "ckpts" / "last.ckpt"
    with pytest.raises(FloatingPointError, match=r"refusing to write .*last\.ckpt.*2 NaN/inf"):
        io.save_checkpoint(
            {"state_dict": {"model.w": torch.tensor([1.0, float("nan"), -float("inf")])}}, path
        )
    assert not path.exists()
    io.save_checkpoint({"state_dict": {"model.w": torch.ones(2)}}, path)  # finite: written
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["model.w"], torch.ones(2))


@pytest.fixture
def poisoned(compose_train, tmp_path: Path) -> tuple[Path, object]:
    """A checkpoint of the tiny model (never trained: built from its config) with one NaN weight."""
    from segkit.tasks.train import build_module

    cfg = compose_train()
    module = build_module(cfg)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    key = next(k for k, v in state.items() if k.startswith("model.") and v.is_floating_point())
    state[key].view(-1)[0] = float("nan")
    path = tmp_path / "poisoned.ckpt"
    torch.save({"hyper_parameters": {"cfg": to_plain(cfg)}, "state_dict": state}, path)
    return path, cfg


def test_readers_refuse_a_poisoned_checkpoint(poisoned) -> None:
    path, _ = poisoned
    for read in (read_checkpoint, load_segmentor):  # evaluate, predict, export, analyze
        with pytest.raises(ValueError, match=r"poisoned\.ckpt holds 1 NaN/inf values .* diverged"):
            read(path)


def test_resume_refuses_a_poisoned_checkpoint(poisoned, compose_train, tmp_path: Path) -> None:
    path, _ = poisoned
    with pytest.raises(ValueError, match=r"poisoned\.ckpt holds 1 NaN/inf values"):
        train(compose_train(f"ckpt_path={path}", run="resumed"))
    assert not (tmp_path / "resumed" / "checkpoints").exists()
