"""Training callbacks: non-finite loss/weights guard, throughput meter."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from segkit.training.checkpoint_file import describe_non_finite, non_finite_count_tensors


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss, or the weights, became NaN or infinite."""


#: What to try after a divergence (also used by the checkpoint IO's refusal).
HINTS = (
    "Hints: lower the learning rate (or warm up over more steps), check that mask labels are < "
    "num_classes or 255, or train in full precision (the Trainer's precision='32-true')."
)


class NonFiniteLossGuard(pl.Callback):
    """Stops training when the loss or the weights become NaN/inf, before a diverged model is
    validated or checkpointed.

    The check stays on the device: each step folds ``isfinite(loss)`` into a device tensor holding
    the first bad step, and the host looks at it (one sync) only every ``check_every_n_steps``
    steps, at the end of each epoch, before each validation and before each checkpoint save.
    Before a validation it also counts non-finite weights and buffers (an overflowing update can
    poison the weights while the loss that produced it was finite) in the same single sync; at a
    save, the checkpoint IO counts them (:class:`~segkit.training.AtomicCheckpointIO`). So the hot
    path has no per-step sync, the step reported is exact, and no validation scores, and no
    checkpoint holds, a diverged model. Lightning has no such guard (``detect_anomaly`` is torch's
    anomaly mode: it checks every backward op, which slows each step, and not the weights).
    """

    def __init__(self, check_every_n_steps: int = 10) -> None:
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps
        self._first_bad: Tensor | None = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not isinstance(loss, Tensor):
            return
        step = trainer.global_step - 1  # the optimizer step this loss belongs to (0-based)
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss.detach()) & (self._first_bad < 0)
        self._first_bad = torch.where(bad, torch.full_like(self._first_bad, step), self._first_bad)
        if trainer.global_step % self.check_every_n_steps == 0:
            self.check()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.check(pl_module, trainer=trainer)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # The loss flag only: the weights of every checkpoint are counted where it is written
        # (segkit.training.AtomicCheckpointIO), once.
        self.check(trainer=trainer)

    def check(
        self, pl_module: nn.Module | None = None, *, trainer: pl.Trainer | None = None
    ) -> None:
        """Raise :class:`NonFiniteLossError` if a non-finite loss was seen or (with ``pl_module``)
        a weight or buffer is NaN/inf. One host sync."""
        flag = self._first_bad
        keys, counts = (
            ([], []) if pl_module is None else non_finite_count_tensors(pl_module.state_dict())
        )
        if flag is None and not counts:
            return
        device = flag.device if flag is not None else counts[0].device
        first = flag if flag is not None else torch.full((), -1, dtype=torch.long, device=device)
        values = torch.stack([first, *(c.to(device) for c in counts)]).tolist()  # the one sync
        step = int(values[0])
        weights = {k: int(n) for k, n in zip(keys, values[1:], strict=True) if n}
        if step < 0 and not weights:
            return
        where = _last_good(trainer)
        if step >= 0:
            raise NonFiniteLossError(f"training loss became NaN/inf at step {step}. {HINTS}{where}")
        now = "?" if trainer is None else trainer.global_step
        raise NonFiniteLossError(
            f"model weights became NaN/inf by step {now} while the loss was still finite "
            f"({describe_non_finite(weights)}). {HINTS}{where}"
        )


def _last_good(trainer: pl.Trainer | None) -> str:
    """`` Nothing was saved from the diverged state; the last checkpoint ... is finite.``"""
    callback = None if trainer is None else trainer.checkpoint_callback
    candidates = [
        getattr(callback, "last_model_path", ""),
        getattr(callback, "best_model_path", ""),
    ]
    last = next((p for p in candidates if p and Path(p).is_file()), "")
    if not last:
        return " No checkpoint was written from the diverged state."
    return (
        f" No checkpoint was written from the diverged state; {last} holds the last finite one "
        "(a resume keeps its learning rate: to lower it, start a new run)."
    )


class ImageRateMonitor(pl.Callback):
    """Training images per second, measured over windows of ``window`` steps, logged as
    ``train/img_s`` and shown by :class:`~segkit.training.progress.SegProgressBar` as ``img/s``.
    Wall-clock only: no device sync is added (over a window the bounded CUDA queue makes the host
    clock track the device). Kept rather than Lightning's ``ThroughputMonitor``, which calls
    ``torch.cuda.synchronize()`` after every batch (a host sync per step)."""

    def __init__(self, window: int = 10) -> None:
        self.window = window
        self._t0: float | None = None
        self._images = 0
        self._steps = 0
        self.last_value: float | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0, self._images, self._steps = None, 0, 0  # don't count validation time

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        now = time.perf_counter()
        if self._t0 is None:  # the first step (warm-up, data-loader start) is not timed
            self._t0 = now
            return
        self._images += int(batch["image"].shape[0])
        self._steps += 1
        if self._steps >= self.window:
            self.last_value = self._images / (now - self._t0)
            self._t0, self._images, self._steps = now, 0, 0
        if self.last_value is not None:
            # A CPU tensor and no prog_bar (SegProgressBar shows last_value): no device traffic.
            value = torch.tensor(self.last_value, dtype=torch.float64)
            pl_module.log("train/img_s", value, on_step=True, on_epoch=False)
