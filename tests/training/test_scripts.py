"""scripts/train.py as a user runs it: a Hydra multirun sweep, and a user error without a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=400)


@pytest.mark.slow
def test_multirun_sweep_one_folder_per_run(
    synthetic_root: Path, tmp_path: Path, tiny_overrides
) -> None:
    # No hydra.sweep.dir and no paths.*: the default sweep folder must resolve on its own (it is
    # resolved before Hydra's runtime exists) under the directory the command started from.
    proc = _run(
        [
            "-m",
            "model=fcn,deeplabv3plus",
            "model.output_stride=8,16",
            *tiny_overrides,
            "trainer.max_steps=1",
            "trainer.limit_val_batches=1",
            "data.batch_size=2",
            f"data.root={synthetic_root}",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    runs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in runs] == ["0", "1", "2", "3"]
    seen = set()
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        assert (run / "checkpoints" / "last.ckpt").is_file()
        seen.add((metrics["model"], metrics["output_stride"]))
    assert seen == {("fcn", 8), ("fcn", 16), ("deeplabv3plus", 8), ("deeplabv3plus", 16)}


@pytest.mark.slow
def test_missing_data_root_prints_one_message(tmp_path: Path) -> None:
    proc = _run(
        [
            "data=voc",
            f"data.root={tmp_path / 'nowhere'}",
            "trainer=cpu",
            f"hydra.run.dir={tmp_path / 'r'}",
        ],
        tmp_path,
    )
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "nowhere" in proc.stderr
    assert "Traceback" not in proc.stderr
