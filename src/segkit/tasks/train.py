"""``train`` task: build data, model and SegModule from the composed config, fit, write the run folder.

Run folder (``paths.output_dir``): ``config.yaml`` (resolved composed config), ``checkpoints/best.ckpt``
(highest ``val/mIoU``) and ``last.ckpt`` (the latest state: end of run, every validation, every
interruption), ``csv/metrics.csv``, ``tensorboard/``, ``metrics.json`` (strict JSON: ``null`` for a
non-finite value; ``status`` is ``finished``, ``interrupted`` or ``failed``: ended at step 0).

SIGTERM (a cluster pre-emption) or SIGINT (Ctrl+C) lets the current step finish, writes
``last.ckpt``, then raises :class:`TrainingInterrupted`, a ``SystemExit`` with code 128 + signal
(143 / 130), so the job exits non-zero and a multirun stops; a second SIGINT aborts at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, open_dict
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.plugins import TorchSyncBatchNorm
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from segkit.cli.jobs import (
    build_datamodule,
    config_node,
    instantiate_group,
    instantiate_user,
    save_config,
    save_json,
    to_plain,
)
from segkit.cli.run_folders import RESTART_ENV, refuse_training_over
from segkit.compare.curves import METRICS_CSV, plateau, read_curve, write_curve
from segkit.data import ClassInfo, SegDataModule
from segkit.optional import require
from segkit.runs import METRICS_FILE, builder_name
from segkit.training import (
    AtomicCheckpointIO,
    SegModule,
    check_resume_compatible,
    check_resume_settings,
    check_steps_left,
    read_checkpoint,
)
from segkit.training.class_weight import resolve_class_weight

log = logging.getLogger(__name__)


#: ``build_module``'s default: ``module.class_weight`` as the config gives it.
_FROM_CONFIG: Any = object()


def build_module(
    cfg: DictConfig,
    plain_cfg: dict[str, Any] | None = None,
    *,
    classes: ClassInfo | None = None,
    class_weight: list[float] | None = _FROM_CONFIG,
) -> SegModule:
    """The network (``cfg.model``) wrapped in the SegModule configured by ``cfg.module``;
    ``classes`` (the datamodule's) are stored in its checkpoints; ``class_weight``: the resolved
    weights (``training.class_weight``) in place of ``module.class_weight``."""
    network = instantiate_user(cfg.model)
    make_module = instantiate_user(cfg.module, _partial_=True, _convert_="all")
    weights = {} if class_weight is _FROM_CONFIG else {"class_weight": class_weight}
    with config_node("module"):  # SegModule's arguments are its keys
        module = make_module(
            model=network,
            compile=bool(cfg.get("compile", False)),
            cfg=plain_cfg if plain_cfg is not None else to_plain(cfg),
            classes=classes,
            **weights,
        )
    crop = cfg.get("data", {}).get("crop_size")
    # Lightning's model summary counts the FLOPs of one forward of this (else it prints "0"): one
    # eval forward at fit start, 1.6-1.9 s for the quickstart model on the loaded 2-core machine
    # (2026-12-02). Not with compile=true: that forward would compile the network once more.
    if crop and not cfg.get("compile", False):
        module.example_input_array = torch.zeros(1, 3, int(crop), int(crop), dtype=torch.uint8)
    return module


class _DropLightningTips(logging.Filter):
    """Lightning logs a "💡 Tip:" advertising its cloud services on every run, and "`Trainer.fit`
    stopped: `max_steps=N` reached." glued to the end of the progress bar (before the bar closes
    its line); the run's own summary (:func:`summary_lines`) says where training stopped."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return not (text.startswith("💡 Tip") or text.startswith("`Trainer.fit` stopped"))


_TIPS = _DropLightningTips()


