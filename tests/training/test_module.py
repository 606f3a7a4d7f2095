"""SegModule, loss and callbacks on a tiny local model and random tensors (no data pipeline)."""

from __future__ import annotations

from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segkit.constants import IGNORE_INDEX
from segkit.training import (
    ImageRateMonitor,
    NonFiniteLossError,
    NonFiniteLossGuard,
    SegModule,
    SegProgressBar,
    segmentation_loss,
)

K = 3


class TinySeg(nn.Module):
    """A Segmentor-shaped net: .backbone, .head, optional .aux_head; dict output at input size."""

    def __init__(self, aux: bool = False) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Conv2d(8, K, 1)
        self.aux_head = nn.Conv2d(8, K, 1) if aux else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.backbone(x)
        out = {"out": self.head(f)}
        if self.aux_head is not None:
            out["aux"] = self.aux_head(f)
        return out


class ColourSet(Dataset):
    """Label = which of the 3 channels is bright: learnable in a few steps by a 1x1 conv."""

    def __init__(self, n: int = 16, size: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.masks = torch.randint(0, K, (n, size, size), generator=g)
        self.images = nn.functional.one_hot(self.masks, K).permute(0, 3, 1, 2).float() * 2 - 1
        self.images += 0.1 * torch.randn(self.images.shape, generator=g)

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "mask": self.masks[i], "id": str(i)}


def _loader(n: int = 16) -> DataLoader:
    return DataLoader(ColourSet(n), batch_size=4)


def _trainer(max_steps: int, callbacks: list | None = None, **kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=kwargs.pop("logger", False),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks or [],
        **kwargs,
    )


def test_loss_ignores_void_and_adds_weighted_aux() -> None:
    logits = torch.randn(2, K, 4, 4)
    mask = torch.randint(0, K, (2, 4, 4))
    void = mask.clone()
    void[:, :2] = IGNORE_INDEX
    total, main = segmentation_loss({"out": logits}, void)
    expected = nn.functional.cross_entropy(logits[:, :, 2:], mask[:, 2:])
    torch.testing.assert_close(main, expected)
    assert total is main
    aux = torch.randn(2, K, 4, 4)
    total, main = segmentation_loss({"out": logits, "aux": aux}, mask, aux_weight=0.4)
    aux_loss = nn.functional.cross_entropy(aux, mask)
    torch.testing.assert_close(total, main + 0.4 * aux_loss)


def test_fit_learns_logs_metrics_and_follows_poly(tmp_path) -> None:
    module = SegModule(TinySeg(aux=True), num_classes=K, lr=0.1, weight_decay=0.0)
    monitor = LearningRateMonitor(logging_interval="step")
    trainer = _trainer(20, [monitor], logger=pl.loggers.CSVLogger(tmp_path), log_every_n_steps=1)
    trainer.fit(module, _loader(), _loader(8))
    # LearningRateMonitor names each param group (log_every_n_steps=1: every step's LR)
    assert set(monitor.lrs) == {"train/lr/backbone/no_decay", "train/lr/backbone/decay",
                                "train/lr/head/decay", "train/lr/head/no_decay"}  # fmt: skip
    lrs = monitor.lrs["train/lr/head/no_decay"]
    assert lrs == pytest.approx([0.1 * (1 - s / 20) ** 0.9 for s in range(20)])
    metrics = trainer.callback_metrics
    assert {"train/loss", "val/loss", "val/mIoU", "val/pixel_acc"} <= set(metrics)
    assert float(metrics["val/mIoU"]) > 0.9  # the colour task is trivially learnable
    assert module.best_miou == pytest.approx(float(metrics["val/mIoU_best"]))


def test_the_optimizer_is_any_partial_over_the_param_groups() -> None:
    trainer = _trainer(2)
    trainer.fit(SegModule(TinySeg(), num_classes=K, weight_decay=1e-3), _loader(8))
    (sgd,) = trainer.optimizers
    assert isinstance(sgd, torch.optim.SGD)
    assert {g["momentum"] for g in sgd.param_groups} == {0.9}
    assert not any(g["nesterov"] for g in sgd.param_groups)
    decay = {g["name"]: g["weight_decay"] for g in sgd.param_groups}
    assert decay == {"backbone/decay": 1e-3, "backbone/no_decay": 0.0, "head/decay": 1e-3,
                     "head/no_decay": 0.0}  # fmt: skip
    adamw = partial(torch.optim.AdamW, betas=(0.8, 0.99))
    module = SegModule(TinySeg(), num_classes=K, optimizer=adamw, lr=1e-3, backbone_lr_mult=0.1)
    trainer = _trainer(2)
    trainer.fit(module, _loader(8))
    (opt,) = trainer.optimizers
    assert isinstance(opt, torch.optim.AdamW)
    assert {g["betas"] for g in opt.param_groups} == {(0.8, 0.99)}
    assert {g["name"]: g["initial_lr"] for g in opt.param_groups}["backbone/decay"] == 1e-4


