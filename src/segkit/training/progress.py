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
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from torch import Tensor

from segkit.training.callbacks import ImageRateMonitor


class SegProgressBar(TQDMProgressBar):
    """``TQDMProgressBar`` showing ``loss``, ``lr`` (the head's LR) and ``img/s`` (training images
    per second); other values logged with ``prog_bar=True`` (``val/mIoU``) are shown as usual.
    One host sync per refresh (the loss), none in between. A run with ``trainer.max_steps`` also
    shows its place in the whole run and when it will end (``step=270/2500``, ``eta=1:08:12``, from
    the wall time per step since this process started training: validation included), since the
    per-epoch bar says nothing about the run's end."""

    _run_start: tuple[float, int] | None = None  # (time.monotonic(), global_step) at train start

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._run_start = (time.monotonic(), trainer.global_step)

    def run_eta(self, trainer: pl.Trainer) -> dict[str, str]:
        """``step`` and ``eta`` of the whole run ({} without ``max_steps`` or before a step)."""
        total, step = trainer.max_steps, trainer.global_step
        if total is None or total <= 0:
            return {}
        out = {"step": f"{step}/{total}"}
        if self._run_start is not None and step > self._run_start[1]:
            start, first = self._run_start
            rate = (step - first) / max(time.monotonic() - start, 1e-9)
            left = round(max(total - step, 0) / rate)
            out["eta"] = f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        return out

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
        items.update(self.run_eta(trainer))
        return items