def quiet_third_party() -> None:
    """Silence what every run printed and no user can act on: Lightning's promotional tips and
    the ``LeafSpec`` deprecation Lightning 2.6's own ``_pytree`` helper triggers under torch 2.10+.
    Targeted filters only: every other warning still shows."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_TIPS)  # idempotent
    warnings.filterwarnings(
        "ignore",
        message=r".*isinstance\(treespec, LeafSpec\)",
        module=r"pytorch_lightning\.utilities\._pytree",
    )
    # bf16-mixed (the CPU default where the processor has it): the model summary says its size
    # estimate assumes float32 weights, on every run; the weights are float32, so it is right.
    warnings.filterwarnings(
        "ignore", message=r"Precision bf16-mixed is not supported by the model summary"
    )


def require_logger_packages(loggers: DictConfig | None) -> None:
    """TensorBoard is an extra: a TensorBoard logger without it is one line naming the install
    (Lightning's own message offers two packages and a traceback)."""
    for name, entry in (loggers or {}).items():
        if entry is not None and str(entry.get("_target_", "")).endswith(".TensorBoardLogger"):
            require("tensorboard", what=f"logger.{name}")


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    """``pytorch_lightning.Trainer(**cfg.trainer)`` plus the callbacks and loggers groups; every
    checkpoint is written by :class:`~segkit.training.AtomicCheckpointIO`, added to
    ``trainer.plugins``."""
    quiet_third_party()
    trainer_cfg = to_plain(cfg)["trainer"]
    check_devices(trainer_cfg)
    callbacks = instantiate_group(cfg.get("callbacks"))
    require_logger_packages(cfg.get("logger"))
    loggers = instantiate_group(cfg.get("logger"))
    if not loggers:  # LearningRateMonitor refuses a Trainer without loggers: it has no output then
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    make_trainer = instantiate_user(trainer_cfg, _partial_=True, _convert_="all")
    plugins = [*(make_trainer.keywords.get("plugins") or []), AtomicCheckpointIO()]
    try:
        trainer = make_trainer(callbacks=callbacks, logger=loggers or False, plugins=plugins)
    except (MisconfigurationException, ModuleNotFoundError) as err:
        # Lightning's accelerator/strategy checks: one line naming the group, not its traceback.
        raise ValueError(
            f"the trainer group cannot run here: {err} Use trainer=cpu, or set "
            "trainer.accelerator / trainer.devices / trainer.strategy to what this machine has."
        ) from None
    check_sync_batchnorm(trainer)
    return trainer


def check_sync_batchnorm(trainer: pl.Trainer) -> None:
    """ValueError when ``trainer.sync_batchnorm=true`` would put torch's ``nn.SyncBatchNorm`` in a
    DDP run on CPUs: it raises at the first training step there (GPU-only kernel)."""
    layer_sync = getattr(trainer.strategy, "_layer_sync", None)  # set by Lightning for DDP kinds
    if type(layer_sync) is TorchSyncBatchNorm and trainer.strategy.root_device.type == "cpu":
        raise ValueError(
            "trainer.sync_batchnorm=true uses torch's nn.SyncBatchNorm, which runs on GPUs only: "
            "for DDP on CPUs use trainer=ddp_cpu (its trainer.plugins hold segkit's "
            "DistributedBatchNormSync), or set trainer.sync_batchnorm=false"
        )


def _available(accelerator: str) -> tuple[str, int] | None:
    """(what, how many) of an accelerator kind on this machine; None for kinds not checked here."""
    if accelerator in ("gpu", "cuda"):
        return "CUDA GPU", torch.cuda.device_count()
    if accelerator == "mps":
        mps = getattr(torch.backends, "mps", None)
        return "Apple MPS device", int(bool(mps is not None and mps.is_available()))
    return None


def check_devices(trainer_cfg: dict[str, Any]) -> None:
    """ValueError in one line when ``trainer.accelerator`` is absent here or ``trainer.devices``
    asks for more of it than exist (``trainer=gpu`` on a CPU-only machine, ``trainer=ddp
    trainer.devices=4`` with 2 GPUs). CPU "devices" are processes, not hardware: not limited."""
    accelerator = str(trainer_cfg.get("accelerator", "auto")).lower()
    devices = trainer_cfg.get("devices", "auto")
    if accelerator == "auto":
        if torch.cuda.device_count() == 0:
            return  # Lightning falls back to the CPU
        accelerator = "gpu"
    found = _available(accelerator)
    if found is None:
        return
    what, count = found
    if count == 0:
        raise ValueError(
            f"trainer.accelerator={accelerator} but this machine has no {what}: use trainer=cpu "
            "(or trainer.accelerator=cpu)"
        )
    wanted = _requested_devices(devices)
    if wanted is not None and wanted > count:
        raise ValueError(
            f"trainer.devices={devices} asks for {wanted} {what}s but this machine has {count}: "
            f"use trainer.devices={count} (or fewer), or trainer=cpu"
        )


def _requested_devices(devices: Any) -> int | None:
    """How many devices ``trainer.devices`` asks for (a list/``"0,2"`` counts its highest index +
    1); None for ``auto`` / ``-1`` (all of them)."""
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1", ""):
            return None
        if "," in text:
            return max(int(i) for i in text.split(",") if i.strip()) + 1
        devices = int(text)
    if isinstance(devices, (list, tuple)):
        return max(int(i) for i in devices) + 1 if devices else None
    return None if int(devices) < 0 else int(devices)


def _check_data(datamodule: pl.LightningDataModule) -> None:
    """Build the datasets now, so a missing data root surfaces as the data layer's own error
    before any Lightning machinery (and its stack) is involved. Only on global rank 0: processes
    started together by a cluster launcher must not generate/prepare data concurrently (Lightning
    itself prepares on rank 0 behind a barrier)."""
    if rank_zero_only.rank != 0:
        return
    datamodule.prepare_data()
    datamodule.setup("fit")


def check_batches(datamodule: SegDataModule, trainer: pl.Trainer) -> None:
    """ValueError in one line when the train split cannot give a single training step.

    The train loader drops its last incomplete batch, and under DDP each of the
    ``trainer.world_size`` processes gets ``ceil(n / world_size)`` images, so fewer images per
    process than ``data.batch_size`` means no batch and no step at all (Lightning only warns "No
    training batches" and the run would end "finished" at step 0). Gradient accumulation is not a
    factor: Lightning steps on an epoch's last batch. (An empty split list, train or val, is
    refused by every reader.) Checked where the datasets were built (global rank 0,
    ``_check_data``)."""
    train_set = datamodule.train_set
    if train_set is None:
        return
    world = int(trainer.world_size)
    per_process = math.ceil(len(train_set) / world)
    if per_process < datamodule.batch_size:
        over = f" on each of trainer.devices={world} processes" if world > 1 else ""
        most = f" (at most {per_process})" if per_process else ""
        raise ValueError(
            f"the train split ({train_set.split_path}) has {len(train_set)} images, fewer than "
            f"data.batch_size={datamodule.batch_size}{over}: the incomplete batch is dropped, so "
            f"nothing would be trained; lower data.batch_size{most} or add training images"
        )


class NothingTrained(ValueError):
    """A run that ended without a single optimizer step (``metrics.json`` says ``failed``)."""


class TrainingInterrupted(SystemExit):
    """Training stopped by SIGTERM/SIGINT after saving a resumable ``last.ckpt``. A ``SystemExit``
    whose code is 128 + the signal number, as a shell reports a process the signal killed."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(128 + signum)
        self.message = message
        self.signum = signum

    def __str__(self) -> str:
        return self.message


class _Interruption:
    """Which signal stopped training (None: none did)."""

    signum: int | None = None


@contextlib.contextmanager
def _graceful_interrupts() -> Iterator[_Interruption]:
    """SIGINT follows SIGTERM's path while ``fit`` runs: Lightning's SIGTERM handler (installed by
    ``fit``) lets the current step finish and raises ``SIGTERMException`` at the next safe point,
    where ``last.ckpt`` is written. A second SIGINT, or one before Lightning's handler is
    installed, interrupts at once (KeyboardInterrupt). SIGTERM itself is left to Lightning."""
    seen = _Interruption()
    previous_int = signal.getsignal(signal.SIGINT)
    before_fit = signal.getsignal(signal.SIGTERM)

    def on_sigint(signum: int, frame: Any) -> None:
        lightning = signal.getsignal(signal.SIGTERM)
        if seen.signum is not None or lightning is before_fit or not callable(lightning):
            raise KeyboardInterrupt
        seen.signum = signum
        log.warning("SIGINT: finishing the current step, then saving last.ckpt (again to abort)")
        lightning(signal.SIGTERM, frame)

    try:
        signal.signal(signal.SIGINT, on_sigint)
        installed = True
    except ValueError:  # not the main thread: signals are not ours to handle
        installed = False
    try:
        yield seen
    finally:
        if installed:
            signal.signal(signal.SIGINT, previous_int)


def resume_requeued_job(cfg: DictConfig, output_dir: Path) -> None:
    """A run folder that already holds ``checkpoints/last.ckpt`` is never trained over from step 0.

    A requeued SLURM job (``SLURM_RESTART_COUNT`` >= 1) runs its command again in the same folder:
    it resumes from that ``last.ckpt`` (``cfg.ckpt_path`` is set to it, logged). Anything else that
    starts in such a folder without ``ckpt_path`` (the same ``hydra.run.dir`` given twice) is
    refused with the resume command, since it would overwrite the earlier run's checkpoints. (From
    the command line ``segkit.cli.launch.ClaimRunFolder`` refuses it before Hydra writes into the
    folder; this check covers ``train(cfg)`` called from Python.)
    """
    refuse_training_over(output_dir, cfg.get("ckpt_path"))
    last = output_dir / "checkpoints" / "last.ckpt"
    if cfg.get("ckpt_path") or not last.is_file():
        return
    log.warning("requeued SLURM job (%s=%s): resuming from %s", RESTART_ENV,
                os.environ.get(RESTART_ENV), last)  # fmt: skip
    with open_dict(cfg):
        cfg.ckpt_path = str(last)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (or resume with ``cfg.ckpt_path``) and return the final metrics (also ``metrics.json``).

    Raises :class:`TrainingInterrupted` (exit code 143 / 130) after SIGTERM / SIGINT, once
    ``last.ckpt`` and ``metrics.json`` (``status: interrupted``) are written.
    """
    pl.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    asked_to_resume = bool(cfg.get("ckpt_path"))  # by the user, not by a SLURM requeue
    resume_requeued_job(cfg, output_dir)  # before anything reads cfg.ckpt_path
    check_devices(to_plain(cfg)["trainer"])  # before any data or model is built
    datamodule = build_datamodule(cfg)  # fills a null data.num_classes: before the config is read
    plain = to_plain(cfg)
    resumed_weights: list[float] | None | bool = False  # False: not a resume
    if cfg.get("ckpt_path"):
        # missing / corrupt / non-finite weights / another model config: one clear message each
        ckpt = read_checkpoint(cfg.ckpt_path)
        check_resume_compatible(cfg.ckpt_path, plain, checkpoint=ckpt)
        check_resume_settings(cfg.ckpt_path, ckpt, plain)
        saved = ckpt.get("state_dict", {}).get("class_weight")
        resumed_weights = None if saved is None else saved.tolist()
        if asked_to_resume:
            check_steps_left(cfg.ckpt_path, ckpt, plain["trainer"])
        del ckpt
    save_config(cfg, output_dir)

    _check_data(datamodule)
    with config_node("module"):  # SegModule's class_weight, checked or derived from the data
        class_weight = resolve_class_weight(
            cfg.module.get("class_weight"), datamodule, root_dir=cfg.paths.root_dir,
            output_dir=output_dir, resumed=resumed_weights, ckpt_path=cfg.get("ckpt_path"),
        )  # fmt: skip
    module = build_module(cfg, plain, classes=datamodule.classes, class_weight=class_weight)
    trainer = build_trainer(cfg)
    check_batches(datamodule, trainer)
    with _graceful_interrupts() as interruption:
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        except SIGTERMException:
            interruption.signum = interruption.signum or signal.SIGTERM
    interrupted = interruption.signum is not None and trainer.state.status == "interrupted"
    metrics = _summary(trainer, module, cfg)
    # The load when it ended: wall time alone says as much about the other jobs on the machine as
    # about the run (each segment of a resumed run has its own in train_segments).
    metrics["load_avg_1min"] = round(os.getloadavg()[0], 2)
    metrics["status"] = "interrupted" if interrupted else "finished"
    metrics.update(_learning_curve(output_dir) if trainer.is_global_zero else {})
    nothing = not interrupted and trainer.global_step == 0
    if nothing:  # a backstop: check_batches catches the known causes before fit
        metrics["status"] = "failed"
        metrics["error"] = (
            "training ended at step 0: no batch was trained (Lightning found no training "
            "batches: check the train split size against data.batch_size and "
            "trainer.limit_train_batches); no checkpoint was written"
        )
    save_json(metrics, output_dir / METRICS_FILE)
    if interrupted:
        raise _interrupted(trainer, int(interruption.signum))  # type: ignore[arg-type]
    if nothing:
        raise NothingTrained(metrics["error"])
    if trainer.is_global_zero:
        for line in summary_lines(metrics):
            log.info(line)
    return metrics


