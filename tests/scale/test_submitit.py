"""Hydra's submitit launcher with its local backend (hydra/launcher=submitit_local): the code path
of the SLURM launcher (the same plugin, the same pickled job function, one process per job)
without a cluster. Needs the `sweep` extra, which `make test` installs (no skip)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.scale import TINY, TRAIN, quiet_env
from segkit.tasks.compare import compare


@pytest.mark.slow
def test_submitit_local_runs_each_job_in_its_own_process(scale_data: Path, tmp_path: Path) -> None:
    """3 jobs, the last with a bad value: the two others train in processes of their own, each
    with its folder, log and result; the failure is reported and the sweep exits 1."""
    cmd = [sys.executable, str(TRAIN), "-m", "hydra/launcher=submitit_local", *TINY,
           f"data.root={scale_data}", f"paths.root_dir={tmp_path}", "data.batch_size=4,2,0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=quiet_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 1, err[-3000:]  # a failed job fails the sweep, after all ran
    assert "data.batch_size=0" in err  # Hydra names the failed job's overrides ...
    assert "data: batch_size must be an integer >= 1, got 0" in err  # ... and its error
    # the default sweep folder, claimed by this process, is every job's too (each job resolves
    # the config again in its own process: it must not claim a folder of its own)
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir()) == [".submitit", "0", "1", "2", "multirun.yaml"]

    results = {}
    for result_file in sweep.glob(".submitit/*/*_result.pkl"):
        outcome, job_return = pickle.loads(result_file.read_bytes())
        assert outcome == "success"  # submitit ran the job function; Hydra's status is inside
        results[int(job_return.hydra_cfg.hydra.job.num)] = job_return
    assert sorted(results) == [0, 1, 2]
    job_ids = {str(r.hydra_cfg.hydra.job.id) for r in results.values()}
    assert len(job_ids) == 3 and str(proc.pid) not in job_ids  # one process per job, not ours
    for num in (0, 1):
        job = sweep / str(num)
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["status"] == "finished" and metrics["global_step"] == 3
        assert results[num].return_value == metrics["val/mIoU_best"]  # the job's result
        assert (job / "checkpoints" / "last.ckpt").is_file()
        job_id = str(results[num].hydra_cfg.hydra.job.id)
        assert "Job completed successfully" in (job / "train.log").read_text()
        assert (sweep / ".submitit" / job_id / f"{job_id}_0_log.out").is_file()
    failed = results[2]
    assert failed.status.name == "FAILED"
    assert not (sweep / "2" / "metrics.json").exists()
    line = "error: job #2 (" + str(sweep / "2") + "): data: batch_size must be an integer >= 1"
    assert line in (sweep / "2" / "train.log").read_text()  # in the failed job's own log

    # compare reads the folders this launcher writes (the .submitit/ pickles are no runs)
    found = compare([sweep], out_dir=tmp_path / "cmp")
    assert sorted(r.dirs["train"] for r in found.records) == [sweep / "0", sweep / "1"]
