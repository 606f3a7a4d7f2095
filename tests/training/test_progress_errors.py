"""A failure mid-training starts its `error:` line at the beginning of a line, not after the
progress bar's last `\\r` redraw (a log captured with `2>&1` then hid it from `grep '^error'`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

from segkit.training import SegProgressBar

ROOT = Path(__file__).resolve().parents[2]


def _bar(leave: bool) -> Tqdm:
    bar = Tqdm(total=4, file=sys.stdout, leave=leave, desc="Epoch 0" if leave else "Validation")
    bar.update(1)
    return bar


@pytest.mark.parametrize("open_bars", [("train",), ("train", "val"), ("val",)])
def test_the_bar_ends_its_line_when_training_fails(open_bars, capsys) -> None:
    progress = SegProgressBar()
    if "train" in open_bars:
        progress._train_progress_bar = _bar(leave=True)
    if "val" in open_bars:  # a validation (or sanity check) bar clears its line with \r
        progress._val_progress_bar = _bar(leave=False)
    progress.on_exception(None, None, ValueError("boom"))  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert out.endswith("\n") and not out.endswith("\n\n")


@pytest.mark.slow  # a fresh interpreter training a few steps: ~20 s
def test_an_error_mid_training_begins_a_line_of_the_captured_log(tmp_path: Path) -> None:
    tiny = [
        "data=synthetic", "data.dataset.num_train=32", "data.dataset.num_val=8",
        "data.dataset.min_size=64", "data.dataset.max_size=64", "data.crop_size=64",
        "data.batch_size=8", "data.val_batch_size=4", "data.num_workers=0",
        "backbone.width_mult=0.35", "model.aspp_channels=16", "model.decoder_channels=16",
        "model.low_level_channels=8", "trainer=cpu", "trainer.max_steps=8",
        "trainer.num_sanity_val_steps=0", "trainer.enable_model_summary=false", "logger=none",
    ]  # fmt: skip
    diverge = ["module.lr=1e30", "callbacks.nan_guard.check_every_n_steps=1"]
    log = tmp_path / "console.log"
    with log.open("w") as out:  # the progress bar stays on (segkit's default callbacks)
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "train.py"), *tiny, *diverge,
             "callbacks.progress_bar.refresh_rate=1", f"data.root={tmp_path / 'data'}",
             f"hydra.run.dir={tmp_path / 'run'}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, timeout=400,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
    text = log.read_text()
    assert proc.returncode == 1, text[-2000:]
    assert "Epoch 0" in text  # the bar was drawn
    assert re.search(r"^error: training loss became NaN/inf", text, re.M), text[-1000:]
