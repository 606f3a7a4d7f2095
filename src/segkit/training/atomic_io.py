"""How training checkpoints are written: atomically and never from a diverged state.

:class:`AtomicCheckpointIO` (Lightning's ``CheckpointIO`` plugin, used for every checkpoint the
  Trainer writes) writes ``<dir>/.<name>.<pid>.<token>.tmp`` in the checkpoint's own folder, fsyncs
  it, renames it over ``<name>`` (atomic on one filesystem) and fsyncs the folder. A kill at any
  moment leaves either the old file or the new one under the name, never a partial file, and
  nothing in ``$TMPDIR`` (Lightning's default stages the file there through fsspec and moves it,
  which is a copy a kill can truncate when ``$TMPDIR`` is another filesystem). It also refuses to
  write a state dict holding NaN/inf values, whatever callback asked for the save.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.cloud_io import _is_local_file_protocol

from segkit.training.callbacks import HINTS
from segkit.training.checkpoint_file import (
    NonFiniteWeightsError,
    describe_non_finite,
    non_finite_counts,
)

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
    reported in one line like any user error (``segkit.cli.launch.USER_ERRORS``)."""


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
        "removed. Free disk space, or write the run to another disk"
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


__all__ = [
    "TEMP_SUFFIX",
    "AtomicCheckpointIO",
    "CheckpointWriteError",
    "atomic_torch_save",
]
