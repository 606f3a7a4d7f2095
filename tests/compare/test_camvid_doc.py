"""scripts/camvid_doc.py on synthetic CamVid run roots (tests/compare/camvid_runs.py): the numbers
equal the metrics files, block intervals are wider than frame-level ones on correlated frames,
SegNet's published rows, the wording rule, and partial or empty roots reported as such."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.camvid_runs import write_run, write_train
from helpers.compare_loader import load_script


@pytest.fixture(scope="module")
def partial(tmp_path_factory) -> tuple[Path, str, dict]:
    """FCN-8s and DeepLabv3+ (also at OS 8) with two seeds, FCN-32s with one, DeepLabv3 trained
    but not evaluated; nothing else of the plan."""
    root = tmp_path_factory.mktemp("camvid") / "runs"
    root.mkdir()
    metrics = {}
    for seed in (1, 2):
        metrics["fcn8s", seed] = write_run(root, "fcn8s", seed)[None]
        both = write_run(root, "deeplabv3plus", seed, strides=(None, 8))
        metrics["deeplabv3plus", seed], metrics["os8", seed] = both[None], both[8]
    metrics["fcn32s", 1] = write_run(root, "fcn32s", 1)[None]
    write_train(root, "deeplabv3", 1)
    doc = root.parent / "docs" / "camvid.md"
    load_script("camvid_doc").write_camvid_doc(root, doc=doc, assets=doc.parent / "camvid")
    return doc, doc.read_text(), metrics


def _row(text: str, start: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {start}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_headline_numbers_are_the_metrics_files(partial) -> None:
    _, text, metrics = partial
    for design, label in (("fcn8s", "FCN-8s"), ("deeplabv3plus", "DeepLabv3+")):
        label += " / mobilenetv2, OS " + ("32 |" if design == "fcn8s" else "16 |")
        row = _row(text, label)
        for key, column in (("pixel_acc", 3), ("mean_class_acc", 4), ("mIoU", 5), ("BF", 6)):
            values = [100 * metrics[design, s][key] for s in (1, 2)]
            assert row[column] == f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}", key
        assert row[2] == "1, 2" and row[12] == "360×480"  # [H, W] input size of the analysis
        assert row[11] == "101 (least disturbed of 2)"  # latency 101 / 102 ms: the smaller
    fcn32 = _row(text, "FCN-32s / mobilenetv2, OS 32 |")
    assert fcn32[5] == f"{100 * metrics['fcn32s', 1]['mIoU']:.1f} (n=1)"
    assert "| 360×480 |" in text  # the library's cost table reads the [H, W] size too


def test_train_wall_is_marked_with_the_machines_load(partial) -> None:
    """The moonshot's time is for a quiet machine: a run trained beside other work says so."""
    _, text, _ = partial
    quiet, shared = (
        next(ln for ln in text.splitlines() if ln.startswith(f"- FCN-8s seed {seed}:"))
        for seed in (1, 2)
    )
    assert "training 30 min wall (within 60 min)." in quiet  # 15-min load 1.0 at its end
    assert (
        "training 60 min wall (within 60 min; on a shared machine, 15-min load up to 4.0" in shared
    )
    row = _row(text, "FCN-8s | 2 |")
    assert row[3:5] == ["60", "4.0"]


def test_a_curve_that_lost_its_beginning_says_so(tmp_path: Path) -> None:
    """Runs resumed under Lightning's own CSV logger kept only the rows after the resume."""
    root = tmp_path / "runs"
    root.mkdir()
    write_run(root, "fcn8s", 1)
    write_run(root, "fcn8s", 2)
    log = root / "fcn8s" / "seed1" / "csv" / "metrics.csv"
    lines = log.read_text().splitlines()
    log.write_text(
        "\n".join([lines[0], *(ln for ln in lines[1:] if int(ln.split(",")[0]) >= 1749)])
    )
    doc = tmp_path / "camvid.md"
    load_script("camvid_doc").write_camvid_doc(root, doc=doc, assets=tmp_path / "a")
    row = _row(doc.read_text(), "FCN-8s | 1 |")
    assert "flat from step 1499 of 2499" not in row[5]  # the lost points cannot be judged
    assert "(its log starts at step 1749: Lightning's CSV logger dropped the rows" in row[5]
    assert _row(doc.read_text(), "FCN-8s | 2 |")[5] == "flat from step 1499 of 2499"  # whole log


def test_segnet_rows_are_beside(partial) -> None:
    _, text, _ = partial
    segnet = _row(text, "SegNet-Basic (published")
    assert segnet[3:7] == ["82.7", "62.0", "47.7", "35.78"]
    fcn = _row(text, "FCN-Basic (published")
    assert fcn[3:7] == ["81.7", "62.4", "47.3", "38.11"]
    assert "GPU, same split and resolution, from scratch on the 367 train frames" in text