@pytest.mark.parametrize(
    ("optimizer", "match"),
    [
        (partial(torch.optim.SGD, lr=0.1), r"^optimizer's lr is not used.*set SegModule's lr"),
        (partial(torch.optim.AdamW, weight_decay=0.1), r"set SegModule's weight_decay"),
        (partial(torch.optim.AdamW, momentum=0.9), r"AdamW takes no argument momentum.*drop it"),
        ("adamw", r"^optimizer must be a partial"),
    ],
)
def test_optimizer_keys_that_would_be_ignored_are_refused(optimizer, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SegModule(TinySeg(), num_classes=K, optimizer=optimizer)


def test_hparams_hold_cfg_and_not_the_network() -> None:
    cfg = {"model": {"_target_": "x"}, "data": {"num_classes": K}}
    module = SegModule(TinySeg(), num_classes=K, cfg=cfg)
    assert module.hparams["cfg"] == cfg
    assert "model" not in module.hparams


def test_nan_guard_names_the_first_bad_step() -> None:
    class NaNAfter(TinySeg):
        calls = 0

        def forward(self, x):
            out = super().forward(x)
            NaNAfter.calls += 1
            if NaNAfter.calls > 3 and self.training:  # steps 0, 1, 2 are fine
                out["out"] = out["out"] * float("nan")
            return out

    guard = NonFiniteLossGuard(check_every_n_steps=4)
    with pytest.raises(NonFiniteLossError, match=r"at step 3\. Hints"):
        _trainer(10, [guard]).fit(SegModule(NaNAfter(), num_classes=K), _loader())
    with pytest.raises(ValueError, match="^check_every_n_steps must be >= 1, got 0$"):
        NonFiniteLossGuard(check_every_n_steps=0)


def test_throughput_is_logged() -> None:
    monitor = ImageRateMonitor(window=2)
    trainer = _trainer(6, [monitor])
    trainer.fit(SegModule(TinySeg(), num_classes=K), _loader(32))
    assert monitor.last_value is not None and monitor.last_value > 0
    assert "train/img_s" in trainer.callback_metrics


def test_channels_last_and_compile_switches() -> None:
    module = SegModule(TinySeg(), num_classes=K, channels_last=True, compile=True)
    module.setup("fit")
    conv = module.model.backbone[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert module.model._compiled_call_impl is not None  # compiled in place: keys stay model.*
    assert all(k.startswith("model.") for k in module.state_dict() if "val_" not in k)


def test_no_host_read_per_step_and_the_bar_shows_loss_lr_throughput(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Tensor -> Python reads (each a device sync on a GPU) happen at the bar's refresh and the
    loggers' interval, not every step: 40 steps, both every 20 steps."""
    reads = {"n": 0}
    item, to_float = torch.Tensor.item, torch.Tensor.__float__

    def counted(fn):
        def wrapper(self, *args):
            reads["n"] += 1
            return fn(self, *args)

        return wrapper

    monkeypatch.setattr(torch.Tensor, "item", counted(item))
    monkeypatch.setattr(torch.Tensor, "__float__", counted(to_float))
    bar = SegProgressBar(refresh_rate=20)
    lr_monitor = LearningRateMonitor(logging_interval="step")
    steps = 40
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=pl.loggers.CSVLogger(tmp_path),
        log_every_n_steps=20,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[bar, ImageRateMonitor(window=5), lr_monitor],
    )
    module = SegModule(TinySeg(), num_classes=K)
    trainer.fit(module, _loader(4 * steps))
    # per read point: the bar's loss, or the loggers' loss/lr/img_s -> ~3 x 3 reads in all
    assert reads["n"] < steps / 2, f"{reads['n']} tensor reads in {steps} steps"
    shown = bar.get_metrics(trainer, module)
    assert {"loss", "lr", "img/s"} <= set(shown)
    assert shown["step"] == f"{steps}/{steps}" and shown["eta"] == "0:00:00"  # the whole run's end
    assert float(shown["loss"]) == pytest.approx(float(module.last_train_loss), rel=1e-3)
    assert {"train/loss", "train/img_s"} <= set(trainer.logged_metrics)
    assert len(lr_monitor.lrs["train/lr/head/decay"]) == steps // 20  # at the loggers' interval


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning")  # no trainer
def test_validation_runs_under_the_trainers_numerics_with_float_logits() -> None:
    # bf16-mixed training validates under bf16 autocast, as evaluate's eval.precision=auto does
    # for that checkpoint; the loss and the argmax see float32 logits either way
    seen: list[torch.dtype] = []
    model = TinySeg().eval()
    model.head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    module = SegModule(model, num_classes=K)
    batch = next(iter(_loader()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module.validation_step(batch, 0)
    module.validation_step(batch, 0)
    assert seen == [torch.bfloat16, torch.float32]


def test_the_bar_eta_is_the_rest_of_the_run_at_the_rate_so_far(monkeypatch) -> None:
    """At step 500 of 1000, 100 s after training started at step 100 (a resume: only this
    process's steps count): 400 steps in 100 s, 500 steps left -> 125 s."""
    bar = SegProgressBar()
    monkeypatch.setattr("segkit.training.progress.time.monotonic", lambda: 1100.0)

    class FakeTrainer:
        max_steps, global_step = 1000, 500

    bar._run_start = (1000.0, 100)
    assert bar.run_eta(FakeTrainer()) == {"step": "500/1000", "eta": "0:02:05"}
    FakeTrainer.max_steps = -1  # an epoch-bounded run: nothing to add
    assert bar.run_eta(FakeTrainer()) == {}
