"""End-to-end: train() on tiny synthetic data, the run folder, exact resume, and the user errors."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

from segkit.tasks.train import build_trainer, train
from segkit.training import (
    AtomicCheckpointIO,
    DistributedBatchNormSync,
    NonFiniteLossError,
    SegProgressBar,
    read_checkpoint,
)


def test_train_writes_the_run_folder(compose_train, tiny_deeplab, tmp_path: Path) -> None:
    cfg = compose_train(*tiny_deeplab, "logger=tensorboard")
    metrics = train(cfg)
    assert metrics[cfg.optimized_metric] is not None  # what scripts/train.py returns to optuna
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert (run / "csv" / "metrics.csv").is_file()
    assert any((run / "tensorboard").iterdir())
    assert metrics["global_step"] == 4
    assert 0.0 <= metrics["val/mIoU"] <= 1.0
    assert metrics["output_stride"] == 16
    ckpt = read_checkpoint(run / "checkpoints" / "last.ckpt")
    cfg = ckpt["hyper_parameters"]["cfg"]
    assert cfg["model"]["_target_"] == "segkit.models.deeplabv3plus"
    assert cfg["data"]["num_classes"] == 7
    assert all(k.startswith("model.") for k in ckpt["state_dict"])
    (best_state,) = [
        v
        for k, v in ckpt["callbacks"].items()
        if k.startswith("SegModelCheckpoint{'monitor': 'val/mIoU'")
    ]
    assert best_state["best_model_path"].endswith("checkpoints/best.ckpt")
    assert float(best_state["best_model_score"]) == pytest.approx(metrics["val/mIoU_best"])


def test_short_run_clips_a_long_warmup_and_prints_no_third_party_noise(
    compose_train, tiny_deeplab, caplog, capsys, recwarn
) -> None:
    """A recipe's warm-up longer than a shortened run trains (clipped, said), and a run
    shows no Lightning tip, no LeafSpec deprecation and a real FLOP count in its model summary."""
    cfg = compose_train(
        *tiny_deeplab, "module.scheduler.warmup_steps=20", "trainer.enable_model_summary=true"
    )
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
    assert metrics["global_step"] == 4
    assert "module.scheduler.warmup_steps=20 does not fit in half of this 4-step run" in caplog.text
    assert "warming up over 2 steps" in caplog.text
    assert not [w for w in recwarn if "LeafSpec" in str(w.message)]
    assert not [w for w in recwarn if "not supported by the model summary" in str(w.message)]
    assert re.search(r"Total FLOPs: [1-9]", capsys.readouterr().out)
    assert "Tip" not in caplog.text
    assert "`Trainer.fit` stopped" not in caplog.text  # glued to the bar; the summary says it


def test_a_finished_run_ends_with_its_summary(compose_train, tiny_deeplab, caplog) -> None:
    cfg = compose_train(*tiny_deeplab)
    with caplog.at_level(logging.INFO, logger="segkit.tasks.train"):
        metrics = train(cfg)
    lines = [r.getMessage() for r in caplog.records if r.name == "segkit.tasks.train"]
    start = next(i for i, line in enumerate(lines) if line.startswith("done: "))
    summary = lines[start:]
    best = f"{100 * metrics['val/mIoU_best']:.2f} %"
    assert summary[0] == (
        f"done: 4 steps in {metrics['train_time_s']:.0f} s; val mIoU "
        f"{100 * metrics['val/mIoU']:.2f} % at the end, best {best}"
    )
    assert "best.ckpt" in summary[1] and "last.ckpt" in summary[1]
    assert summary[2].startswith("  run folder: ")
    (curve,) = [line for line in summary if line.startswith("  learning curve: ")]
    assert "learning_curve.png" in curve and "fewer than two validations" in curve  # 1 val
    (evaluate,) = [line for line in summary if line.startswith("  next: ")]
    assert evaluate.startswith("  next: python scripts/evaluate.py ckpt_path=")
    assert evaluate.endswith("checkpoints/best.ckpt")
    assert "scripts/explore.py" in summary[-1]
    run = Path(metrics["output_dir"])
    assert (run / "learning_curve.png").is_file() and (run / "learning_curve.csv").is_file()
    assert metrics["learning_curve"] == str(run / "learning_curve.png")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["state_dict"]


@pytest.mark.slow
def test_resume_is_exact(compose_train, tiny_deeplab, tmp_path: Path) -> None:
    """8 steps in one run == 4 steps, stop, resume 4 more (epoch = 4 steps; dropout, shuffling and
    augmentation all draw random numbers)."""
    snapshots = [
        "+callbacks.snap._target_=pytorch_lightning.callbacks.ModelCheckpoint",
        f"+callbacks.snap.dirpath={tmp_path / 'snaps'}",
        "+callbacks.snap.filename='step{step}'",
        "+callbacks.snap.save_top_k=-1",
        "+callbacks.snap.auto_insert_metric_name=false",
    ]
    full = train(compose_train(*tiny_deeplab, "trainer.max_steps=8", *snapshots, run="full"))
    half = tmp_path / "snaps" / "step4.ckpt"
    assert half.is_file()
    resumed = train(
        compose_train(*tiny_deeplab, "trainer.max_steps=8", f"ckpt_path={half}", run="resumed")
    )
    assert resumed["global_step"] == full["global_step"] == 8
    a = _weights(tmp_path / "full" / "checkpoints" / "last.ckpt")
    b = _weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    assert resumed["val/mIoU"] == pytest.approx(full["val/mIoU"], abs=1e-6)
    assert resumed["train/lr/head/decay"] == pytest.approx(full["train/lr/head/decay"], rel=1e-9)
    # ... and the rest of the training state at step 8: optimizer (SGD momentum buffers), LR
    # schedule position, global step, RNG streams (torch, numpy, python) and the data order.
    ca = read_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")
    cb = read_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert ca["global_step"] == cb["global_step"] == 8
    (opt_a,), (opt_b,) = ca["optimizer_states"], cb["optimizer_states"]
    assert opt_a["state"].keys() == opt_b["state"].keys() and opt_a["state"]
    for idx, state in opt_a["state"].items():
        torch.testing.assert_close(
            opt_b["state"][idx]["momentum_buffer"], state["momentum_buffer"], rtol=1e-5, atol=1e-6
        )
    (sched_a,), (sched_b,) = ca["lr_schedulers"], cb["lr_schedulers"]
    assert sched_a["last_epoch"] == sched_b["last_epoch"] == 8
    assert sched_b["_last_lr"] == pytest.approx(sched_a["_last_lr"], rel=1e-12)
    rng_a, rng_b = ca["segkit"]["rng"], cb["segkit"]["rng"]
    assert torch.equal(rng_a["torch"], rng_b["torch"])
    assert torch.equal(rng_a["numpy"][1], rng_b["numpy"][1])
    assert rng_a["numpy"][2:] == rng_b["numpy"][2:]
    assert rng_a["python"] == rng_b["python"]
    (data_a,) = ca["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    (data_b,) = cb["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert torch.equal(data_a["generator"], data_b["generator"])
    assert data_a["consumed"] == data_b["consumed"]


def test_missing_data_root_gives_the_data_layers_error(config_dir: str, tmp_path: Path) -> None:
    overrides = [
        f"paths.root_dir={tmp_path}",
        f"paths.output_dir={tmp_path / 'run'}",
        "data=voc",
        f"data.root={tmp_path / 'nowhere'}",
        "trainer=cpu",
    ]
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(cfg)


def test_nan_loss_stops_with_step_and_hint(compose_train, tiny_deeplab) -> None:
    cfg = compose_train(
        *tiny_deeplab,
        "module.lr=1e30",
        "trainer.max_steps=8",
        "callbacks.nan_guard.check_every_n_steps=1",
    )
    with pytest.raises(NonFiniteLossError, match=r"at step \d+\. Hints: lower the learning rate"):
        train(cfg)


def test_resume_from_another_model_config_names_the_keys(
    compose_train, tiny_deeplab, tmp_path: Path
) -> None:
    train(compose_train(*tiny_deeplab, "trainer.max_steps=1", run="first"))
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    cfg = compose_train("model=fcn", f"ckpt_path={ckpt}", run="second")
    with pytest.raises(ValueError, match=r"model\._target_") as err:
        train(cfg)
    assert "segkit.models.fcn" in str(err.value) and "deeplabv3plus" in str(err.value)
    assert not (tmp_path / "second" / "checkpoints").exists()


def test_missing_checkpoint_names_the_path(compose_train, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no.ckpt"):
        train(compose_train(f"ckpt_path={tmp_path / 'no.ckpt'}"))


def test_unknown_config_choice_lists_valid_choices(config_dir: str) -> None:
    with (
        initialize_config_dir(config_dir=config_dir, version_base="1.3"),
        pytest.raises(MissingConfigException, match=r"(?s)Available options.*deeplabv3plus.*fcn"),
    ):
        compose("train", overrides=["model=fcnn"])


def test_unknown_config_key_is_hydras_error(config_dir: str) -> None:
    with (
        initialize_config_dir(config_dir=config_dir, version_base="1.3"),
        pytest.raises(ConfigCompositionException, match=r"Could not override 'trainer\.bogus'"),
    ):
        compose("train", overrides=["trainer.bogus=1"])


def test_debug_fast_dev_run(compose_train, tiny_deeplab) -> None:
    metrics = train(compose_train(*tiny_deeplab, "debug=fdr"))
    assert metrics["global_step"] == 1
    assert metrics["best_ckpt"] is None  # fast_dev_run writes no checkpoint


def test_builder_user_error_is_not_wrapped(compose_train) -> None:
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32"):
        train(compose_train("model.output_stride=12"))


def test_trainer_groups_build(compose_train, config_dir: str, tmp_path: Path) -> None:
    ddp = build_trainer(compose_train("trainer=ddp_cpu", "trainer.devices=1"))
    # the trainer group is Trainer(**kwargs): its plugins + segkit's checkpoint IO
    assert isinstance(ddp.strategy._layer_sync, DistributedBatchNormSync)
    assert isinstance(ddp.strategy.checkpoint_io, AtomicCheckpointIO)
    try:
        cpu = build_trainer(compose_train("trainer.deterministic=true"))
        assert torch.are_deterministic_algorithms_enabled()  # the deterministic switch
    finally:
        torch.use_deterministic_algorithms(False)
    assert getattr(cpu.strategy, "_layer_sync", None) is None
    assert isinstance(cpu.strategy.checkpoint_io, AtomicCheckpointIO)
    assert {type(lg).__name__ for lg in cpu.loggers} == {
        "ContinuingCSVLogger"
    }  # TensorBoard: an extra
    board = build_trainer(compose_train("logger=tensorboard"))
    assert {type(lg).__name__ for lg in board.loggers} == {
        "ContinuingCSVLogger",
        "TensorBoardLogger",
    }
    # the default callbacks show loss, LR and throughput in segkit's bar (TINY drops the bar)
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        default = compose(
            "train",
            overrides=[f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}", "trainer=cpu"],
        )
    bars = [c for c in build_trainer(default).callbacks if isinstance(c, SegProgressBar)]
    assert len(bars) == 1 and bars[0].refresh_rate > 1


def test_the_lr_monitor_runs_with_loggers_and_is_left_out_without(compose_train) -> None:
    """LearningRateMonitor raises at fit start in a Trainer without loggers (logger=none, [])."""
    from pytorch_lightning.callbacks import LearningRateMonitor

    def monitors(*overrides: str) -> int:
        trainer = build_trainer(compose_train(*overrides))
        return sum(isinstance(c, LearningRateMonitor) for c in trainer.callbacks)

    assert monitors() == 1
    assert monitors("logger=none") == monitors("logger=[]") == 0


def test_tensorboard_is_an_extra(compose_train, monkeypatch) -> None:
    """The default logger (CSV) needs no extra; logger=tensorboard without the package is one
    line naming the install command."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    build_trainer(compose_train())
    with pytest.raises(ValueError) as err:
        build_trainer(compose_train("logger=tensorboard"))
    assert str(err.value) == (
        "logger.tensorboard needs tensorboard, which is not installed: "
        "pip install 'segkit[tensorboard]'"
    )