def test_block_interval_is_wider_than_the_frame_level_one(partial) -> None:
    _, text, _ = partial
    table = text.split("### Block vs frame-level intervals")[1].split("##")[0]
    ratios = [
        float(line.rsplit("|", 2)[1].strip().rstrip("×"))
        for line in table.splitlines()
        if line.startswith("| ") and ("| mIoU |" in line or "| BF |" in line)
    ]
    assert len(ratios) == 5  # mIoU: skips, FCN-8s vs DeepLabv3+, OS 16 -> 8; BF: the first two
    assert all(r >= 1.0 for r in ratios) and max(ratios) > 1.3
    assert "blocks of **" in text and "(0001TP: 30 frames, Seq05VD: 50 frames)" in text


def test_findings_follow_the_wording_rule(partial) -> None:
    _, text, _ = partial
    shows = text.split("## What it shows")[1].split("### Block")[0]
    assert "**FCN skips: FCN-8s vs FCN-32s**" in shows
    skips = next(ln for ln in shows.splitlines() if "FCN skips" in ln)
    assert "one seed, so seed-to-seed variation is unmeasured and no direction" in skips
    assert "BF " in next(ln for ln in shows.splitlines() if "**DeepLabv3+ vs FCN-8s**" in ln)
    for line in shows.splitlines():
        for word in (" higher (Δ", " lower (Δ"):
            for claim in line.split(word)[1:]:
                low, high = (float(x) for x in claim.split("CI [")[1].split("]")[0].split(", "))
                assert low > 0 or high < 0, line


def test_partial_root_is_reported(partial) -> None:
    doc, text, _ = partial
    assert "**Partial results**" in text and "DeepLabv3 (OS 16) seed 1" in text
    assert "| DeepLabv3 (OS 16) | 1 | trained (evaluation/analysis missing) |" in text
    assert "| FCN-8s | 3 | new |" in text
    decoder = next(ln for ln in text.splitlines() if "**The decoder" in ln)
    assert "not measured yet" in decoder
    aspp = next(ln for ln in text.splitlines() if "**ASPP vs no context" in ln)
    assert "extra run" in aspp
    assert "- **FCN-8s**: seed 1: flat from step 1499" in text  # learning curves
    assert (doc.parent / "camvid" / "learning_curves.png").is_file()
    assert "FCN-8s seed 1: test mIoU" in text and "points short of 50 %" in text  # moonshot


def test_empty_root(tmp_path: Path) -> None:
    doc = tmp_path / "camvid.md"
    load_script("camvid_doc").write_camvid_doc(tmp_path / "runs", doc=doc, assets=tmp_path / "a")
    text = doc.read_text()
    assert (
        "No step has run yet" in text and "No run has been evaluated on the test split yet" in text
    )
    assert "| DeepLabv3+ (OS 16) | 1 | new |" in text


@pytest.mark.slow  # torch, the evaluate task's writers and a Hydra compose
def test_fixture_files_have_the_writers_keys(tmp_path: Path) -> None:
    import torch
    import yaml

    from helpers.camvid_runs import CLASSES, per_image_confusion
    from segkit.cli.configs import compose_config
    from segkit.evaluation.evaluator import EvalResult
    from segkit.evaluation.report import metrics_dict
    from segkit.tasks.evaluate import write_image_confusion

    ours = write_run(tmp_path, "fcn8s", 1)[None]
    per_image = torch.as_tensor(per_image_confusion(np.full(2, 0.5)))
    result = EvalResult(
        confusion=per_image.sum(0),
        trimap={2: per_image.sum(0)},
        image_ids=["a", "b"],
        image_miou=[0.5, 0.5],
        num_images=2,
        image_confusion=per_image,
        image_trimap=per_image[:, None],
        image_bf=torch.full((2, len(CLASSES)), 0.5, dtype=torch.float64),
    )
    assert set(metrics_dict(result, CLASSES, ours["settings"])) == set(ours)
    write_image_confusion(result, tmp_path / "real.npz")
    fake = tmp_path / "fcn8s" / "seed1" / "eval_os32" / "per_image_confusion.npz"
    with np.load(tmp_path / "real.npz") as real, np.load(fake) as written:
        assert set(real.files) == set(written.files)
    cfg = compose_config("train", ["experiment=camvid/fcn8s"])
    written_cfg = yaml.safe_load((tmp_path / "fcn8s" / "seed1" / "config.yaml").read_text())
    for section in ("model", "backbone", "data", "trainer", "module"):
        assert set(written_cfg[section]) <= set(cfg[section]), section
    assert cfg.model._target_ == written_cfg["model"]["_target_"]
