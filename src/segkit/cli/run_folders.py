"""Run folders that two runs can never share: the ``unique_dir`` resolver of ``configs/hydra/``.

Hydra names a run folder after the time to the second, so two runs started in the same second (a job
array, two terminals, a launcher) would get the same folder and overwrite each other's config,
checkpoints and metrics. ``${unique_dir:<path>}`` *claims* a folder instead: it creates ``<path>``
with an exclusive ``mkdir`` (atomic, also on NFS) and, when that exists already, ``<path>_1``,
``<path>_2``, ... The claim is remembered for the process, so every later resolution of the same
path in it (Hydra resolves the run folder several times; a multirun's jobs share the sweep folder)
gets the same answer. Processes that Lightning starts for DDP receive the resolved folder as a plain
``hydra.run.dir=...`` override, so they join their rank 0's folder instead of claiming a new one.
The resolver is cached (``use_cache=True``): the answer travels with the config, so the jobs that
a launcher starts in other processes (Hydra's submitit launchers pickle the master config, and
``load_sweep_config`` copies its resolver cache into each job's) write into the sweep folder the
launching process claimed instead of claiming ``<time>_1``, ``<time>_2``, ... of their own
(``tests/scale/test_submitit.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import socket
import threading
import time
from pathlib import Path

from omegaconf import OmegaConf

from segkit.runs import RECORD_FILES

RESOLVER = "unique_dir"
_claimed: dict[str, str] = {}
_lock = threading.Lock()


def claim_dir(path: str) -> str:
    """Create and return ``path``, or the first of ``path_1, path_2, ...`` that did not exist."""
    with _lock:
        if path in _claimed:
            return _claimed[path]
        base = Path(path)
        base.parent.mkdir(parents=True, exist_ok=True)
        for n in itertools.count():
            candidate = base if n == 0 else base.with_name(f"{base.name}_{n}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            _claimed[path] = str(candidate)
            return _claimed[path]
    raise AssertionError("unreachable")  # pragma: no cover


def register() -> None:
    """Register ``unique_dir`` with OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, claim_dir, use_cache=True)


# --- One run per folder: the lock a run holds on its folder while it runs -----------------------
#
# A folder named on the command line (``hydra.run.dir=...``, ``hydra.sweep.dir=...``) is used as
# given, so two runs started with the same name would share it. The launching process of a run
# creates ``<folder>/.segkit.lock`` with ``O_CREAT | O_EXCL`` (atomic, NFS included) holding its
# PID, host and SLURM job, before Hydra writes anything there (``segkit.cli.launch.ClaimRunFolder``),
# and removes it at exit. A second run finds the file and is refused with the holder's PID. A lock
# left by a process that no longer exists (kill -9, a crash, a power cut) is stale: on the same
# host, a dead PID is taken over; a requeued SLURM job takes over its own earlier attempt's lock.

LOCK_NAME = ".segkit.lock"
#: Environment variables whose non-zero value marks a process that joins a run another process
#: launched (DDP / torchrun ranks, Lightning's other nodes): they share the folder, never claim it.
RANK_ENV: tuple[str, ...] = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "NODE_RANK", "GROUP_RANK")
_held: set[Path] = set()


class RunFolderBusy(FileExistsError):
    """The run folder is held by another live run (its lock file names it)."""


def launching_process() -> bool:
    """False in the processes that join a run (rank > 0 of torchrun / DDP / SLURM tasks)."""
    return not any(os.environ.get(k, "").isdigit() and int(os.environ[k]) > 0 for k in RANK_ENV)


def _holder_text() -> str:
    job = os.environ.get("SLURM_JOB_ID", "")
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "slurm_job": job,
                       "started": started}) + "\n"  # fmt: skip


