"""One run per named folder, and a refused run writes nothing (issue "Nothing silently succeeds",
cases 1 and 2).

Two runs given the same ``hydra.run.dir`` used to both run, mixing their logs, configs and
checkpoints; a refused rerun (a folder holding ``last.ckpt``) had already had ``.hydra/*``
rewritten and its log appended to by Hydra. ``segkit.cli.launch.ClaimRunFolder`` holds the folder
(``.segkit.lock``) and refuses before Hydra writes anything. Fast: the real scripts' machinery around
a stand-in task module (no torch).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

#: Stand-in for segkit.tasks.<task>: with seed=7 it waits (holding its folder) until told to end.
FAKE_TASK = """
import time
from pathlib import Path

def _run(cfg):
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "started").write_text("yes")
    while cfg.get("seed") == 7 and not (out / "finish").exists():
        time.sleep(0.05)
    (out / "ran").write_text("ok")
    (out / "config.yaml").write_text(f"seed: {cfg.get('seed')}")  # what segkit's tasks save
    return {}

inspect_data = train = _run
"""
SCRIPT = """
import hydra
from segkit.cli.launch import launch, run_task

@hydra.main(version_base="1.3", config_path={configs!r}, config_name={name!r})
def main(cfg):
    run_task({name!r}, cfg, module="fake_task")

if __name__ == "__main__":
    launch(main, config={name!r})
"""


def _command(tmp_path: Path, name: str, *args: str) -> tuple[list[str], dict[str, str]]:
    (tmp_path / "fake_task.py").write_text(FAKE_TASK)
    script = tmp_path / f"{name}.py"
    script.write_text(SCRIPT.format(configs=str(CONFIGS), name=name))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "NODE_RANK", "GROUP_RANK", "SLURM_JOB_ID"):
        env.pop(key, None)
    return [sys.executable, str(script), *args], env


def run_fake(tmp_path: Path, name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    cmd, base = _command(tmp_path, name, *args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**base, **env})  # fmt: skip


def start_holder(tmp_path: Path, run: Path) -> subprocess.Popen:
    """A first run in ``run`` that stays in its job until ``run/finish`` exists."""
    cmd, env = _command(
        tmp_path, "inspect_data", "data=synthetic", "seed=7", f"hydra.run.dir={run}"
    )
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 60
    while not (run / "started").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_second_run_in_a_held_folder_is_refused_before_writing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = start_holder(tmp_path, run)
    try:
        before = snapshot(run)
        assert {".hydra/overrides.yaml", ".hydra/config.yaml", "inspect_data.log"} <= set(before)
        second = run_fake(tmp_path, "inspect_data", "data=synthetic", f"hydra.run.dir={run}")
        assert second.returncode == 1
        line = second.stderr.strip()
        assert line.startswith(f"error: run folder {run} is in use by another segkit run "
                               f"(PID {first.pid}")  # fmt: skip
        assert "\n" not in line and "another hydra.run.dir" in line
        assert snapshot(run) == before  # the first run's record, byte for byte
    finally:
        (run / "finish").touch()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert not (run / ".segkit.lock").exists()  # released at exit


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = start_holder(tmp_path, run)
    first.send_signal(signal.SIGKILL)  # no exit handler runs: the lock stays
    first.wait(timeout=30)
    assert (run / ".segkit.lock").exists()
    again = run_fake(tmp_path, "inspect_data", "data=synthetic", f"hydra.run.dir={run}")
    assert again.returncode == 0, again.stderr
    assert (run / "ran").exists() and not (run / ".segkit.lock").exists()


def test_ddp_ranks_above_zero_share_the_folder(tmp_path: Path) -> None:
    """Lightning starts the other DDP ranks with the run's hydra.run.dir and LOCAL_RANK / RANK
    set: they run in the folder their rank 0 holds."""
    run = tmp_path / "run"
    first = start_holder(tmp_path, run)
    try:
        for env in ({"LOCAL_RANK": "1"}, {"RANK": "3"}):
            child = run_fake(tmp_path, "inspect_data", "data=synthetic", f"hydra.run.dir={run}",
                             "hydra.output_subdir=null", **env)  # fmt: skip
            assert child.returncode == 0, child.stderr
    finally:
        (run / "finish").touch()
        first.communicate(timeout=60)


def test_a_refused_training_leaves_the_earlier_run_byte_identical(tmp_path: Path) -> None:
    """Training again, without ckpt_path, in a folder that holds last.ckpt is refused (it would
    write over that run's checkpoints) before Hydra rewrites .hydra/* or appends to train.log."""
    run = tmp_path / "run"
    earlier = run_fake(tmp_path, "train", "data=synthetic", "module.lr=0.5", f"hydra.run.dir={run}")
    assert earlier.returncode == 0, earlier.stderr
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"the earlier run's weights")
    before = snapshot(run)
    again = run_fake(tmp_path, "train", "data=synthetic", "module.lr=0.1", f"hydra.run.dir={run}")
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: run folder {run} already holds checkpoints/last.ckpt from an earlier run: "
        f"continue it with ckpt_path={run / 'checkpoints' / 'last.ckpt'}, or train in a new "
        "folder (another hydra.run.dir / paths.output_dir)"
    )
    assert snapshot(run) == before  # overrides.yaml still says module.lr=0.5


