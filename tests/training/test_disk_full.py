"""A full disk while saving a checkpoint: one line naming the file, the previous checkpoint intact,
no partial file left; simulated through a real tiny training (the write raises ENOSPC as a full
disk does, and torch turns it into its ``inline_container.cc`` RuntimeError)."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest
import torch

from segkit.cli.launch import one_line
from segkit.tasks.train import train
from segkit.training.atomic_io import TEMP_SUFFIX, CheckpointWriteError

#: Validation (and so best.ckpt + last.ckpt) at steps 2 and 4.
EVERY_2 = ["trainer.val_check_interval=2", "trainer.check_val_every_n_epoch=null"]


class _FullDisk(io.RawIOBase):
    """The checkpoint's file object, on a disk that fills up after ``room`` bytes."""

    def __init__(self, f, room: int) -> None:
        self.f, self.room = f, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.f.write(data)


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(
    compose_train, tiny_deeplab, tmp_path: Path, monkeypatch
) -> None:
    folder = tmp_path / "run" / "checkpoints"
    real_save = torch.save
    before: dict[str, bytes] = {}

    def save(obj, f, *args, **kwargs):
        if not (folder / "last.ckpt").is_file():  # step 2: the disk still has room
            return real_save(obj, f, *args, **kwargs)
        before.update({p.name: p.read_bytes() for p in folder.glob("*.ckpt")})
        return real_save(obj, _FullDisk(f, room=4096), *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(CheckpointWriteError) as caught:
        train(compose_train(*tiny_deeplab, *EVERY_2))
    message = one_line(caught.value)
    assert "\n" not in message
    assert f"cannot write checkpoint {folder}/" in message
    assert "No space left on device" in message and "MiB free there" in message
    assert "is intact and the partial new file was removed" in message
    assert "write the run to another disk" in message
    assert f"ckpt_path={folder / 'last.ckpt'}" in message
    assert set(before) == {"best.ckpt", "last.ckpt"}
    assert {p.name: p.read_bytes() for p in folder.glob("*.ckpt")} == before  # untouched
    assert not [p for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    assert not (tmp_path / "run" / "metrics.json").exists()  # nothing that looks finished
