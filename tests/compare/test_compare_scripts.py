"""segkit-compare (scripts/compare.py) and scripts/run_comparison.py as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

import segkit.cli.fill as fill
from helpers.compare import TINY, load_script
from segkit.cli.entry import run_compare


def test_compare_script_user_error_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_:
        run_compare([str(tmp_path / "empty")])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "empty holds no segkit run" in err
    assert "Traceback" not in err


def test_run_comparison_reuse_needs_its_record(tmp_path: Path, capsys) -> None:
    (tmp_path / "runs").mkdir()  # a run root not written by run_comparison.py
    with pytest.raises(SystemExit):
        load_script("run_comparison").main(["--reuse", str(tmp_path / "runs")])
    assert "comparison_run.json not found" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(1500)  # 2 designs x 2 seeds, each trained, evaluated and analysed
def test_run_comparison_end_to_end_and_reuse(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fill, "LATENCY_RUNS", 1)  # the figure is not under test
    monkeypatch.chdir(tmp_path)  # synthetic data is generated under ./data
    doc, assets, runs = tmp_path / "doc" / "comparison.md", tmp_path / "doc" / "cmp", tmp_path / "r"
    args = ["--doc", str(doc), "--assets", str(assets)]
    script = load_script("run_comparison")
    designs = ["--fast", "--seeds", "1", "2", "--designs", "fcn8s_os32", "deeplabv3plus_os16"]
    script.main([*args, *designs, "--out-root", str(runs), *TINY])
    text = doc.read_text()
    for part in ("## How this was produced", "## Results", "## What it shows", "cannot show"):
        assert part in text
    assert "--seeds 1 2 --designs fcn8s_os32 deeplabv3plus_os16" in text  # the exact command
    assert "**FCN vs DeepLabv3+**" in text and "OS 16->8" in text  # the extra OS 8 evaluation
    assert "| 1, 2 |" in text and "95 % CI [" in text  # two seeds a row; intervals
    for design in ("fcn8s_os32", "deeplabv3plus_os16"):
        for seed in (1, 2):
            assert (runs / design / f"seed{seed}" / "metrics.json").is_file()
    assert (
        runs / "deeplabv3plus_os16" / "seed2" / "eval_os8" / "per_image_confusion.npz"
    ).is_file()
    # the wording rule on real output: a direction only next to an interval that excludes 0
    for line in text.split("## What it shows")[1].splitlines():
        for word in (" higher (Δ", " lower (Δ"):
            for claim in line.split(word)[1:]:
                low, high = (float(x) for x in claim.split("CI [")[1].split("]")[0].split(", "))
                assert low > 0 or high < 0, line
    for link in ("cmp/trimap.png", "cmp/erf.jpg", "cmp/miou_vs_macs.png", "cmp/cost.png"):
        assert f"]({link})" in text and (doc.parent / link).is_file()
    assert "### Missing pieces" not in text  # every row trained, evaluated and analysed
    script.main([*args, "--reuse", str(runs)])
    assert doc.read_text() == text  # regenerated from the same runs: same document
