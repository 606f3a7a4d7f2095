"""An Optuna search through the real sweeper (hparams_search=voc_optuna) over tiny trainings: the
study optimises the metric the config names, and the sweep folder holds the best trial
(optimization_results.yaml) and every trial (trials.json); compare reads the trials' folders. Needs the `sweep` extra, which `make test` installs: no skip,
so a CI without it fails instead of passing by skipping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from segkit.tasks.compare import compare

N_TRIALS = 3


@pytest.mark.slow
def test_optuna_search_optimises_the_configured_metric(run_train, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    # val/loss minimised, not the config's val/mIoU_best maximised: the study must follow the
    # configured metric and direction (and a loss differs between learning rates after 3 steps,
    # where a tiny model's mIoU may not)
    proc = run_train(
        "-m", "hparams_search=voc_optuna", "optimized_metric=val/loss",
        "hydra.sweeper.direction=minimize",
        f"hydra.sweeper.n_trials={N_TRIALS}", f"hydra.sweeper.sampler.n_startup_trials={N_TRIALS}",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    trials = json.loads((sweep / "trials.json").read_text())
    assert trials["schema"] == "segkit.trials/1"
    assert (trials["metric"], trials["direction"]) == ("val/loss", "minimize")
    assert [t["number"] for t in trials["trials"]] == list(range(N_TRIALS))
    lrs = []
    for trial in trials["trials"]:
        job = Path(trial["dir"])
        assert job == sweep / str(trial["number"])
        metrics = json.loads((job / "metrics.json").read_text())
        assert trial["status"] == metrics["status"] == "finished"
        assert trial["value"] == metrics["val/loss"]  # what train() returned to the study
        lr = trial["params"]["module.lr"]
        assert 0.001 <= lr <= 0.03  # sampled from the configured interval
        # ... and trained with: the value reached the run's config and its checkpoint
        assert OmegaConf.load(job / "config.yaml").module.lr == lr
        assert (job / "checkpoints" / "last.ckpt").is_file() and (job / "train.log").is_file()
        lrs.append(lr)
    assert len(set(lrs)) == N_TRIALS  # three different points, not one run three times

    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    values = [t["value"] for t in trials["trials"]]
    assert len(set(values)) == N_TRIALS  # else "the best" would not tell the trials apart
    winner = trials["trials"][values.index(min(values))]
    assert best["best_value"] == pytest.approx(min(values))
    assert best["best_params"] == winner["params"]

    # compare reads the trials' folders (the sweep-level files are not mistaken for runs)
    found = compare([sweep], out_dir=tmp_path / "cmp")
    assert sorted(r.dirs["train"] for r in found.records) == [
        sweep / str(n) for n in range(N_TRIALS)
    ]
    for record in found.records:
        metrics = json.loads((record.dirs["train"] / "metrics.json").read_text())
        assert record.miou == pytest.approx(metrics["val/mIoU_best"])
