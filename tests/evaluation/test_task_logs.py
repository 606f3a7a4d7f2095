"""Every run folder holds its `<task>.log` with the task's lines: the run header, what was written,
errors. predict.log, export.log and explore.log were empty (their lines were only printed), and
the demo's per-design folders had no train.log (those runs start without Hydra)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segkit.cli.jobs import task_log
from segkit.cli.launch import echo

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args, f"paths.root_dir={cwd}"],
        capture_output=True, text=True, timeout=400, cwd=cwd,
    )  # fmt: skip


@pytest.mark.slow  # two fresh interpreters importing torch + Hydra: ~10 s each
def test_predict_and_export_logs_hold_the_header_and_what_was_written(checkpoint, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(photos / "a.jpg")
    run = tmp_path / "p"
    proc = _script("predict", f"ckpt_path={checkpoint}", f"input={photos}", "predict.device=cpu",
                   f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (run / "predict.log").read_text()
    assert "segkit predict" in text and "run folder:" in text
    assert f"predict: 1 written, 0 failed -> {run / 'predictions'}" in text
    run = tmp_path / "e"
    proc = _script("export", f"ckpt_path={checkpoint}", "export.exporter=legacy",
                   "export.check_sizes=[]", f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (run / "export.log").read_text()
    assert "segkit export" in text and f"exported {run / 'model.onnx'}" in text


def test_echo_prints_and_writes_the_job_log(tmp_path, capsys):
    """What predict, export and explore (its URL) now say through: the console and the log."""
    handler = logging.FileHandler(tmp_path / "explore.log")
    logging.getLogger().addHandler(handler)
    try:
        echo("segkit explorer: http://127.0.0.1:7860 (2 designs; Ctrl+C stops it)")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert capsys.readouterr().out == (
        "segkit explorer: http://127.0.0.1:7860 (2 designs; Ctrl+C stops it)\n"
    )
    assert "segkit explorer: http://127.0.0.1:7860" in (tmp_path / "explore.log").read_text()


def test_a_run_outside_hydra_gets_its_task_log(tmp_path):
    """The demo's designs (and run_comparison, compare --fill) run tasks without a Hydra job."""
    worker = logging.getLogger("segkit.tasks.train")
    with task_log(tmp_path / "fcn", "train") as path:
        worker.info("data.num_classes=7, from the dataset's classes")
    assert path == tmp_path / "fcn" / "train.log"
    text = path.read_text()
    assert f"segkit train; run folder: {tmp_path / 'fcn'}" in text
    assert "data.num_classes=7" in text
    with pytest.raises(ValueError), task_log(tmp_path / "deeplab", "train"):
        raise ValueError("data.batch_size must be an integer >= 1, got 0")
    assert (
        "error: data.batch_size must be an integer >= 1, got 0"
        in (tmp_path / "deeplab" / "train.log").read_text()
    )
    left = [getattr(h, "baseFilename", "") for h in logging.getLogger().handlers]
    assert not [name for name in left if name.startswith(str(tmp_path))]  # closed, removed
