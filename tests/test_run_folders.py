"""Run folders are unique: ``${unique_dir:...}`` in configs/hydra/default.yaml claims each
run's folder, so two runs started in the same second never share one."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from segkit.cli import run_folders
from segkit.cli.run_folders import (
    LOCK_NAME,
    RunFolderBusy,
    claim_dir,
    launching_process,
    lock_run_folder,
    release_run_folders,
)

ROOT = Path(__file__).resolve().parents[1]

#: Imports everything first, says so, waits for the shared start time and runs the script. Hydra's
#: clock (its ``now`` resolver) is frozen at that start time: on a loaded machine composing the config
#: can take longer than a second, and the runs must be "started in the same second" for certain.
DRIVER = """
import datetime, pathlib, runpy, sys, time
import hydra.core.utils
import segkit.tasks.inspect_data  # the slow imports, before the start line
ready, go, script = sys.argv[1:4]
pathlib.Path(ready).touch()
while not pathlib.Path(go).exists():
    time.sleep(0.002)
start = float(pathlib.Path(go).read_text())

class StartTime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.datetime.fromtimestamp(start)

hydra.core.utils.datetime = StartTime
time.sleep(max(0.0, start - time.time()))
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""


def test_claim_dir_never_hands_out_a_taken_folder(tmp_path):
    base = tmp_path / "runs" / "2026-01-01_00-00-00"
    base.mkdir(parents=True)  # another process's run
    (base.parent / f"{base.name}_1").mkdir()  # and a third one's
    first = claim_dir(str(base))
    assert first == f"{base}_2" and Path(first).is_dir()
    assert claim_dir(str(base)) == first  # one process resolves its folder several times


@pytest.mark.slow  # two processes importing torch + Lightning: ~15 s on 2 cores, 40 s when loaded
def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg"}
    data = [
        "data.dataset.num_train=3",
        "data.dataset.num_val=2",
        "data.dataset.min_size=40",
        "data.dataset.max_size=48",
        "inspect.workers=1",
    ]
    go = tmp_path / "go"
    procs = []
    for k in (1, 2):
        cmd = [sys.executable, "-c", DRIVER, str(tmp_path / f"ready{k}"), str(go)]
        cmd += [str(ROOT / "scripts" / "inspect_data.py"), *data, f"inspect.grid_samples={k}"]
        procs.append(
            subprocess.Popen(
                cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    deadline = time.time() + 120
    while not all((tmp_path / f"ready{k}").exists() for k in (1, 2)):
        assert time.time() < deadline and all(p.poll() is None for p in procs), [
            p.communicate()[1][-2000:] for p in procs if p.poll() is not None
        ]
        time.sleep(0.01)
    start = math.ceil(time.time()) + 0.2
    (tmp_path / "go.tmp").write_text(repr(start))
    (tmp_path / "go.tmp").rename(go)
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    runs = sorted((tmp_path / "logs" / "inspect_data" / "runs").iterdir())
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(start))
    assert [r.name for r in runs] == [stamp, f"{stamp}_1"]  # on main: one folder for both
    grids = set()
    for run in runs:
        overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        grids |= {o for o in overrides if o.startswith("inspect.grid_samples=")}
        assert (run / "grid.png").is_file() and (run / "inspect_data.log").is_file()
    assert grids == {"inspect.grid_samples=1", "inspect.grid_samples=2"}


#: Holds the folder argv[1] until its stdin closes (or it is killed).
HOLDER = (
    "import sys; from segkit.cli.run_folders import lock_run_folder; "
    "lock_run_folder(sys.argv[1]); print('held', flush=True); sys.stdin.read()"
)


def _holder(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for key in run_folders.RANK_ENV:
        env.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_folder_held_by_a_live_run_is_refused_then_free_once_it_ends(tmp_path, monkeypatch):
    for key in run_folders.RANK_ENV:
        monkeypatch.delenv(key, raising=False)
    folder = tmp_path / "run"
    holder = _holder(folder)
    with pytest.raises(RunFolderBusy, match=rf"in use by another segkit run \(PID {holder.pid}"):
        lock_run_folder(folder)
    holder.communicate("")  # it exits normally: its lock is removed
    assert not (folder / LOCK_NAME).exists()
    try:
        assert lock_run_folder(folder).read_text().startswith(f'{{"pid": {os.getpid()}')
    finally:
        release_run_folders()
    assert not (folder / LOCK_NAME).exists()


def test_a_killed_runs_lock_is_stale_and_taken_over(tmp_path, monkeypatch):
    for key in run_folders.RANK_ENV:
        monkeypatch.delenv(key, raising=False)
    folder = tmp_path / "run"
    holder = _holder(folder)
    holder.kill()  # SIGKILL: no exit handler, the lock file stays
    holder.wait()
    assert (folder / LOCK_NAME).exists()
    try:
        lock_run_folder(folder)
        assert f'"pid": {os.getpid()}' in (folder / LOCK_NAME).read_text()
        assert list(folder.iterdir()) == [folder / LOCK_NAME]  # no stale copy left beside it
    finally:
        release_run_folders()


def test_a_requeued_slurm_job_takes_over_its_earlier_attempts_lock(tmp_path, monkeypatch):
    for key in run_folders.RANK_ENV:
        monkeypatch.delenv(key, raising=False)
    folder = tmp_path / "run"
    folder.mkdir()
    # the killed attempt ran on another node: its PID cannot be checked from here
    (folder / LOCK_NAME).write_text('{"pid": 1, "host": "node-7", "slurm_job": "42"}\n')
    with pytest.raises(RunFolderBusy, match="PID 1 on host node-7"):
        lock_run_folder(folder)
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    try:
        lock_run_folder(folder)
    finally:
        release_run_folders()


@pytest.mark.parametrize(
    ("env", "launching"),
    [({}, True), ({"RANK": "0", "LOCAL_RANK": "0"}, True), ({"LOCAL_RANK": "1"}, False),
     ({"RANK": "2"}, False), ({"SLURM_PROCID": "1"}, False), ({"NODE_RANK": "1"}, False)],
)  # fmt: skip
def test_only_the_launching_process_claims(env, launching, monkeypatch):
    for key in run_folders.RANK_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert launching_process() is launching


#: Waits for the go file, tries to hold argv[1], says which, keeps it until stdin closes.
RACER = (
    "import sys, os, time\n"
    "from segkit.cli.run_folders import RunFolderBusy, lock_run_folder\n"
    "while not os.path.exists(sys.argv[2]): time.sleep(0.001)\n"
    "try:\n"
    "    lock_run_folder(sys.argv[1]); print('held', flush=True)\n"
    "except RunFolderBusy:\n"
    "    print('busy', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_runs_started_together_get_one_holder(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for key in run_folders.RANK_ENV:
        env.pop(key, None)
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / "run"), str(go)],
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(6)
    ]
    time.sleep(1.0)  # let them start and wait on the go file
    go.touch()
    answers = [p.stdout.readline().strip() for p in racers]
    for p in racers:
        p.communicate("")
    assert sorted(answers) == ["busy"] * 5 + ["held"]
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    assert list((tmp_path / "run").iterdir()) == []  # no private or stale file left behind
