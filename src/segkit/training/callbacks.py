"""Training callbacks: non-finite loss guard, throughput meter, SyncBatchNorm only under DDP."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from segkit.training.sync_bn import DistributedBatchNorm, convert_to_distributed_bn


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss became NaN or infinite."""


class NonFiniteLossGuard(pl.Callback):
    """Stops training when the loss becomes NaN/inf, naming the first bad step.

    The check stays on the device: each step folds ``isfinite(loss)`` into a device tensor holding
    the first bad step, and the host looks at it only every ``check_every_n_steps`` steps (one sync
    per check), so the step reported is exact while the hot path has no per-step sync.
    """

    def __init__(self, check_every_n_steps: int = 10) -> None:
        if check_every_n_steps < 1:
            raise ValueError(
                f"callbacks.nan_guard.check_every_n_steps must be >= 1, got {check_every_n_steps}"
            )
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

    def check(self) -> None:
        """Raise :class:`NonFiniteLossError` if a non-finite loss was seen (one host sync)."""
        if self._first_bad is None:
            return
        step = int(self._first_bad)
        if step >= 0:
            raise NonFiniteLossError(
                f"training loss became NaN/inf at step {step}. Hints: lower module.lr (or add "
                "module.warmup_steps), check that mask labels are < data.num_classes or 255, "
                "or train in full precision (trainer.precision=32-true)."
            )


class ThroughputMonitor(pl.Callback):
    """Training images per second, measured over windows of ``window`` steps, logged as
    ``train/img_s`` and shown by :class:`~segkit.training.progress.SegProgressBar` as ``img/s``.
    Wall-clock only: no device sync is added (over a window the bounded CUDA queue makes the host
    clock track the device)."""

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


class SyncBatchNormIfDistributed(pl.Callback):
    """Synchronises batch-norm statistics across ranks when, and only when, the world size is
    above 1: ``nn.SyncBatchNorm`` on GPUs, :class:`~segkit.training.sync_bn.DistributedBatchNorm`
    on other devices (torch's SyncBatchNorm cannot run on the CPU).

    Lightning's own ``Trainer(sync_batchnorm=True)`` converts even in a single process, where a
    synchronised norm is pure overhead. The conversion keeps state-dict keys, so checkpoints load
    into a plain BatchNorm model. Its state (saved in checkpoints) records what was done.
    """

    def __init__(self) -> None:
        self.converted = 0
        self.world_size = 1
        self.kind = ""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.world_size = trainer.world_size
        if trainer.world_size <= 1 or stage != "fit":
            return
        model = getattr(pl_module, "model", pl_module)
        if trainer.strategy.root_device.type == "cuda":
            converted, sync_type = nn.SyncBatchNorm.convert_sync_batchnorm(model), nn.SyncBatchNorm
        else:
            converted, sync_type = convert_to_distributed_bn(model), DistributedBatchNorm
        if model is not pl_module:
            pl_module.model = converted
        self.converted = sum(isinstance(m, sync_type) for m in converted.modules())
        self.kind = sync_type.__name__

    def state_dict(self) -> dict[str, Any]:
        return {"converted": self.converted, "world_size": self.world_size, "kind": self.kind}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # What a past run did is informative only; the conversion is decided again at set-up.
        pass


class DataStateCheckpoint(pl.Callback):
    """Carries the training data order and augmentation streams through a checkpoint.

    Saves the train DataLoader's ``generator`` (it draws each epoch's shuffle and the workers' base
    seed) and, with ``num_workers=0``, the random state of the dataset's transform (an
    albumentations ``Compose`` keeps its own generators); restores both at ``on_train_start``,
    after Lightning has rebuilt the loader and before the first batch is drawn. Together with the
    module's torch/numpy/python RNG state this makes a resume from an epoch-end checkpoint replay
    the same batches. Limits: persistent worker processes keep private augmentation state that
    cannot be captured (resume is then exact in data order but not in augmentation draws), and a
    mid-epoch checkpoint restarts that epoch's shuffle, because a plain DataLoader cannot skip the
    batches already seen (that needs a stateful sampler in the data layer).
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._trainer: pl.Trainer | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer  # state_dict() is called without the trainer

    def state_dict(self) -> dict[str, Any]:
        loader = None if self._trainer is None else self._trainer.train_dataloader
        return {} if loader is None else _capture_data_state(loader)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict) or None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending:
            _restore_data_state(trainer.train_dataloader, self._pending)
        self._pending = None


def _random_nodes(transform: Any) -> list[Any]:
    """The transform and its nested ``transforms`` that hold their own random generators
    (albumentations gives every transform of a ``Compose`` its own ``random_generator`` and
    ``py_random``), in a fixed traversal order."""
    nodes: list[Any] = []
    stack = [transform]
    while stack:
        node = stack.pop(0)
        if hasattr(node, "random_generator") and hasattr(node, "py_random"):
            nodes.append(node)
        stack.extend(getattr(node, "transforms", None) or [])
    return nodes


def _capture_data_state(loader: Any) -> dict[str, Any]:
    state: dict[str, Any] = {}
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        state["generator"] = generator.get_state()
    transform = getattr(getattr(loader, "dataset", None), "transform", None)
    if getattr(loader, "num_workers", 1) == 0 and transform is not None:
        nodes = _random_nodes(transform)
        state["transform_np"] = [n.random_generator.bit_generator.state for n in nodes]
        state["transform_py"] = [n.py_random.getstate() for n in nodes]
    return state


def _restore_data_state(loader: Any, state: dict[str, Any]) -> None:
    if "generator" in state and isinstance(getattr(loader, "generator", None), torch.Generator):
        loader.generator.set_state(state["generator"])
    transform = getattr(getattr(loader, "dataset", None), "transform", None)
    if "transform_np" in state and transform is not None:
        nodes = _random_nodes(transform)
        if len(nodes) != len(state["transform_np"]):
            return  # a different augmentation pipeline: nothing to map the saved streams onto
        for node, np_state, py_state in zip(
            nodes, state["transform_np"], state["transform_py"], strict=True
        ):
            node.random_generator.bit_generator.state = np_state
            node.py_random.setstate(py_state)
