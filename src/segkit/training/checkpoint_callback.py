"""The checkpoint callback: ``last.ckpt`` always the latest state (every validation, the end of
the run, every interruption).

:class:`SegModelCheckpoint` (``ModelCheckpoint``) rewrites ``last.ckpt`` after every validation
(Lightning does so only when the monitored score improved), at the end of the run (when it ended
between validations) and when training is interrupted by SIGTERM/SIGINT, so ``last.ckpt`` is always
the state a resume should continue from. It uses Lightning members that are not public API, listed
in :data:`LIGHTNING_PRIVATE` (``tests/training/test_checkpoint_callback.py`` checks each exists in
the installed Lightning).
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

#: The non-public Lightning members this module calls or sets: ``(owner, name)``.
LIGHTNING_PRIVATE: tuple[tuple[str, str], ...] = (
    ("ModelCheckpoint", "_should_save_on_train_epoch_end"),
    ("ModelCheckpoint", "_should_skip_saving_checkpoint"),
    ("ModelCheckpoint", "_save_last_checkpoint"),
    ("ModelCheckpoint", "_monitor_candidates"),
    ("ModelCheckpoint", "_last_global_step_saved"),
    ("Trainer", "_checkpoint_connector"),
    ("_CheckpointConnector", "dump_checkpoint"),
)


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


__all__ = ["LIGHTNING_PRIVATE", "SegModelCheckpoint"]
