"""scripts/run_parity.py: the same recipe trained in bf16-mixed and in float32, evaluated in float32,
the paired interval of the difference; resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from helpers.compare import TINY
from helpers.compare_loader import load_script


@pytest.mark.slow
@pytest.mark.timeout(900)  # 2 trainings + 2 evaluations, each its own process
def test_parity_trains_both_numerics_reports_and_resumes(tmp_path: Path, capsys) -> None:
    script = load_script("run_parity")
    root, out = tmp_path / "runs", tmp_path / "parity.md"
    args = ["--seeds", "1", "--root", str(root), "--out", str(out)]
    args += ["--data-root", str(tmp_path / "data"), *TINY]
    assert script.main(args) == 0

    for name, precision, channels_last in (
        ("bf16", "bf16-mixed", True),
        ("fp32", "32-true", False),
    ):
        run = root / name / "seed1"
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["trainer"]["precision"] == precision
        assert cfg["module"]["channels_last"] is channels_last
        assert cfg["seed"] == 1
        evaluated = yaml.safe_load((run / "eval" / "config.yaml").read_text())["eval"]
        assert evaluated["precision"] == 32 or str(evaluated["precision"]) == "32"
        assert evaluated["channels_last"] is False
        assert json.loads((run / "eval" / "metrics.json").read_text())["num_images"] == 4
    ckpt = torch.load(root / "fp32" / "seed1" / "checkpoints" / "best.ckpt", weights_only=False)
    assert all(v.dtype != torch.bfloat16 for v in ckpt["state_dict"].values())

    data = json.loads(out.with_suffix(".json").read_text())
    assert data["seeds"] == [1] and len(data["miou_fp32"]) == len(data["miou_bf16"]) == 1
    delta = data["miou_bf16"][0] - data["miou_fp32"][0]
    assert data["difference"]["delta"] == pytest.approx(delta, abs=1e-9)
    assert data["difference"]["low"] <= data["difference"]["delta"] <= data["difference"]["high"]
    text = out.read_text()
    assert "| 1 |" in text and "one seed per side" in text  # one seed: no verdict claimed
    assert "images resampled one by one" in text  # synthetic images are independent

    # a second call finds every step done: no new step in the log, the same report
    steps = (root / script.STEPS_LOG).read_text().splitlines()
    assert len(steps) == 4
    capsys.readouterr()
    assert script.main(args) == 0
    assert (root / script.STEPS_LOG).read_text().splitlines() == steps


def test_parity_report_of_an_empty_root_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "runs").mkdir()
    script = load_script("run_parity")
    assert script.main(["--report-only", "--root", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "runs holds no segkit run" in err
    assert "Traceback" not in err