def _read_holder(lock: Path) -> dict | None:
    try:
        holder = json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # half written by a process killed while writing it, or not ours: stale
    return holder if isinstance(holder, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _stale(holder: dict) -> bool:
    """A lock whose process is known to be gone (or to be this job's earlier SLURM attempt)."""
    if not holder:
        return True
    job = os.environ.get("SLURM_JOB_ID", "")
    restarts = os.environ.get("SLURM_RESTART_COUNT", "")
    if job and holder.get("slurm_job") == job and restarts.isdigit() and int(restarts) > 0:
        return True  # a requeued job runs again where its killed attempt ran (maybe another host)
    if holder.get("host") != socket.gethostname():
        return False  # a process on another host cannot be checked from here
    pid = holder.get("pid")
    return not isinstance(pid, int) or (pid != os.getpid() and not _alive(pid))


def _busy_message(folder: Path, holder: dict) -> str:
    lock = folder / LOCK_NAME
    host = holder.get("host")
    where = "" if host == socket.gethostname() else f" on host {host}"
    since = f", since {holder['started']}" if holder.get("started") else ""
    return (
        f"run folder {folder} is in use by another segkit run (PID {holder.get('pid')}{where}"
        f"{since}): wait for it to end, or give this run its own folder (another hydra.run.dir / "
        f"hydra.sweep.dir). If that process is not a segkit run any more, delete {lock}"
    )


def lock_run_folder(folder: str | Path) -> Path:
    """Hold ``folder`` for this process until it exits (created if missing). Idempotent.

    Raises:
        RunFolderBusy: another live process holds it; the message names its PID and the fix.
    """
    folder = Path(folder).absolute()
    lock = folder / LOCK_NAME
    if folder in _held:
        return lock
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        try:
            _create_complete(lock)
        except FileExistsError:
            holder = _read_holder(lock)
            if holder is None:
                continue  # released meanwhile: try again
            if not _stale(holder):
                raise RunFolderBusy(_busy_message(folder, holder)) from None
            _take_over(lock, holder)
            continue
        _held.add(folder)
        if len(_held) == 1:
            atexit.register(release_run_folders)
        return lock
    raise RunFolderBusy(_busy_message(folder, _read_holder(lock) or {}))


def _create_complete(lock: Path) -> None:
    """Create ``lock`` holding this process's record, or FileExistsError. The record is written
    to a private file first and hard-linked into place (exclusive like ``O_EXCL``, NFS included),
    so no other process ever reads a lock half written (which it would take for stale); where the
    filesystem has no hard links, ``O_EXCL`` and then the write."""
    private = lock.with_name(f"{LOCK_NAME}.{socket.gethostname()}-{os.getpid()}")
    private.write_text(_holder_text())
    try:
        os.link(private, lock)
    except FileExistsError:
        raise
    except OSError:  # no hard links here
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as out:
            out.write(_holder_text())
    finally:
        with contextlib.suppress(OSError):
            private.unlink()


def _take_over(lock: Path, holder: dict) -> None:
    """Move a stale lock aside. Two processes may find the same stale lock: only one rename
    succeeds, and one that moved a fresh lock (taken by the other meanwhile) puts it back."""
    aside = lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if _read_holder(aside) != holder:  # not the stale one any more: it is the other's claim
        with contextlib.suppress(OSError):
            os.link(aside, lock)  # back where it was, unless a third process took the name
    with contextlib.suppress(OSError):
        aside.unlink()


def release_run_folders() -> None:
    """Remove the locks this process holds (run at exit; a kill -9 leaves a stale lock)."""
    for folder in list(_held):
        lock = folder / LOCK_NAME
        holder = _read_holder(lock)
        if (
            holder
            and holder.get("pid") == os.getpid()
            and holder.get("host") == socket.gethostname()
        ):
            with contextlib.suppress(OSError):
                lock.unlink()
        _held.discard(folder)


#: Set by SLURM in a job it has requeued (pre-emption, ``scontrol requeue``, submitit's resubmission
#: on a time-out): how many times the job has been restarted.
RESTART_ENV = "SLURM_RESTART_COUNT"


def requeued() -> bool:
    """This process is a SLURM job's restart (it runs its command again in the same folder)."""
    restarts = os.environ.get(RESTART_ENV, "")
    return restarts.isdigit() and int(restarts) > 0


def refuse_training_over(folder: str | Path, ckpt_path: object) -> None:
    """FileExistsError when a training without ``ckpt_path`` starts in a folder that holds an
    earlier run's ``checkpoints/last.ckpt`` (it would overwrite that run's checkpoints and logs);
    a requeued SLURM job is let through (it resumes from that file: ``tasks.train``)."""
    last = Path(folder) / "checkpoints" / "last.ckpt"
    if ckpt_path or requeued() or not last.is_file():
        return
    raise FileExistsError(
        f"run folder {folder} already holds checkpoints/last.ckpt from an earlier run: continue "
        f"it with ckpt_path={last}, or train in a new folder (another hydra.run.dir / "
        "paths.output_dir)"
    )


def refuse_earlier_sweep(folder: str | Path) -> None:
    """FileExistsError when a named sweep folder already holds an earlier multirun's jobs: its
    job folders (0/, 1/, ...) and trials would be written over."""
    folder = Path(folder)
    found = {p.parent.name for p in folder.glob("*/.hydra")} if folder.is_dir() else set()
    jobs = sorted((n for n in found if n.isdigit()), key=int)
    if not jobs:
        return
    shown = ", ".join(f"{n}/" for n in jobs[:3])
    raise FileExistsError(
        f"sweep folder {folder} already holds the jobs of an earlier multirun ({shown}...): give "
        "this sweep its own folder (another hydra.sweep.dir)"
    )


def refuse_rerun(folder: str | Path, *, resuming: bool) -> None:
    """FileExistsError when ``folder`` (named on the command line) already holds an earlier run's
    record: this run would overwrite its config, metrics and Hydra's ``.hydra/*``. A training
    that resumes (``ckpt_path``) or a requeued SLURM job continues its own run there."""
    if resuming or requeued():
        return
    found = [name for name in RECORD_FILES if (Path(folder) / name).is_file()]
    if found:
        raise FileExistsError(
            f"run folder {folder} already holds an earlier run ({', '.join(found)}): give this run "
            "its own folder (another hydra.run.dir / paths.output_dir), or move that one away first"
        )
