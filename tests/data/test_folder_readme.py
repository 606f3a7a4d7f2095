"""data/README.md's own-data example, exactly as written there: its classes.yaml and its commands
(inspect_data -> train -> evaluate -> predict through the real scripts), on a tiny tree of images
and masks, checking the classes and palette in every output."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "data" / "README.md"
#: Shrink the example's training to seconds (the README's values are for a real run).
TRAIN_OVERRIDES = {
    "trainer.max_steps": "2",
    "data.crop_size": "64",
    "data.batch_size": "2",
    "data.val_batch_size": "2",
    "data.num_workers": "0",
    "backbone.width_mult": "0.35",
    "model.aspp_channels": "16",
    "model.decoder_channels": "16",
    "model.low_level_channels": "8",
    "trainer.num_sanity_val_steps": "0",
    "trainer.enable_model_summary": "false",
    "callbacks.progress_bar": "null",
    "logger": "csv",
}


def _block(marker: str) -> str:
    """The fenced code block that follows ``<!-- folder-example: marker -->`` in the README."""
    text = README.read_text()
    found = re.search(
        rf"<!-- folder-example: {re.escape(marker)} -->\s*```\w*\n(.*?)```", text, re.S
    )
    assert found, f"{README} lost its '{marker}' block"
    return found.group(1)


def _write_tree(root: Path, n: int = 6) -> None:
    """``n`` 64x64 images, each a square (class 1) and a disc (class 2) on noise, as the README
    tree: images/<stem>.jpg, masks/<stem>.png (greyscale, value = class), classes.yaml."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.integers(60, 120, (64, 64, 3), dtype=np.uint8)
        mask = np.zeros((64, 64), np.uint8)
        x, y = (int(v) for v in rng.integers(4, 30, 2))
        mask[y : y + 20, x : x + 20] = 1
        cv2.circle(mask, (48, 48), 10, 2, thickness=-1)
        image[mask == 1] = (250, 160, 0)
        image[mask == 2] = (0, 120, 250)
        cv2.imwrite(str(root / "images" / f"{chr(97 + i)}.jpg"), image[..., ::-1])
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{chr(97 + i)}.png")
    (root / "classes.yaml").write_text(_block("classes.yaml"))


def _run(line: str, cwd: Path, overrides: dict[str, str]) -> subprocess.CompletedProcess:
    words = shlex.split(line)
    assert words[0] == "python" and words[1].startswith("scripts/"), line
    args = [w for w in words[2:] if w.split("=", 1)[0] not in overrides]
    args += [f"{k}={v}" for k, v in overrides.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("SEGKIT_ROOT", None)  # paths.root_dir = the folder the command runs in
    # This checkout's package and configs, whatever is installed (the scripts run elsewhere).
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, str(ROOT / words[1]), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_the_readme_example_trains_evaluates_and_predicts(tmp_path: Path) -> None:
    classes = yaml.safe_load(_block("classes.yaml"))
    names, palette = classes["names"], [tuple(c) for c in classes["palette"]]
    _write_tree(tmp_path / "my_data")
    lines = [ln.strip() for ln in _block("commands").splitlines() if ln.strip()]
    scripts = [shlex.split(ln)[1] for ln in lines]
    assert scripts == [
        "scripts/inspect_data.py",
        "scripts/train.py",
        "scripts/evaluate.py",
        "scripts/predict.py",
    ]

    proc = _run(lines[0], tmp_path, {"inspect.json": "inspect.json", "inspect.workers": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (inspect_json,) = (tmp_path / "logs" / "inspect_data" / "runs").glob("*/inspect.json")
    summary = json.loads(inspect_json.read_text())
    assert summary["dataset"] == "folder" and summary["classes"]["names"] == names
    assert sum(summary["splits"].values()) == 6 and summary["defect_count"] == 0

    proc = _run(lines[1], tmp_path, TRAIN_OVERRIDES)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    ckpt = run / "checkpoints" / "last.ckpt"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["num_classes"] == 3 and saved["model"]["num_classes"] == 3

    def with_run(line: str) -> str:
        return line.replace("logs/train/runs/<run>", str(run.relative_to(tmp_path)))

    proc = _run(with_run(lines[2]), tmp_path, {"eval.trimap_widths": "[1]"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (metrics,) = (tmp_path / "logs" / "evaluate" / "runs").glob("*/metrics.json")
    metrics = json.loads(metrics.read_text())
    assert metrics["class_names"] == names and metrics["settings"]["dataset"] == "folder"
    assert metrics["num_images"] == 1 and np.asarray(metrics["confusion_matrix"]).shape == (3, 3)

    proc = _run(with_run(lines[3]), tmp_path, {})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "my_preds"
    predicted = json.loads((out / "summary.json").read_text())
    assert predicted["written"] == 6 and predicted["class_names"] == names
    assert [tuple(c) for c in predicted["palette"]] == palette
    label = Image.open(out / "a.png")
    assert label.mode == "P" and label.size == (64, 64)
    table = label.getpalette()
    assert [tuple(table[3 * k : 3 * k + 3]) for k in range(3)] == palette
    assert set(np.unique(np.asarray(label))) <= {0, 1, 2}
    assert (out / "a_overlay.jpg").is_file() and (out / "legend.png").is_file()
    assert ckpt.is_file()
