"""Learning curves from a run's Lightning CSV log, and where the val curve flattened."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from segkit.compare.curves import plateau, read_curve, write_curve


def _lightning_csv(path: Path, rows: list[dict]) -> Path:
    """A metrics.csv as Lightning's CSVLogger writes it: one row per logging call, sparse."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = ["epoch", "step", "train/loss", "val/loss", "val/mIoU", "val/pixel_acc"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in keys})
    return path


ROWS = [
    {"epoch": 0, "step": 49, "train/loss": 2.0},
    {"epoch": 0, "step": 99, "train/loss": 1.5},
    {"epoch": 0, "step": 99, "val/mIoU": 0.20, "val/loss": 1.4},
    {"epoch": 1, "step": 149, "train/loss": "nan"},
    {"epoch": 1, "step": 199, "train/loss": 1.0},
    {"epoch": 1, "step": 199, "val/mIoU": 0.40},
    {"epoch": 2, "step": 299, "val/mIoU": 0.405},
    {"epoch": 3, "step": 399, "val/mIoU": 0.402},
]


def test_read_curve_takes_the_sparse_rows_and_skips_non_finite(tmp_path):
    curve = read_curve(_lightning_csv(tmp_path / "csv" / "metrics.csv", ROWS))
    assert curve.loss == [(49, 2.0), (99, 1.5), (199, 1.0)]
    assert curve.val == [(99, 0.20), (199, 0.40), (299, 0.405), (399, 0.402)]


def test_plateau_is_the_first_step_no_later_validation_beats_by_the_tolerance():
    val = [(99, 0.20), (199, 0.40), (299, 0.405), (399, 0.402)]
    flat = plateau(val)
    assert flat.step == 199 and flat.last_step == 399 and flat.best == 0.405
    assert "flat from step 199" in flat.describe()
    climbing = plateau([(100, 0.1), (200, 0.2), (300, 0.3)])
    assert climbing.step is None and "still climbing at step 300" in climbing.describe()
    assert plateau([(100, 0.1)]) is None  # one validation says nothing about flattening
    # the last validation alone never counts: a late gain keeps the curve "climbing"
    assert plateau([(100, 0.1), (200, 0.1), (300, 0.5)]).step is None


def test_write_curve_writes_the_table_and_the_picture(tmp_path):
    _lightning_csv(tmp_path / "csv" / "metrics.csv", ROWS)
    table, picture = write_curve(tmp_path)
    with open(table, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["step", "train_loss", "val_mIoU"]
    assert rows[1:3] == [["49", "2", ""], ["99", "1.5", "0.2"]]
    with Image.open(picture) as png:
        assert png.format == "PNG" and png.width > 300


def test_no_csv_log_no_curve(tmp_path):
    assert write_curve(tmp_path) is None
