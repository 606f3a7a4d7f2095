"""segkit.cli.trials on a sweep folder laid out by hand: what trials.json says of a finished, an
interrupted and a failed job (no training: the end-to-end run is tests/scale/test_optuna.py)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from segkit.cli.trials import TRIALS_FILE, WriteTrials


def _job(sweep: Path, num: int, overrides: list[str], metrics: dict | None, log: str = "") -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    (job / "train.log").write_text(log)


def test_write_trials_reads_every_job_folder(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _job(sweep, 0, ["module.lr=0.01", "seed=3", "data=synthetic"],
         {"status": "finished", "val/loss": 1.5})  # fmt: skip
    _job(sweep, 1, ["module.lr=0.002", "seed=4", "data=synthetic"],
         {"status": "interrupted", "val/loss": float("nan")})  # fmt: skip
    line = "error: job #2 (x): module.lr must be > 0"
    _job(sweep, 2, ["module.lr=-1.0", "seed=5", "data=synthetic"], None,
         log=f"[2026-12-02 06:00:00,000][segkit.cli.launch][ERROR] - {line}\n")  # fmt: skip
    (sweep / ".submitit").mkdir()  # not a job folder
    cfg = OmegaConf.create({
        "optimized_metric": "val/loss",
        "hydra": {"sweep": {"dir": str(sweep)}, "job": {"name": "train"},
                  "overrides": {"task": ["data=synthetic", "seed=choice(3,4,5)"]},
                  "sweeper": {"direction": "minimize",
                              "params": {"module.lr": "interval(0.001, 0.1)"}}},
    })  # fmt: skip
    WriteTrials().on_multirun_end(config=cfg)
    result = json.loads((sweep / TRIALS_FILE).read_text())
    assert (result["schema"], result["metric"], result["direction"]) == (
        "segkit.trials/1", "val/loss", "minimize")  # fmt: skip
    trials = result["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2]
    # the swept keys (config and command line), typed; the fixed data=synthetic is not a param
    assert trials[0]["params"] == {"module.lr": 0.01, "seed": 3}
    assert (trials[0]["status"], trials[0]["value"]) == ("finished", 1.5)
    assert (trials[1]["status"], trials[1]["value"]) == ("interrupted", None)  # NaN -> null
    assert (trials[2]["status"], trials[2]["value"], trials[2]["error"]) == ("failed", None, line)
    assert not list(sweep.glob(".trials.json.tmp"))  # written through a rename