def _learning_curve(output_dir: Path) -> dict[str, Any]:
    """Write the run's learning curve (``learning_curve.csv`` / ``.png``) from its CSV log; the
    metrics it adds: where val mIoU flattened (``val/plateau_step``, null while climbing)."""
    written = write_curve(output_dir)
    if written is None:  # logger=none: no CSV log to draw from
        return {}
    flat = plateau(read_curve(output_dir / METRICS_CSV).val)
    return {
        "learning_curve": str(written[1]),
        "val/plateau_step": None if flat is None else flat.step,
        "val/plateau": None if flat is None else flat.describe(),
    }


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """What a finished run ends with: steps and time, final and best val mIoU (the number
    ``evaluate`` gives for that checkpoint on the val split), the checkpoints, the run folder and
    the next commands."""

    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{100 * float(value):.2f}"

    from segkit.cli.launch import shown_path as shown  # light; relative to the working directory

    folder = shown(metrics.get("output_dir") or ".")
    best, last = (
        shown(p) if p else None for p in (metrics.get("best_ckpt"), metrics.get("last_ckpt"))
    )
    segments = len(metrics.get("train_segments") or ())
    over = f" over {segments} resumed segments" if segments > 1 else ""
    if metrics.get("train_untimed_steps"):
        over += f" ({metrics['train_untimed_steps']} steps before them untimed)"
    lines = [
        f"done: {metrics.get('global_step', 0)} steps in {metrics.get('train_time_s', 0):.0f} s"
        f"{over}; "
        f"val mIoU {pct(metrics.get('val/mIoU'))} % at the end, "
        f"best {pct(metrics.get('val/mIoU_best'))} %",
        f"  checkpoints: best {best or 'none'}, last {last or 'none'}",
        f"  run folder: {folder} (metrics.json, config.yaml, csv/)",
    ]
    if metrics.get("learning_curve"):
        lines.append(
            f"  learning curve: {shown(metrics['learning_curve'])}; "
            f"{metrics.get('val/plateau') or 'fewer than two validations: no plateau to judge'}"
        )
    if best:
        lines += [
            f"  next: python scripts/evaluate.py ckpt_path={best}",
            f"        python scripts/explore.py ckpt_path=[{best}]",
        ]
    return lines


