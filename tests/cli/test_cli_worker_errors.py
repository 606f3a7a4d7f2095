"""An error raised in a DataLoader worker process reaches the user as its own one line:
torch re-raises it in the main process wrapped in the worker's traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch.utils.data import DataLoader, Dataset

from segkit.cli.launch import one_line

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = "image file /data/x.jpg is unreadable or corrupt (truncated): re-extract the archive"


class Broken(Dataset):
    def __init__(self, exc: type[Exception]) -> None:
        self.exc = exc

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int):
        raise self.exc(MESSAGE)


@pytest.mark.parametrize("exc", [ValueError, FileNotFoundError, FloatingPointError])
def test_worker_error_becomes_its_own_message(exc: type[Exception]) -> None:
    loader = DataLoader(Broken(exc), batch_size=2, num_workers=1)
    with pytest.raises(exc) as err:
        next(iter(loader))
    assert "DataLoader worker process 0" in str(err.value)  # torch's wrapping, what users saw
    assert one_line(err.value) == MESSAGE


def test_other_messages_are_left_alone() -> None:
    assert one_line(ValueError("a: b\nc")) == "a: b\nc"
    assert one_line(ValueError(MESSAGE)) == MESSAGE


@pytest.mark.slow  # a training process (torch import, data generation): ~15-30 s here
def test_train_script_reports_a_corrupt_image_from_a_worker(tmp_path: Path) -> None:
    from segkit.cli.configs import compose_config
    from segkit.cli.jobs import instantiate_user

    overrides = [
        "data=synthetic", f"data.root={tmp_path / 'data'}", "data.dataset.num_train=8",
        "data.dataset.num_val=4", "data.dataset.min_size=64", "data.dataset.max_size=64",
        "data.crop_size=64", "data.batch_size=4", "data.val_batch_size=2", "data.num_workers=1",
        "model=fcn", "backbone.width_mult=0.35", "trainer=cpu", "trainer.max_steps=2",
        "trainer.num_sanity_val_steps=0", "trainer.enable_model_summary=false",
        "callbacks.progress_bar=null", "logger=none",
        "data.check=off",  # no up-front data check: the defect must surface in the worker
    ]  # fmt: skip
    cfg = compose_config("train", [*overrides, f"paths.root_dir={tmp_path}"])
    instantiate_user(cfg.data, _convert_="all").prepare_data()  # generate the set once
    images = sorted((tmp_path / "data").glob("**/VOCdevkit/VOC2012/JPEGImages/train_*"))
    assert images
    for image in images:  # every train image: whichever the shuffle draws first is corrupt
        image.write_bytes(image.read_bytes()[:40])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *overrides,
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 1
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert "unreadable or corrupt" in line and "JPEGImages/train_" in line
    assert "Traceback" not in proc.stderr and "worker process" not in proc.stderr
