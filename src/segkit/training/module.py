"""SegModule: the LightningModule that trains any Segmentor (FCN, DeepLabv3, DeepLabv3+).

Loss: pixel-wise cross-entropy ignoring void (``IGNORE_INDEX``, 255 in every batch), plus ``aux_weight`` x the same loss on the aux
head's output when the model returns one; optionally class-weighted (``class_weight``, a buffer on
the module's device, stored in every checkpoint). Optimiser: any torch optimizer given as a partial
(``module.optimizer``, default SGD with momentum as in the DeepLab recipes) over weight-decay and
backbone/head LR parameter groups (``param_groups``); LR schedule: a partial too
(``module.scheduler``, default torch's ``PolynomialLR`` after an optional ``LinearLR`` warm-up,
stepped every iteration). Validation accumulates one confusion matrix on the device
(``evaluation.metrics.SegConfusion``, the evaluator's metric) and reports ``val/mIoU`` and
``val/pixel_acc`` once per epoch. The val loader batches whole images as evaluate does (same-size
batches, nothing padded; under DDP whole batches dealt out, each image on one rank, counted once)
and validation runs under the trainer's numerics, which evaluate's default ``eval.precision=auto``
and ``eval.channels_last=null`` repeat for the checkpoint, so ``val/mIoU`` is the number evaluate
gives for the checkpoint on that split at its default settings (on a device with native bf16).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from segkit.checks import CLASS_WEIGHT_MODES, check_class_weight
from segkit.constants import IGNORE_INDEX
from segkit.data.classes import ClassInfo
from segkit.evaluation.metrics import SegConfusion, scores_from_confusion
from segkit.training.checkpoint_file import FORMAT, FORMAT_KEY, apply_checkpoint_input_norm
from segkit.training.clock import TrainClock
from segkit.training.param_groups import build_param_groups, check_optimizer
from segkit.training.schedule import poly_lr

log = logging.getLogger(__name__)

#: ``optimizer(param_groups, lr=module.lr) -> Optimizer`` (a ``_partial_`` config node).
OptimizerFactory = Callable[..., torch.optim.Optimizer]
#: ``scheduler(optimizer, total_steps=<optimizer steps of the run>) -> LRScheduler``.
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


def segmentation_loss(
    outputs: dict[str, Tensor],
    mask: Tensor,
    *,
    aux_weight: float = 0.4,
    class_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Cross-entropy (void = 255 ignored) on ``outputs["out"]`` (B, K, H, W) vs ``mask`` (B, H, W),
    plus ``aux_weight`` x the loss on ``outputs["aux"]`` if present. ``class_weight`` (K,): each
    pixel's loss is weighted by its class's weight and the mean is over the weights (torch's
    weighted ``cross_entropy``). Returns (total, main)."""
    main = F.cross_entropy(outputs["out"], mask, weight=class_weight, ignore_index=IGNORE_INDEX)
    if "aux" not in outputs or aux_weight == 0:
        return main, main
    aux = F.cross_entropy(outputs["aux"], mask, weight=class_weight, ignore_index=IGNORE_INDEX)
    return main + aux_weight * aux, main


