"""SegModelCheckpoint relies on Lightning members that are not public API: each one it lists in
LIGHTNING_PRIVATE must exist in the installed Lightning, so an upgrade that renames one fails here
instead of silently skipping a save of last.ckpt."""

from __future__ import annotations

import inspect
import re

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer.connectors.checkpoint_connector import _CheckpointConnector

from segkit.training.checkpoint_callback import LIGHTNING_PRIVATE, SegModelCheckpoint


def test_the_lightning_private_members_it_uses_exist(tmp_path) -> None:
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    owners = {
        "ModelCheckpoint": ModelCheckpoint(dirpath=tmp_path),  # some are set in __init__
        "Trainer": trainer,
        "_CheckpointConnector": _CheckpointConnector,
    }
    missing = [f"{o}.{n}" for o, n in LIGHTNING_PRIVATE if not hasattr(owners[o], n)]
    assert not missing, f"pytorch_lightning {pl.__version__} lacks {missing}"


def test_every_private_member_it_touches_is_listed() -> None:
    source = inspect.getsource(SegModelCheckpoint)
    own = set(vars(SegModelCheckpoint))
    used = set(re.findall(r"\.(_[a-z]\w*)", source)) - own
    assert used == {name for _, name in LIGHTNING_PRIVATE if name.startswith("_")}
