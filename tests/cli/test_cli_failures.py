"""How a failing job is reported: one line, the right exit status, a prompt exit.

A user error inside a Hydra job is raised (never ``sys.exit``): a multirun goes on to its next job,
each failed job prints one line and writes its error into its own run folder's log, and the exit
status is 1 when any job failed. The fast tests run the real scripts' machinery
(``segkit.cli.launch.run_task`` + the Hydra callback of ``configs/hydra/default.yaml``) around a
stand-in task module, so no torch is imported; the slow one sweeps the real ``scripts/train.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

#: A stand-in for segkit.tasks.<task>: records that it ran, or fails the way it is told to.
FAKE_TASK = """
from pathlib import Path

def _run(cfg):
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.get("seed") == 13:
        raise KeyError("a bug, not a user error")
    (out / "ran").write_text("ok")
    return {"val/mIoU_best": float(cfg.module.lr) if "module" in cfg else 0.0}

inspect_data = train = _run
"""
SCRIPT = """
import hydra
from segkit.cli.launch import launch, run_task

@hydra.main(version_base="1.3", config_path={configs!r}, config_name={name!r})
def main(cfg):
    metrics = run_task({name!r}, cfg, module="fake_task")
    return metrics.get("val/mIoU_best")

if __name__ == "__main__":
    launch(main)