class SegModule(pl.LightningModule):
    """Trains ``model`` (a Segmentor: ``forward(x) -> {"out", ["aux"]}``).

    ``batch["image"]`` arrives as uint8 (B, 3, H, W), RGB 0..255 (the model normalises it) and
    ``batch["mask"]`` as int64 (B, H, W) with 255 = void (uint8 on the bus, widened after the device
    transfer).

    Args:
        model: the network; it is the attribute ``model`` (checkpoint keys ``model.*``).
        num_classes: K, the size of the confusion matrix.
        optimizer: ``optimizer(param_groups, lr=lr)`` -> a torch optimizer (default: SGD,
            momentum 0.9, nesterov off); must not set ``lr`` / ``weight_decay``.
        scheduler: ``scheduler(optimizer, total_steps=...)`` -> an LR scheduler stepped every
            optimizer step (default: :func:`~segkit.training.schedule.poly_lr`, power 0.9).
        lr: base LR of the head; the backbone gets ``lr * backbone_lr_mult``.
        weight_decay: of the decayed groups; norms, biases (and ``no_decay_depthwise``) get 0.
        no_decay_depthwise: no weight decay on depthwise-conv weights.
        aux_weight: weight of the aux-head loss.
        channels_last / compile: performance switches (NHWC memory format, ``nn.Module.compile``
            in place so checkpoint keys stay ``model.*``).
        class_weight: one loss weight per class (``module.class_weight`` as the train task resolved
            it: ``median_frequency`` is computed there), or None for the plain loss. Held as the
            buffer ``class_weight`` (moves with the module, no per-step host work) and saved in
            every checkpoint; a resume takes the checkpoint's weights.
        cfg: the composed run config as a plain dict, saved in the checkpoint's hyper-parameters.
        classes: the dataset's class metadata (names, palette, void), saved in every checkpoint
            (``checkpoint["segkit"]["classes"]``) so evaluate / predict / export know the classes
            without the data config; None = the datamodule's ``classes`` at set-up.
    """

    class_weight: Tensor | None  # a buffer (None: the plain loss)

    def __init__(
        self,
        model: nn.Module,
        *,
        num_classes: int,
        optimizer: OptimizerFactory = partial(torch.optim.SGD, momentum=0.9),  # noqa: B008
        scheduler: SchedulerFactory = partial(poly_lr, power=0.9),  # noqa: B008
        lr: float = 0.01,
        weight_decay: float = 4e-5,
        backbone_lr_mult: float = 1.0,
        no_decay_depthwise: bool = True,
        aux_weight: float = 0.4,
        channels_last: bool = False,
        compile: bool = False,
        class_weight: Sequence[float] | None = None,
        cfg: dict[str, Any] | None = None,
        classes: ClassInfo | None = None,
    ) -> None:
        super().__init__()
        check_optimizer(optimizer)
        if isinstance(class_weight, str) and class_weight in CLASS_WEIGHT_MODES:
            raise ValueError(
                f"class_weight={class_weight} is resolved by the train task (segkit.tasks.train) "
                "from the train split; SegModule takes the list of weights it computes"
            )
        class_weight = check_class_weight(class_weight, num_classes)
        # The factories are not hyper-parameters: the run config (cfg) records them as config
        # nodes, and checkpoints are read back with weights_only=True (no pickled callables);
        # classes are saved as a plain dict by on_save_checkpoint.
        self.save_hyperparameters(
            ignore=["model", "optimizer", "scheduler", "classes", "class_weight"]
        )
        self.register_buffer("class_weight", None)  # a None buffer is left out of state dicts
        self._set_class_weight(class_weight)
        self.classes: ClassInfo | None = None
        if classes is not None:
            self._set_classes(classes)
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.val_confmat = SegConfusion(num_classes, boundary=True)  # + SegNet's boundary F1
        self.val_loss = MeanMetric()
        self.best_miou = float("-inf")
        self.bf_at_best = float("nan")  # val BF of the validation with the best mIoU
        #: The latest training loss, a detached device tensor (read by SegProgressBar).
        self.last_train_loss: Tensor | None = None
        self._rng_to_restore: dict[str, Any] | None = None
        #: Wall and CPU seconds of the run over all its processes (resumes), saved in checkpoints.
        self.clock = TrainClock()

    # ---- set-up -------------------------------------------------------------------------------
    def _set_class_weight(self, weights: Sequence[float] | Tensor | None) -> None:
        """Hold ``weights`` as the ``class_weight`` buffer (float32, on the module's device), or
        none at all (the plain loss; the checkpoint then has no such key)."""
        if weights is None:
            self.class_weight = None
            return
        device = next(self.parameters(), torch.empty(0)).device
        self.class_weight = (
            torch.as_tensor(weights, dtype=torch.float32).detach().clone().to(device)
        )

    def class_weights(self) -> list[float] | None:
        """The loss weights as plain floats (None: unweighted)."""
        return None if self.class_weight is None else [float(w) for w in self.class_weight.cpu()]

    def _set_classes(self, classes: ClassInfo) -> None:
        if classes.num_classes != self.hparams.num_classes:
            raise ValueError(
                f"the dataset has {classes.num_classes} classes but num_classes="
                f"{self.hparams.num_classes}: set num_classes={classes.num_classes} (and the "
                "model's num_classes)"
            )
        self.classes = classes

    def setup(self, stage: str) -> None:
        trainer = self._trainer  # None when set up by hand (the ``trainer`` property raises)
        datamodule_classes = getattr(getattr(trainer, "datamodule", None), "classes", None)
        if self.classes is None and isinstance(datamodule_classes, ClassInfo):
            self._set_classes(datamodule_classes)
        if self.hparams.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.hparams.compile and stage == "fit":
            self.model.compile()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """(B, 3, H, W) uint8 RGB -> {"out": (B, K, H, W) logits[, "aux": ...]}."""
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    # ---- steps --------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        outputs = self(batch["image"])
        loss, _ = segmentation_loss(
            outputs,
            batch["mask"],
            aux_weight=self.hparams.aux_weight,
            class_weight=self.class_weight,
        )
        # No prog_bar=True here: Lightning turns progress-bar values into Python numbers after
        # every batch (a host sync per step). The loggers convert only every log_every_n_steps;
        # SegProgressBar reads last_train_loss at its refresh rate.
        self.log("train/loss", loss, on_step=True, on_epoch=False)
        self.last_train_loss = loss.detach()
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # The final step of a max_steps run is validated (and so checkpointed) even between
        # validation intervals: should_stop makes Lightning validate before it stops, so
        # metrics.json and last.ckpt describe the final model, not an older one.
        max_steps = self.trainer.max_steps
        if max_steps is not None and 0 < max_steps <= self.trainer.global_step:
            self.trainer.should_stop = True

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        # Under the trainer's numerics (bf16-mixed: bf16 autocast), which evaluate's default
        # eval.precision=auto repeats for this checkpoint, and batched as evaluate batches: val/mIoU
        # is the number evaluate gives. Logits in float32 for the loss and the argmax, as there.
        logits = self(batch["image"])["out"].float()
        mask = batch["mask"]
        loss = F.cross_entropy(logits, mask, weight=self.class_weight, ignore_index=IGNORE_INDEX)
        self.val_loss.update(loss, weight=mask.shape[0])
        # Metric objects, no per-step collective: ranks may run different numbers of val batches
        # (unrepeated sampler). Lightning computes (reducing over ranks) and resets at epoch end.
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True)
        self.val_confmat.update(logits.argmax(1), mask)

    def on_validation_epoch_end(self) -> None:
        # compute() sums the matrices of all ranks, so every rank holds the same scores; the
        # sync_dist mean over identical values is exact and keeps Lightning's DDP check quiet.
        out = self.val_confmat.compute()
        scores = scores_from_confusion(out.matrix)
        miou, bf = scores["mIoU"], float(out.bf)  # one host read per validation
        self.log("val/mIoU", miou, prog_bar=True, sync_dist=True)
        self.log("val/pixel_acc", scores["pixel_acc"], sync_dist=True)
        self.log("val/mean_class_acc", scores["mean_class_acc"], sync_dist=True)
        self.log("val/BF", bf, sync_dist=True)  # logged only: mIoU stays the selection metric
        names = self._class_names()
        per_class = {f"val/IoU/{n}": v for n, v in zip(names, scores["per_class_iou"], strict=True)}
        self.log_dict(per_class, sync_dist=True)  # NaN = class absent from labels and predictions
        if not self.trainer.sanity_checking:
            if miou > self.best_miou:
                self.best_miou, self.bf_at_best = miou, bf
            self.log("val/mIoU_best", self.best_miou, sync_dist=True)
            self.log("val/BF_at_best", self.bf_at_best, sync_dist=True)
        self.val_confmat.reset()

    def _class_names(self) -> list[str]:
        if self.classes is None:  # a datamodule without class metadata: numbered
            return [str(k) for k in range(self.hparams.num_classes)]
        return list(self.classes.names)

    # ---- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        groups = build_param_groups(
            self.model,
            lr=hp.lr,
            weight_decay=hp.weight_decay,
            backbone_lr_mult=hp.backbone_lr_mult,
            no_decay_depthwise=hp.no_decay_depthwise,
        )
        opt = self.optimizer_factory(groups, lr=hp.lr)
        # Poly over all the run's steps (trainer.max_steps, or the steps max_epochs amounts to).
        scheduler = self.scheduler_factory(
            opt, total_steps=int(self.trainer.estimated_stepping_batches)
        )
        return {
            "optimizer": opt,
            # "name": LearningRateMonitor logs train/lr/<param group> (head/decay, backbone/...).
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": "step",
                "frequency": 1,
                "name": "train/lr",
            },
        }

    # ---- exact resume: best score and RNG streams travel with the checkpoint ------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[FORMAT_KEY] = FORMAT
        checkpoint["segkit"] = {
            "best_miou": self.best_miou,
            "bf_at_best": self.bf_at_best,
            "rng": _rng_state(),
            "class_weight": self.class_weights(),
            "clock": self.clock.state(self.global_step),
        }
        if self.classes is not None:  # plain types: read back with weights_only=True
            checkpoint["segkit"]["classes"] = self.classes.to_dict()
        if hasattr(self.model, "input_mean"):  # the Segmentor's non-persistent buffers, as lists
            checkpoint["segkit"]["input_norm"] = {
                "mean": list(self.model.input_mean),
                "std": list(self.model.input_std),
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("segkit", {})
        apply_checkpoint_input_norm(self.model, checkpoint)
        self._take_saved_class_weight(checkpoint)
        self.best_miou = state.get("best_miou", float("-inf"))
        self.bf_at_best = state.get("bf_at_best", float("nan"))
        # Restored at on_train_start: the sanity-check validation in between draws from the RNG.
        self._rng_to_restore = state.get("rng")
        self.clock.load(state.get("clock"))  # none in checkpoints of segkit before 2026-12-08

    def _take_saved_class_weight(self, checkpoint: dict[str, Any]) -> None:
        """A resume trains with the loss it started with: the checkpoint's class weights (or
        none) replace this config's before Lightning loads the state dict (which then fits)."""
        saved = checkpoint.get("state_dict", {}).get("class_weight")
        mine = self.class_weights()
        theirs = None if saved is None else [float(w) for w in saved]
        if mine != theirs:
            log.warning(
                "module.class_weight: the checkpoint was trained with %s, this config asks for "
                "%s; the checkpoint's are kept (start a new run to change them)",
                theirs or "no class weights",
                mine or "none",
            )
        self._set_class_weight(saved)

    def on_fit_start(self) -> None:
        self.clock.begin()

    def on_train_start(self) -> None:
        self.clock.first_step(self.global_step)  # the loops are restored by now
        if self._rng_to_restore is not None:
            _set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # As plain types + tensors: checkpoints are read back with torch.load(weights_only=True).
        "numpy": _numpy_state_to_safe(np.random.get_state()),  # noqa: NPY002 (global stream)
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state_to_safe(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return (
        str(name),
        torch.from_numpy(keys.astype(np.int64)),
        int(pos),
        int(has_gauss),
        float(cached),
    )


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
