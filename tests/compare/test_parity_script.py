"""scripts/run_parity.py: the same recipe trained in bf16-mixed and in float32, evaluated in float32,
the paired interval of the difference; resumable."""

from __future__ import annotations

import json
import re
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

    # --bf16-runs: the bf16 side is those runs, only evaluated here; the fp32 side trained here
    again, out2 = tmp_path / "again", tmp_path / "again.md"
    given = ["--seeds", "1", "--root", str(again), "--out", str(out2), "--bf16-runs"]
    given += [str(root / "bf16"), "--data-root", str(tmp_path / "data"), *TINY]
    assert script.main(given) == 0
    labels = [
        json.loads(line)["step"] for line in (again / script.STEPS_LOG).read_text().splitlines()
    ]
    assert labels == ["train fp32 seed 1", "evaluate fp32 seed 1 (val, fp32)",
                      "evaluate bf16 seed 1 (val, fp32)"]  # fmt: skip
    assert not (again / "bf16" / "seed1" / "config.yaml").exists()  # not trained again
    evaluated = json.loads((again / "bf16" / "seed1" / "eval" / "metrics.json").read_text())
    assert evaluated["settings"]["ckpt_path"].startswith(str(root / "bf16" / "seed1"))
    assert json.loads(out2.with_suffix(".json").read_text())["miou_bf16"] == data["miou_bf16"]


def test_parity_report_of_an_empty_root_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "runs").mkdir()
    script = load_script("run_parity")
    assert script.main(["--report-only", "--root", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "runs holds no segkit run" in err
    assert "Traceback" not in err


def _run_folder(folder: Path, *, status: str = "finished", precision: str = "bf16-mixed",
                channels_last: bool = True, crop: int = 64) -> Path:  # fmt: skip
    folder.mkdir(parents=True)
    cfg = {
        "data": {"crop_size": crop, "dataset": {"_target_": "segkit.data.CamVid", "root": "/d"}},
        "module": {"lr": 0.01, "channels_last": channels_last},
        "trainer": {"precision": precision, "max_steps": 10, "default_root_dir": str(folder)},
        "paths": {"output_dir": str(folder)},
        "seed": 1,
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "metrics.json").write_text(json.dumps({"status": status}))
    return folder


def test_recipe_differences_ignore_numerics_and_output_places() -> None:
    script = load_script("run_parity")
    a = {"trainer": {"precision": "bf16-mixed", "max_steps": 10, "default_root_dir": "/a"},
         "module": {"channels_last": True, "lr": 0.01}, "paths": {"output_dir": "/a"},
         "logger": {"csv": {"save_dir": "/a"}}, "ckpt_path": "/a/last.ckpt"}  # fmt: skip
    b = {"trainer": {"precision": "32-true", "max_steps": 10, "default_root_dir": "/b"},
         "module": {"channels_last": False, "lr": 0.01}, "paths": {"output_dir": "/b"},
         "logger": {"csv": {"save_dir": "/b"}}, "ckpt_path": None}  # fmt: skip
    assert script.recipe_differences(a, b) == []
    b["module"]["lr"], b["trainer"]["max_steps"] = 0.02, 20
    assert script.recipe_differences(a, b) == [
        "module.lr: 0.01 vs 0.02",
        "trainer.max_steps: 10 vs 20",
    ]


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"status": "interrupted"}, "not a finished training run (metrics.json: interrupted)"),
        ({"precision": "32-true", "channels_last": False}, "needs bf16-mixed + channels_last"),
        ({"crop": 96}, "1 keys differ, e.g. data.crop_size: 96 vs 64"),
    ],
)
def test_a_given_bf16_run_must_be_the_fp32_runs_recipe(tmp_path: Path, given, words) -> None:
    script = load_script("run_parity")
    fp32 = _run_folder(tmp_path / "fp32" / "seed1", precision="32-true", channels_last=False)
    script.check_given_bf16_run(_run_folder(tmp_path / "ok" / "seed1"), fp32)  # the same recipe
    with pytest.raises(RuntimeError, match=re.escape(words)):
        script.check_given_bf16_run(_run_folder(tmp_path / "given" / "seed1", **given), fp32)
