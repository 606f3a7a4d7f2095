"""Stops and resumes: exact resume mid-epoch, last.ckpt = the final state, a resume refuses what
the checkpoint fixes (optimizer, LR schedule and its length, seed), SIGTERM/SIGINT save a resumable checkpoint and exit non-zero, strict metrics.json."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

import segkit.tasks.train as train_task
from helpers.training import SignalAt
from segkit.tasks.train import TrainingInterrupted, train
from segkit.training import read_checkpoint
from segkit.training.checkpoint_file import FORMAT_KEY

ROOT = Path(__file__).resolve().parents[2]
LR = 0.05  # large enough for the scores to move within a few steps
EPOCH = 4  # steps per epoch: 32 training images / batch 8


def _csv_rows(run: Path) -> list[dict[str, str]]:
    (path,) = (run / "csv").rglob("metrics.csv")
    return list(csv.DictReader(path.open()))


def _strict_json(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds a bare {name}: not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture
def signal_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, int], None]:
    """signal_at(step, signum): the next train() sends itself the signal after that step."""

    def arm(step: int, signum: int) -> None:
        build = train_task.build_trainer

        def build_with_signal(cfg: DictConfig) -> pl.Trainer:
            trainer = build(cfg)
            trainer.callbacks.append(SignalAt(step, signum))
            return trainer

        monkeypatch.setattr(train_task, "build_trainer", build_with_signal)

    return arm


def test_resume_mid_epoch_is_exact(compose_train, tiny_deeplab, signal_at, monkeypatch) -> None:
    """7 steps straight == SIGTERM after step 3 (mid-epoch: epochs are 4 steps) + resume to 7:
    identical weights, optimizer state, data position, scores and logged curve, in deterministic
    mode."""
    common = (*tiny_deeplab, f"module.lr={LR}", "trainer.max_steps=7", "trainer.deterministic=true")
    full = train(compose_train(*common, run="full"))

    signal_at(3, signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as stop:
        train(compose_train(*common, run="stopped"))
    monkeypatch.undo()
    assert stop.value.code == 128 + signal.SIGTERM
    last = Path(compose_train(run="stopped").paths.output_dir) / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["global_step"] == 3
    (loader_state,) = read_checkpoint(last)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert loader_state["epoch"] == 0 and loader_state["consumed"] == 3
    # as the checkpoints written before the format number existed (read as format 1)
    before = torch.load(last, weights_only=True)
    before.pop(FORMAT_KEY)
    torch.save(before, last)

    stopped = _strict_json(Path(compose_train(run="stopped").paths.output_dir) / "metrics.json")
    # A resume continues the run in its own folder (as make camvid and a requeued job do).
    resumed = train(compose_train(*common, f"ckpt_path={last}", run="stopped"))
    scores = (
        "global_step",
        "val/loss",
        "val/mIoU",
        "val/mIoU_best",
        "val/pixel_acc",
        "train/lr/head/decay",
    )
    for key in scores:
        assert resumed[key] == full[key], key
    assert resumed["val/loss"] != _first_val(compose_train, "full")  # the scores moved
    a = read_checkpoint(Path(full["last_ckpt"]))
    b = read_checkpoint(Path(resumed["last_ckpt"]))
    assert a["global_step"] == b["global_step"] == 7
    for key, value in a["state_dict"].items():
        assert torch.equal(b["state_dict"][key], value), key
    (opt_a,), (opt_b,) = a["optimizer_states"], b["optimizer_states"]
    for idx, state in opt_a["state"].items():
        assert torch.equal(opt_b["state"][idx]["momentum_buffer"], state["momentum_buffer"])
    # Training losses of steps 4..7 (logged every step) are the same numbers.
    losses = [
        [(r["step"], r["train/loss"]) for r in _csv_rows(Path(m["output_dir"])) if r["train/loss"]]
        for m in (full, resumed)
    ]
    # The whole run's curve, in one metrics.csv: Lightning's own CSVLogger deletes the rows of
    # steps 1-3 on a resume (segkit.training.ContinuingCSVLogger keeps them).
    assert losses[1] == losses[0]
    vals = [
        [(r["step"], r["val/mIoU"]) for r in _csv_rows(Path(m["output_dir"])) if r["val/mIoU"]]
        for m in (full, resumed)
    ]
    assert vals[1] == vals[0] and len(vals[0]) >= 2
    # The run's time is both processes' (the training clock travels in the checkpoint).
    assert [(s["from_step"], s["to_step"]) for s in stopped["train_segments"]] == [(0, 3)]
    assert [(s["from_step"], s["to_step"]) for s in resumed["train_segments"]] == [(0, 3), (3, 7)]
    assert full["train_untimed_steps"] == resumed["train_untimed_steps"] == 0
    first, second = resumed["train_segments"]
    assert first["wall_s"] == read_checkpoint(last)["segkit"]["clock"]["segments"][0]["wall_s"]
    assert resumed["train_time_s"] == pytest.approx(first["wall_s"] + second["wall_s"], abs=2e-3)
    assert resumed["train_time_s"] > second["wall_s"] > 0


def _first_val(compose_train, run: str) -> float:
    rows = _csv_rows(Path(compose_train(run=run).paths.output_dir))
    return float(next(r["val/loss"] for r in rows if r["val/loss"]))


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, compose_train_at) -> Callable[..., DictConfig]:
    """compose(*overrides, run=...) on a module-wide folder where two runs are trained once:
    "four" (4 steps: one epoch, ends on its validation) and "six" (ends between validations)."""
    root = tmp_path_factory.mktemp("short")

    def _compose(*overrides: str, run: str) -> DictConfig:
        return compose_train_at(root, f"module.lr={LR}", *overrides, run=run)

    train(_compose(f"trainer.max_steps={EPOCH}", run="four"))
    train(_compose("trainer.max_steps=6", run="six"))
    return _compose


def _last(compose: Callable[..., DictConfig], run: str) -> Path:
    return Path(compose(run=run).paths.output_dir) / "checkpoints" / "last.ckpt"


def test_last_ckpt_is_the_final_state(short_runs) -> None:
    """6 steps end between the epoch-end validations (steps 4 and 8): last.ckpt is step 6, the
    step metrics.json reports, and the final model is validated."""
    run = Path(short_runs(run="six").paths.output_dir)
    metrics = _strict_json(run / "metrics.json")
    assert metrics["global_step"] == 6 and metrics["status"] == "finished"
    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 6
    validated = [int(r["step"]) for r in _csv_rows(run) if r["val/loss"]]
    assert validated == [EPOCH - 1, 5]  # the logger's 0-based steps: after steps 4 and 6
    assert metrics["val/loss"] == pytest.approx(float(_csv_rows(run)[-1]["val/loss"]))


@pytest.mark.parametrize(
    ("overrides", "listed"),
    [
        # trained with SGD: AdamW would be built, then fail on SGD's state (KeyError: 'momentum'
        # the other way round) while the warning said the change "is not applied"
        (["optimizer=adamw"], "module.optimizer._target_: torch.optim.SGD -> torch.optim.AdamW"),
        (["module.lr=0.001", "module.optimizer.momentum=0.5", "module.scheduler.warmup_steps=2"],
         f"module.lr: {LR} -> 0.001, module.optimizer.momentum: 0.9 -> 0.5, "
         "module.scheduler.warmup_steps: 0 -> 2"),
        (["seed=7"], "seed: 42 -> 7"),  # the random streams are restored: the seed would be a label
        (["module.no_decay_depthwise=false"], "module.no_decay_depthwise: True -> False"),
        # the restored PolynomialLR ends at step 4: steps past it would train at LR 0
        (["trainer.max_steps=6"], f"trainer.max_steps: {EPOCH} -> 6"),
        (["module.scheduler.power=1.0"], "module.scheduler.power: 0.9 -> 1.0"),
    ],
)  # fmt: skip
def test_a_resume_refuses_settings_it_cannot_apply(short_runs, overrides, listed) -> None:
    """What the checkpoint's optimizer / scheduler / RNG state fixes is refused in one line before
    the trainer is built, rather than recorded in config.yaml and not applied."""
    last = _last(short_runs, "four")
    cfg = short_runs(f"trainer.max_steps={EPOCH}", *overrides, f"ckpt_path={last}", run="refused")
    with pytest.raises(ValueError) as refused:
        train(cfg)
    message = str(refused.value)
    assert message.startswith("a resume cannot apply ") and listed in message
    assert f"(ckpt_path={last} restores the optimizer" in message
    assert "\n" not in message and "start a new run without ckpt_path" in message
    assert not (Path(cfg.paths.output_dir) / "config.yaml").exists()  # nothing that looks run


def test_metrics_json_is_strict_json(compose_train, tiny_deeplab) -> None:
    """One validation image: classes absent from it have IoU NaN, written as null (not NaN)."""
    cfg = compose_train(
        *tiny_deeplab,
        f"trainer.max_steps={EPOCH}",
        "data.val_batch_size=1",
        "trainer.limit_val_batches=1",
    )
    train(cfg)
    metrics = _strict_json(Path(cfg.paths.output_dir) / "metrics.json")
    per_class = {k: v for k, v in metrics.items() if k.startswith("val/IoU/")}
    assert None in per_class.values()  # the NaN case was exercised
    assert all(v is None or 0.0 <= v <= 1.0 for v in per_class.values())


#: Runs scripts/train.py as a user does, with one extra callback that sends the process a real
#: signal after step argv[1] (what a scheduler's pre-emption or Ctrl+C does).
DRIVER = textwrap.dedent(
    """
    import os, runpy, signal, sys
    import pytorch_lightning as pl
    import segkit.tasks.train as train_task

    step, signum = int(sys.argv[1]), getattr(signal, sys.argv[2])

    class SignalAt(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == step:
                os.kill(os.getpid(), signum)

    build = train_task.build_trainer
    def build_with_signal(cfg):
        trainer = build(cfg)
        trainer.callbacks.append(SignalAt())
        return trainer
    train_task.build_trainer = build_with_signal
    sys.argv = [sys.argv[3], *sys.argv[4:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_preempted_job_saves_last_ckpt_and_exits_non_zero(
    tmp_path: Path, synthetic_root: Path, tiny_overrides, tiny_deeplab, name: str
) -> None:
    run = tmp_path / "run"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    args = [
        *tiny_overrides,
        *tiny_deeplab,
        "trainer.max_steps=40",
        f"data.root={synthetic_root}",
        f"hydra.run.dir={run}",
    ]
    cmd = [sys.executable, str(driver), "3", name, str(ROOT / "scripts" / "train.py"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    signum = getattr(signal, name)
    assert proc.returncode == 128 + signum, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    last = run / "checkpoints" / "last.ckpt"
    assert f"training interrupted by {name} at step 3" in output
    assert f"ckpt_path={last}" in output
    assert "Traceback" not in output
    assert read_checkpoint(last)["global_step"] == 3
    metrics = _strict_json(run / "metrics.json")
    assert metrics["status"] == "interrupted" and metrics["global_step"] == 3
    assert f"interrupted by {name}" in (run / "train.log").read_text()


def test_a_folder_with_a_last_ckpt_is_not_trained_over(short_runs, monkeypatch) -> None:
    """Starting again in a run folder that holds last.ckpt, without ckpt_path, would overwrite it:
    refused with the resume command, nothing in the folder touched."""
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    last = _last(short_runs, "six")
    before = last.read_bytes()
    with pytest.raises(FileExistsError, match=rf"continue it with ckpt_path={last}"):
        train(short_runs("trainer.max_steps=6", run="six"))
    assert last.read_bytes() == before


def test_a_requeued_slurm_job_resumes_from_its_own_last_ckpt(
    short_runs, signal_at, monkeypatch, caplog
):
    """A job SLURM requeued (SLURM_RESTART_COUNT >= 1) runs its command again in its folder: it
    continues from that folder's last.ckpt instead of starting at step 0."""
    signal_at(EPOCH, signal.SIGTERM)  # the first attempt is pre-empted after step 4 of 6
    with pytest.raises(TrainingInterrupted):
        train(short_runs("trainer.max_steps=6", run="requeued"))
    monkeypatch.undo()
    assert read_checkpoint(_last(short_runs, "requeued"))["global_step"] == EPOCH
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    with caplog.at_level(logging.WARNING, logger="segkit.tasks.train"):
        metrics = train(short_runs("trainer.max_steps=6", run="requeued"))  # the requeued one
    assert "requeued SLURM job (SLURM_RESTART_COUNT=1): resuming from" in caplog.text
    assert metrics["global_step"] == 6
    # the second process started at the checkpoint: no step before it was trained again
    spans = [(s["from_step"], s["to_step"]) for s in metrics["train_segments"]]
    assert spans == [(0, EPOCH), (EPOCH, 6)]
    rows = [r for r in _csv_rows(Path(metrics["output_dir"])) if r["train/loss"]]
    assert [int(r["step"]) for r in rows] == list(range(6))  # one curve, each step once
