"""``evaluate`` and ``predict`` under ``torchrun``: one process group for the job, from the environment.

``torchrun --nproc-per-node=N scripts/evaluate.py ...`` starts N copies of the script with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in the environment. Each copy joins the
process group (gloo on the CPU, NCCL on CUDA, one GPU per local rank), works on its share of the
images, and rank 0 writes the outputs. Every copy runs Hydra itself, so they only share a run folder
when it is named on the command line (``hydra.run.dir=...``): :meth:`Ranks.agree_on_folder`
checks that before anything is written. Started without torchrun, nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job: ``rank`` of ``world_size``, computing on ``device``."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes the run's files; the others only compute."""
        return self.rank == 0

    def gather(self, value: Any) -> list[Any]:
        """``value`` of every rank, in rank order (a collective: every rank must call it)."""
        if self.world_size == 1:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def agree_on_folder(self, path: str | Path, key: str) -> None:
        """Raise (on every rank) unless all ranks were given the same ``path`` (config ``key``)."""
        folders = self.gather(str(Path(path).resolve()))
        if len(set(folders)) > 1:
            raise ValueError(
                f"the {self.world_size} torchrun processes got different run folders ({key}: "
                f"{', '.join(sorted(set(folders)))}): each process runs Hydra, so name the folder "
                "on the command line, e.g. hydra.run.dir=logs/<task>/runs/<name>"
            )


@contextmanager
def torchrun_ranks(device: torch.device) -> Iterator[Ranks]:
    """The process group torchrun describes (joined here, left on exit), or a single process.

    On CUDA each process takes the GPU of its ``LOCAL_RANK``; a group already initialised by the
    caller is used as it is.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield Ranks(0, 1, device)
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), device)
    finally:
        if owned:
            dist.destroy_process_group()


__all__ = ["Ranks", "torchrun_ranks"]
