"""Lightning's CSV logger, continued across a resume.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when its folder is not empty, so a run pre-empted
and resumed keeps only the rows logged after the resume: its learning curve (``learning_curve.csv``
/ ``.png``, the plateau rule, ``docs/camvid.md``) loses everything before it. This logger keeps
them: the rows already in the file whose step comes before the first step this process logs are
written back first, the rows at or after it (steps trained after the checkpoint by a process that
was killed before the next one, which the resume trains again) are dropped, and logging goes on
in the same file. A new run in an empty folder is Lightning's logger unchanged.
"""

from __future__ import annotations

import csv
from typing import Any

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class ContinuingCSVLogger(CSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` (same arguments) whose ``metrics.csv`` survives a
    resume (see the module docstring)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment


class _ContinuingWriter(ExperimentWriter):
    _earlier: list[dict[str, Any]] | None = None

    def _check_log_dir_exists(self) -> None:
        # Lightning's deletes metrics.csv here; read it instead, merged at the first save.
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self._earlier = list(csv.DictReader(file))

    def save(self) -> None:
        if self._earlier is not None and self.metrics:
            first = min(int(m["step"]) for m in self.metrics)
            kept = [row for row in self._earlier if _step(row) < first]
            self._earlier = None
            if not kept:  # a new run over an old log, or nothing logged before the resume
                self._fs.rm_file(self.metrics_file_path)
                super().save()
                return
            keys = sorted({k for row in kept for k, v in row.items() if v not in ("", None)})
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=keys, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)
            self.metrics_keys = keys  # Lightning's save extends the header and appends
        super().save()


def _step(row: dict[str, Any]) -> float:
    try:
        return float(row.get("step") or "inf")
    except ValueError:  # not a step: dropped with the rows after the resume
        return float("inf")