def _interrupted(trainer: pl.Trainer, signum: int) -> TrainingInterrupted:
    name = signal.Signals(signum).name
    last = getattr(trainer.checkpoint_callback, "last_model_path", "") or ""
    step = trainer.global_step
    if last and Path(last).is_file():
        how = (
            f"saved {last} (step {step}); resume it exactly with the same command and "
            f"ckpt_path={last}"
        )
    else:
        how = "no checkpoint could be saved (no step had finished, or checkpoints are off)"
    message = f"training interrupted by {name} at step {step}: {how}"
    if trainer.is_global_zero:
        log.error(message)
    return TrainingInterrupted(message, signum)


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN/inf (``json.dumps`` would write bare ``NaN``): they become ``null``."""
    return value if math.isfinite(value) else None


def _summary(trainer: pl.Trainer, module: SegModule, cfg: DictConfig) -> dict[str, Any]:
    """``metrics.json``: the last logged scalars, the best val mIoU, the run's time over all its
    segments (``segkit.training.clock``: train_time_s, train_cpu_s, train_segments,
    train_untimed_steps), the checkpoints and the model's identity."""
    scalars = {
        k: _finite_or_none(float(v))
        for k, v in trainer.callback_metrics.items()
        if isinstance(v, torch.Tensor)
    }
    checkpoint = trainer.checkpoint_callback
    best = getattr(checkpoint, "best_model_path", "") or None
    last = getattr(checkpoint, "last_model_path", "") or None
    best_miou = module.best_miou if math.isfinite(module.best_miou) else None
    return {
        **scalars,
        "val/mIoU_best": best_miou,
        "global_step": int(trainer.global_step),
        **module.clock.summary(int(trainer.global_step)),
        "params": sum(p.numel() for p in module.model.parameters()),
        "output_stride": int(cfg.model.output_stride),
        "model": builder_name(cfg.model),
        "backbone": builder_name(cfg.backbone) or "",
        "best_ckpt": best,
        "last_ckpt": last,
        "output_dir": str(cfg.paths.output_dir),
    }


__all__ = [
    "NothingTrained",
    "TrainingInterrupted",
    "build_module",
    "build_trainer",
    "check_batches",
    "check_devices",
    "check_sync_batchnorm",
    "quiet_third_party",
    "require_logger_packages",
    "train",
]