def test_a_named_sweep_folder_is_not_reused(tmp_path: Path) -> None:
    """A second multirun into a sweep folder that holds an earlier one's jobs would rewrite their
    .hydra/overrides.yaml (what trials.json reads): refused before any job starts."""
    sweep = tmp_path / "sweep"
    first = run_fake(tmp_path, "inspect_data", "-m", "data=synthetic", "seed=1,2",
                     f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert first.returncode == 0, first.stderr
    before = snapshot(sweep)
    again = run_fake(tmp_path, "inspect_data", "-m", "data=synthetic", "seed=3,4",
                     f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert again.returncode == 1
    assert again.stderr.strip().startswith(f"error: sweep folder {sweep} already holds the jobs")
    assert snapshot(sweep) == before


def test_the_train_script_refuses_before_hydra_writes(tmp_path: Path) -> None:
    """The same with the real scripts/train.py: refused before the job (and torch) starts."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- module.lr=0.5\n")
    (run / "train.log").write_text("[the earlier run's log]\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    before = snapshot(run)
    env = {k: v for k, v in os.environ.items() if k != "SLURM_RESTART_COUNT"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "data=synthetic", "module.lr=0.1",
         f"hydra.run.dir={run}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"error: run folder {run} already holds checkpoints/")
    assert snapshot(run) == before


def test_a_shared_paths_output_dir_is_held_too(tmp_path: Path) -> None:
    """paths.output_dir=... moves the task's outputs out of Hydra's run folder: two runs given
    the same one would write into it together; the second is refused."""
    out = tmp_path / "out"
    cmd, env = _command(tmp_path, "inspect_data", "data=synthetic", "seed=7",
                        f"paths.output_dir={out}", f"hydra.run.dir={tmp_path / 'a'}")  # fmt: skip
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.time() + 60
        while not (out / "started").exists():
            assert first.poll() is None and time.time() < deadline, first.communicate()
            time.sleep(0.05)
        second = run_fake(tmp_path, "inspect_data", "data=synthetic", f"paths.output_dir={out}",
                          f"hydra.run.dir={tmp_path / 'b'}")  # fmt: skip
        assert second.returncode == 1
        assert second.stderr.startswith(f"error: run folder {out} is in use by another segkit run")
    finally:
        (out / "finish").touch()
        first.communicate(timeout=60)


def test_a_rerun_into_a_finished_runs_folder_is_refused(tmp_path: Path) -> None:
    """evaluate / analyze / inspect_data ... given the folder of a finished run would overwrite
    its config.yaml, metrics and .hydra/*: refused before anything is written."""
    run = tmp_path / "run"
    earlier = run_fake(tmp_path, "inspect_data", "data=synthetic", "seed=1", f"hydra.run.dir={run}")
    assert earlier.returncode == 0, earlier.stderr
    before = snapshot(run)
    again = run_fake(tmp_path, "inspect_data", "data=synthetic", "seed=2", f"hydra.run.dir={run}")
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: run folder {run} already holds an earlier run (config.yaml): give this run its "
        "own folder (another hydra.run.dir / paths.output_dir), or move that one away first"
    )
    assert snapshot(run) == before
