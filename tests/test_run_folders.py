"""Run folders are unique (issue 11.5): ``${unique_dir:...}`` in configs/hydra/default.yaml claims each
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

from segkit.tasks.run_folders import claim_dir

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
        "data.synthetic.num_train=3",
        "data.synthetic.num_val=2",
        "data.synthetic.min_size=40",
        "data.synthetic.max_size=48",
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
