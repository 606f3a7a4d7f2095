"""configs/hydra/launcher/slurm.yaml, composed with realistic values and run through the real
submitit SLURM launcher up to ``sbatch``: a stand-in ``sbatch`` on PATH keeps the script it is given
and refuses the submission, so nothing waits for a cluster. The script must ask for what the config
and the command line say (partition, nodes, GPUs and tasks per node, time, array parallelism, the
pre-emption signal), and the pickled jobs must hold the sweep's overrides."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

import segkit.cli  # noqa: F401  (registers the unique_dir resolver the configs use)
from helpers.scale import ROOT

FAKE_SBATCH = """#!/bin/sh
cp "$1" "{capture}"
echo "sbatch: error: this is a test, no cluster" >&2
exit 1
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_slurm_launcher_writes_the_sbatch_script_asked_for(tmp_path: Path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    capture = tmp_path / "job.sbatch"
    _executable(bin_dir / "sbatch", FAKE_SBATCH.format(capture=capture))
    _executable(bin_dir / "srun", "#!/bin/sh\nexit 0\n")  # submitit looks for srun on PATH
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    sweep = tmp_path / "sweep"
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                "hydra.launcher.timeout_min=720", "hydra.launcher.array_parallelism=1",
                "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                f"hydra.sweep.dir={sweep}", f"paths.root_dir={tmp_path}",
            ],
            return_hydra_config=True,
        )  # fmt: skip
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params.pop("_target_").endswith("SlurmLauncher")
    launcher = SlurmLauncher(**params)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    with pytest.raises(Exception, match="sbatch"):
        launcher.launch([["model.output_stride=8"], ["model.output_stride=16"]], 0)

    lines = set(capture.read_text().splitlines())
    for flag in ("--partition=gpu", "--nodes=2", "--gpus-per-node=4", "--ntasks-per-node=4",
                 "--cpus-per-task=8", "--mem=120GB", "--time=720", "--array=0-1%1",
                 "--signal=USR2@120"):  # fmt: skip
        assert f"#SBATCH {flag}" in lines, flag
    assert "#SBATCH --requeue" not in lines  # a requeued job would start over (see the config)
    assert any(f"--output {sweep}/.submitit/%A_%a/" in line for line in lines)
    # the jobs' pickles wait in the submitit folder, one per sweep point
    assert len(list((sweep / ".submitit").rglob("*.pkl"))) == 2
