"""The task-side torchrun rules that need no second process: one run folder for all ranks."""

from __future__ import annotations

import pytest
import torch

from segkit.tasks.checkpoints import Ranks, torchrun_ranks


class _Gathered(Ranks):
    """Ranks whose gather answers with given values (what the other ranks would send)."""

    def gather(self, value):  # noqa: ARG002 - the values stand for all ranks'
        return list(self.values)


def test_ranks_with_different_run_folders_stop_with_the_fix(tmp_path):
    ranks = _Gathered(0, 2, torch.device("cpu"))
    object.__setattr__(ranks, "values", [str(tmp_path / "a"), str(tmp_path / "a_1")])
    with pytest.raises(ValueError, match=r"different run folders .*hydra\.run\.dir="):
        ranks.agree_on_folder(tmp_path / "a", "paths.output_dir")
    object.__setattr__(ranks, "values", [str((tmp_path / "a").resolve())] * 2)
    ranks.agree_on_folder(tmp_path / "a", "paths.output_dir")  # the same folder: fine


def test_without_torchrun_a_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with torchrun_ranks(torch.device("cpu")) as ranks:
        assert (ranks.rank, ranks.world_size, ranks.is_writer) == (0, 1, True)
        assert ranks.gather("x") == ["x"]