"""


def run_fake(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "fake_task.py").write_text(FAKE_TASK)
    script = tmp_path / f"{name}.py"  # Hydra names the job (and its log) after the script
    script.write_text(SCRIPT.format(configs=str(CONFIGS), name=name))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )  # fmt: skip


def _errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def test_single_run_user_error_is_one_line_and_in_the_run_log(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_fake(tmp_path, "inspect_data", "data.batch_size=0", f"hydra.run.dir={run}")
    assert proc.returncode == 1
    line = "error: data: batch_size must be an integer >= 1, got 0 (set batch_size=1 or more)"
    assert proc.stderr.strip() == line  # one line: no Hydra framing, no traceback
    assert line in (run / "inspect_data.log").read_text()  # the run folder keeps the error
    assert not (run / "ran").exists()


def test_multirun_goes_on_after_a_bad_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_fake(
        tmp_path, "inspect_data", "-m", "data.batch_size=4,0,4", "seed=1,2,3",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    # 3 x 3 jobs; the three with data.batch_size=0 (jobs 3, 4, 5) fail, all others run
    ran = sorted(int(p.parent.name) for p in sweep.glob("*/ran"))
    assert ran == [0, 1, 2, 6, 7, 8], proc.stderr[-3000:]
    failed = _errors(proc.stderr)
    assert [ln.split()[2] for ln in failed] == ["#3", "#4", "#5"]
    assert all("data: batch_size must be an integer >= 1, got 0" in ln for ln in failed)
    for job in (3, 4, 5):
        assert (
            "data: batch_size must be an integer >= 1"
            in (sweep / str(job) / "inspect_data.log").read_text()
        )
    assert proc.returncode == 1  # a sweep with a failed job exits 1 (after running every job)
    assert "Traceback" not in proc.stderr


def test_multirun_goes_on_after_a_bug_and_logs_its_traceback(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_fake(tmp_path, "inspect_data", "-m", "seed=1,13,2", f"hydra.sweep.dir={sweep}")
    assert sorted(int(p.parent.name) for p in sweep.glob("*/ran")) == [0, 2]
    assert proc.returncode == 1
    (line,) = _errors(proc.stderr)
    assert line.startswith("error: job #1 (") and "KeyError" in line and "job's log" in line
    log = (sweep / "1" / "inspect_data.log").read_text()
    assert "Traceback" in log and "a bug, not a user error" in log


def test_single_run_bug_keeps_its_traceback(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_fake(tmp_path, "inspect_data", "seed=13", f"hydra.run.dir={run}")
    assert proc.returncode == 1
    assert "KeyError" in proc.stderr and "a bug, not a user error" in proc.stderr
    assert "Traceback" in (run / "inspect_data.log").read_text()


def test_successful_run_exits_0(tmp_path: Path) -> None:
    proc = run_fake(tmp_path, "inspect_data", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "ran").is_file() and _errors(proc.stderr) == []


def test_hparams_search_marks_failed_trials_and_goes_on(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the optional sweep extra")
    sweep = tmp_path / "sweep"
    # a negative warm-up is refused by the pre-flight: those trials fail (the warm-up is searched
    # from the command line, in the Optuna sweeper's syntax)
    proc = run_fake(
        tmp_path, "train", "-m", "hparams_search=voc_optuna", "data=synthetic",
        "trainer.max_steps=100", "hydra.sweeper.n_trials=6", "hydra.sweeper.sampler.n_startup_trials=6",
        "module.scheduler.warmup_steps=choice(0,-1)", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    failed = _errors(proc.stderr)
    assert failed and all(
        "module.scheduler: warmup_steps must be >= 0, got -1" in ln for ln in failed
    )
    ran = list(sweep.glob("*/ran"))
    assert len(ran) + len(failed) == 6, proc.stderr[-3000:]
    assert proc.returncode == 0  # the study completed (with failed trials marked FAIL)
    assert "best_value" in (sweep / "optimization_results.yaml").read_text()


def test_exit_skips_the_interpreters_teardown(tmp_path: Path) -> None:
    """A failed run ends right after its atexit handlers: the slow finalization of the imported
    modules (seconds for torch + Lightning) is skipped, the log still flushed."""
    (tmp_path / "slow_teardown.py").write_text(
        "import sys\n"
        "class Marker:\n"
        "    def __del__(self):\n"
        "        sys.stderr.write('FINALIZED\\n')\n"
        "marker = Marker()\n"
    )
    fake = FAKE_TASK.replace(
        "from pathlib import Path", "from pathlib import Path\nimport slow_teardown"
    )
    (tmp_path / "fake_task.py").write_text(fake)
    script = tmp_path / "inspect_data.py"
    script.write_text(SCRIPT.format(configs=str(CONFIGS), name="inspect_data"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path, env=env)  # fmt: skip

    ok = run(f"hydra.run.dir={tmp_path / 'ok'}")
    assert ok.returncode == 0 and "FINALIZED" in ok.stderr  # a success finalizes normally
    bad = run("seed=13", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode == 1 and "FINALIZED" not in bad.stderr
    assert "a bug, not a user error" in (tmp_path / "bad" / "inspect_data.log").read_text()


@pytest.mark.slow  # two tiny trainings and one torch import: ~20-40 s here
def test_train_sweep_with_an_invalid_middle_job(tmp_path: Path) -> None:
    tiny = [
        "model=fcn", "data=synthetic", f"data.root={tmp_path / 'data'}", "data.dataset.num_train=8",
        "data.dataset.num_val=4", "data.dataset.min_size=64", "data.dataset.max_size=64",
        "data.crop_size=64", "data.batch_size=4", "data.val_batch_size=2", "data.num_workers=0",
        "backbone.width_mult=0.35", "trainer=cpu", "trainer.max_steps=1",
        "trainer.num_sanity_val_steps=0", "trainer.limit_val_batches=1",
        "trainer.enable_model_summary=false", "callbacks.progress_bar=null", "logger=none",
    ]  # fmt: skip
    sweep = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", "model.output_stride=32,12,16",
         *tiny, f"hydra.sweep.dir={sweep}"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 1
    for job, stride in ((0, 32), (2, 16)):
        assert (
            json.loads((sweep / str(job) / "metrics.json").read_text())["output_stride"] == stride
        )
    assert not (sweep / "1" / "metrics.json").exists()
    (line,) = _errors(proc.stderr)
    assert (
        line.startswith("error: job #1 (") and "output_stride must be 8, 16 or 32, got 12" in line
    )
    assert "output_stride must be 8, 16 or 32, got 12" in (sweep / "1" / "train.log").read_text()
    assert "Traceback" not in proc.stderr
