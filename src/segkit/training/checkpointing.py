"""How training checkpoints are written: atomically, never from a diverged state, and ``last.ckpt``
always the latest state (end of run, every validation, every interruption).

- :class:`AtomicCheckpointIO` (Lightning's ``CheckpointIO`` plugin, used for every checkpoint the
  Trainer writes) writes ``<dir>/.<name>.<pid>.<token>.tmp`` in the checkpoint's own folder, fsyncs
  it, renames it over ``<name>`` (atomic on one filesystem) and fsyncs the folder. A kill at any
  moment leaves either the old file or the new one under the name, never a partial file, and
  nothing in ``$TMPDIR`` (Lightning's default stages the file there through fsspec and moves it,
  which is a copy a kill can truncate when ``$TMPDIR`` is another filesystem). It also refuses to
  write a state dict holding NaN/inf values, whatever callback asked for the save.
- :class:`SegModelCheckpoint` (``ModelCheckpoint``) also rewrites ``last.ckpt`` after every
  validation (Lightning does so only when the monitored score improved), at the end of the run
  (when it ended between validations) and when training is interrupted by SIGTERM/SIGINT, so
  ``last.ckpt`` is always the state a resume should continue from.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.cloud_io import _is_local_file_protocol
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from segkit.training.callbacks import HINTS
from segkit.training.checkpoint import (
    NonFiniteWeightsError,
    describe_non_finite,
    non_finite_counts,
)

log = logging.getLogger(__name__)

#: Suffix of the temporary file a save writes next to its target (``.<name>.<pid>.<token>.tmp``).
TEMP_SUFFIX = ".tmp"


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` through a temporary file in ``path``'s folder + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    try:
        with open(temp, "xb") as f:  # "x": a fresh file, created with the user's umask
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException as err:
        with suppress(FileNotFoundError):
            temp.unlink()
        reason = _write_failure(err)
        if reason is not None:
            raise CheckpointWriteError(_write_failed(path, reason)) from err
        raise
    _fsync_dir(path.parent)


class CheckpointWriteError(ValueError):
    """A checkpoint could not be written (disk full, quota): the fix is the user's, so it is
    reported in one line like any user error (``segkit.tasks.cli.USER_ERRORS``)."""


#: errno values that mean "no room for the file" (full disk, exhausted quota).
NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _write_failure(err: BaseException) -> str | None:
    """Why a save failed, when it is the disk's fault: torch reports a failed write of its zip
    writer as ``RuntimeError: [enforce fail at inline_container.cc:...] ... unexpected pos`` with
    the ``OSError`` (ENOSPC) as its context; a flush or fsync raises the ``OSError`` itself."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in NO_SPACE:
            return seen.strerror or os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    if isinstance(err, RuntimeError) and "inline_container" in str(err):
        return f"torch could not write the file ({str(err).strip().splitlines()[0]})"
    return None


def _write_failed(path: Path, reason: str) -> str:
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free there"
    except OSError:
        free = "free space unknown"
    kept = (
        f"the previous {path.name} is intact"
        if path.is_file()
        else f"there was no earlier {path.name}"
    )
    return (
        f"cannot write checkpoint {path}: {reason} ({free}); {kept} and the partial new file was "
        "removed. Free disk space, or write the run to another disk (paths.output_dir=...)"
        + (
            f"; resume with ckpt_path={last}"
            if (last := path.parent / "last.ckpt").is_file()
            else ""
        )
    )


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened, and renames are durable there
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic and refuse non-finite weights.

    Remote paths (``s3://``, ``gs://``...) keep Lightning's upload: an object store publishes an
    object only once it is complete.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        state = checkpoint.get("state_dict", {})
        bad = non_finite_counts(state) if isinstance(state, dict) else {}
        if bad:
            step = checkpoint.get("global_step", "?")
            raise NonFiniteWeightsError(
                f"refusing to write checkpoint {path} at step {step}: its weights hold "
                f"{describe_non_finite(bad)}, training diverged. {HINTS} Checkpoints written "
                "before are untouched."
            )
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_torch_save(checkpoint, path)


class SegModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` (``save_last=True``) is always the latest state.

    Lightning rewrites ``last`` only when a top-k checkpoint was written at the same step, so after
    a validation that did not improve the monitored score, after a run that ended between
    validations, or after an interruption, ``last.ckpt`` lagged behind the run. Here it is also
    written after every validation, at the end of training, and on SIGTERM/SIGINT (Lightning turns
    SIGTERM into ``SIGTERMException`` once the current step has finished; segkit's train task maps
    SIGINT to the same path). Never after another exception (a KeyboardInterrupt or an error can
    land mid-step, leaving an inconsistent state); a diverged state is refused by the guard and by
    the checkpoint IO.
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        # A resumed run starts with the state of the checkpoint it resumed from: nothing new to
        # write or rank at that step. (Resumed at an epoch's end, Lightning replays that end before
        # loading the validation data; seeing no validation batches, ModelCheckpoint would save
        # there and warn that val/mIoU, the monitored key, is missing.)
        self._last_global_step_saved = trainer.global_step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_stale(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_stale(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_last_if_stale(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        super().on_exception(trainer, pl_module, exception)
        # SIGTERMException is raised between steps (a consistent state); a KeyboardInterrupt
        # (a second Ctrl+C) or another error can land anywhere, e.g. inside optimizer.step().
        if not isinstance(exception, SIGTERMException):
            return
        try:
            if trainer.world_size > 1:
                self._save_last_without_barrier(trainer)
            else:
                self._save_last_if_stale(trainer)
        except FloatingPointError as err:  # diverged before the signal: keep the last good file
            log.error("not saving a checkpoint at the interruption: %s", err)

    def _save_last_if_stale(self, trainer: pl.Trainer) -> None:
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return  # (the skip covers: already saved at this step, sanity check, fast_dev_run)
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_without_barrier(self, trainer: pl.Trainer) -> None:
        """Under DDP each rank raises ``SIGTERMException`` on its own signal flag, so the ranks
        get here at different steps or not at all, and ``Trainer.save_checkpoint``'s closing
        barrier would deadlock (seen with 2 CPU processes). Rank 0 writes the state of the step
        it finished; no collective runs."""
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return
        path = self.format_checkpoint_name(
            self._monitor_candidates(trainer), self.CHECKPOINT_NAME_LAST
        )
        self.last_model_path = path  # part of the state being saved, as in _save_last_checkpoint
        checkpoint = trainer._checkpoint_connector.dump_checkpoint()
        trainer.strategy.save_checkpoint(checkpoint, path)  # writes on global rank 0 only
        self._last_global_step_saved = trainer.global_step


__all__ = [
    "TEMP_SUFFIX",
    "AtomicCheckpointIO",
    "CheckpointWriteError",
    "SegModelCheckpoint",
    "atomic_torch_save",
]
