"""segkit.training.ContinuingCSVLogger: a resumed run's metrics.csv keeps the rows before the
resume (Lightning's CSVLogger deletes them) and drops the ones a killed process logged after its
last checkpoint (the resume trains those steps again)."""

from __future__ import annotations

import csv
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger

from segkit.training import ContinuingCSVLogger


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _earlier_run(folder: Path) -> Path:
    """The log of a process killed after step 9 whose last checkpoint was at step 6."""
    logger = CSVLogger(folder, name="csv", version="")
    for step in range(10):
        logger.log_metrics({"train/loss": float(10 - step)}, step=step)
    logger.log_metrics({"val/mIoU": 0.25}, step=4)
    logger.save()
    return Path(logger.log_dir) / "metrics.csv"


def test_a_resume_continues_the_file(tmp_path: Path) -> None:
    path = _earlier_run(tmp_path)
    logger = ContinuingCSVLogger(tmp_path, name="csv", version="")
    for step in (6, 7):  # the resume trains steps 6.. again, with other numbers
        logger.log_metrics({"train/loss": 0.5, "train/img_s": 3.0}, step=step)
    logger.log_metrics({"val/mIoU": 0.5}, step=7)
    logger.save()
    logger.log_metrics({"train/loss": 0.25}, step=8)
    logger.finalize("success")
    rows = _rows(path)
    losses = [(int(r["step"]), float(r["train/loss"])) for r in rows if r["train/loss"]]
    assert losses == [(s, float(10 - s)) for s in range(6)] + [(6, 0.5), (7, 0.5), (8, 0.25)]
    vals = [(int(r["step"]), float(r["val/mIoU"])) for r in rows if r["val/mIoU"]]
    assert vals == [(4, 0.25), (7, 0.5)]
    assert [r["train/img_s"] for r in rows if r["step"] == "6" and r["train/loss"]] == ["3.0"]


def test_lightnings_logger_would_have_lost_them(tmp_path: Path) -> None:
    """The defect this logger exists for (if Lightning fixes it, this logger can go)."""
    path = _earlier_run(tmp_path)
    logger = CSVLogger(tmp_path, name="csv", version="")
    logger.log_metrics({"train/loss": 0.5}, step=6)
    logger.save()
    assert [r["step"] for r in _rows(path)] == ["6"]


def test_a_new_run_over_an_old_log_starts_afresh(tmp_path: Path) -> None:
    path = _earlier_run(tmp_path)
    logger = ContinuingCSVLogger(tmp_path, name="csv", version="")
    logger.log_metrics({"train/loss": 2.0}, step=0)
    logger.save()
    assert [(r["step"], r["train/loss"]) for r in _rows(path)] == [("0", "2.0")]


def test_an_empty_folder_is_lightnings_logger(tmp_path: Path) -> None:
    logger = ContinuingCSVLogger(tmp_path, name="csv", version="")
    logger.log_metrics({"train/loss": 1.0}, step=0)
    logger.save()
    assert _rows(Path(logger.log_dir) / "metrics.csv") == [{"step": "0", "train/loss": "1.0"}]
