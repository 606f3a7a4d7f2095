"""Training-test helpers: a pre-emption at a chosen step."""

from __future__ import annotations

import os

import pytorch_lightning as pl


class SignalAt(pl.Callback):
    """Sends ``signum`` to this very process at the end of step ``step`` (a pre-emption)."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
