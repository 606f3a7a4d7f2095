"""The training progress bar: loss, learning rate and images/s, read only when the bar refreshes.

A run that fails ends the bar's line first (:meth:`SegProgressBar.on_exception`): the bar redraws
itself with ``\r`` and no newline, so the ``error: ...`` line printed next would otherwise continue
the bar's line in a captured log (``grep '^error'`` would not find it).

Lightning converts every value logged with ``prog_bar=True`` to a Python number after *every*
batch (``Tensor.item()``), which for the on-step loss is a host-device sync per step. So the
module logs ``train/loss`` to the loggers only and keeps the last loss as a device tensor
(``SegModule.last_train_loss``); this bar reads it, the optimizer's LR and the
:class:`~segkit.training.callbacks.ImageRateMonitor`'s last figure once per ``refresh_rate`` steps.
"""

from __future__ import annotations

import sys
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from torch import Tensor

from segkit.training.callbacks import ImageRateMonitor


class SegProgressBar(TQDMProgressBar):
    """``TQDMProgressBar`` showing ``loss``, ``lr`` (the head's LR) and ``img/s`` (training images
    per second); other values logged with ``prog_bar=True`` (``val/mIoU``) are shown as usual.
    One host sync per refresh (the loss), none in between."""

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Close every open bar so that the console is at the start of a line: the training bar
        is left on its line (tqdm ends it with a newline); validation / sanity-check bars clear
        their line with ``\r``, which a log file keeps, so a newline follows them."""
        super().on_exception(trainer, pl_module, exception)
        others = [self._val_progress_bar, self._test_progress_bar, self._predict_progress_bar]
        cleared = False
        for bar in others:
            if bar is not None and not bar.disable:
                bar.close()
                cleared = True
        train = self._train_progress_bar
        if train is not None and not train.disable:
            train.close()  # leave=True: redraws it and writes the newline
        elif cleared:
            sys.stdout.write("\n")
            sys.stdout.flush()

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        items = dict(super().get_metrics(trainer, pl_module))
        items.pop("v_num", None)
        loss = getattr(pl_module, "last_train_loss", None)
        if isinstance(loss, Tensor):
            items["loss"] = f"{loss.item():.4g}"
        if trainer.optimizers:
            items["lr"] = f"{trainer.optimizers[0].param_groups[-1]['lr']:.3g}"
        meter = next((c for c in trainer.callbacks if isinstance(c, ImageRateMonitor)), None)
        if meter is not None and meter.last_value is not None:
            items["img/s"] = f"{meter.last_value:.1f}"
        return items
