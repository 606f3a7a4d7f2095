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

import itertools
import threading
from pathlib import Path

from omegaconf import OmegaConf

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
