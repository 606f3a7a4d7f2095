"""All trials of a sweep in one file: ``<sweep dir>/trials.json``, written when the multirun ends.

Hydra's Optuna sweeper writes only the best trial (``optimization_results.yaml``: ``best_params``,
``best_value``). :class:`WriteTrials` (a Hydra callback, added by ``configs/hparams_search/``) adds
every trial, failed ones included: its number, folder, swept parameters (typed, from the job's
``.hydra/overrides.yaml``), status and value of ``optimized_metric`` (from the job's
``metrics.json``), and a failed job's ``error:`` line (from its log). It reads only what the jobs
left in their folders, so it works the same whether the jobs ran in this process (the basic
launcher) or elsewhere (``hydra/launcher=submitit_local`` / ``slurm``). Light: no torch.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from segkit.runs import TRIALS_SCHEMA

log = logging.getLogger(__name__)

TRIALS_FILE = "trials.json"
SCHEMA = TRIALS_SCHEMA


def _swept_params(overrides: list[str], keys: set[str]) -> dict[str, Any]:
    """The ``key=value`` overrides of ``keys`` as typed values (Hydra's own override parser)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return {o.key_or_group: o.value() for o in parsed if o.key_or_group in keys}


def _swept_on_command_line(overrides: list[str]) -> set[str]:
    """Keys the command line sweeps (``key=choice(...)``, ``interval(...)``, ``a,b``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return {o.key_or_group for o in parsed if o.is_sweep_override()}


def _error_line(log_file: Path) -> str | None:
    """The ``error: ...`` line ReportFailures wrote into a failed job's log (None: none)."""
    if not log_file.is_file():
        return None
    for line in reversed(log_file.read_text(errors="replace").splitlines()):
        if "error: " in line:
            return line[line.index("error: ") :]
    return None


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_trial(job_dir: Path, *, metric: str, keys: set[str], log_name: str) -> dict[str, Any]:
    """One job folder of a sweep as a trial record."""
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
    record: dict[str, Any] = {
        "number": int(job_dir.name),
        "dir": str(job_dir),
        "params": _swept_params(list(overrides or []), keys),
    }
    metrics_file = job_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        record["status"] = str(metrics.get("status", "finished"))
        record["value"] = _finite(metrics.get(metric))
    else:  # the job raised before training ended (a user error, a bug)
        record["status"] = "failed"
        record["value"] = None
        record["error"] = _error_line(job_dir / f"{log_name}.log")
    return record


def collect_trials(sweep_dir: Path, *, metric: str, keys: set[str], log_name: str) -> list[dict]:
    """Every numbered job folder under ``sweep_dir``, in job order."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return [
        read_trial(p, metric=metric, keys=keys, log_name=log_name)
        for p in sorted(jobs, key=lambda p: int(p.name))
    ]


def write_atomic(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file and a rename: never half written."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class WriteTrials(Callback):
    """Hydra callback: ``<sweep dir>/trials.json`` at the end of a multirun (module docstring)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        metric = str(config.get("optimized_metric") or "")
        sweeper = config.hydra.get("sweeper") or {}
        keys = set((sweeper.get("params") or {}).keys()) | _swept_on_command_line(
            list(config.hydra.overrides.task)
        )
        trials = collect_trials(sweep_dir, metric=metric, keys=keys, log_name=config.hydra.job.name)
        result = {
            "schema": SCHEMA,
            "metric": metric,
            "direction": sweeper.get("direction"),
            "trials": trials,
        }
        write_atomic(sweep_dir / TRIALS_FILE, json.dumps(result, indent=2) + "\n")
        done = sum(t["value"] is not None for t in trials)
        log.info("%d trials (%d with a value) in %s", len(trials), done, sweep_dir / TRIALS_FILE)


__all__ = ["SCHEMA", "TRIALS_FILE", "WriteTrials", "collect_trials", "read_trial"]
