"""evaluate and predict under a real ``torchrun --nproc-per-node=2`` (gloo, 2 CPU processes) on the
tiny checkpoint: the images are shared out, each evaluated and written once, and the metrics and
per-image matrices equal the single-process run's exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segkit.data import read_mask
from segkit.tasks.evaluate import evaluate
from segkit.tasks.predict import PredictFailures, predict

ROOT = Path(__file__).resolve().parents[2]
#: Threads fixed on both sides (torchrun gives each worker one), batches of at most 2 equal-sized
#: images over the 6 mixed-size val images (all sizes differ: 6 batches, 3 per rank).
EVAL = ["eval.device=cpu", "eval.threads=1", "eval.batch_size=2", "eval.num_workers=0",
        "eval.trimap_widths=[1,4]", "eval.num_overlays=2"]  # fmt: skip
PREDICT = ["predict.device=cpu", "predict.threads=1", "predict.batch_size=2"]
#: Keys that differ by nature between a 1- and a 2-process run.
RUN_KEYS = {"time_s", "images_per_s", "world_size"}


def _torchrun(script: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(ROOT / "scripts" / f"{script}.py"), *overrides]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.slow  # two fresh interpreters importing torch + Hydra, twice
def test_torchrun_evaluate_equals_one_process(checkpoint, compose_eval, tmp_path):
    single = evaluate(compose_eval(f"ckpt_path={checkpoint}", *EVAL))
    run = tmp_path / "torchrun"
    proc = _torchrun("evaluate", f"ckpt_path={checkpoint}", *EVAL, f"paths.root_dir={tmp_path}",
                     f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    multi = json.loads((run / "metrics.json").read_text())
    assert multi["settings"]["world_size"] == 2 and single["settings"]["world_size"] == 1
    assert multi["num_images"] == single["num_images"] == 6
    for doc in (single, multi):
        for key in RUN_KEYS:
            doc["settings"].pop(key)
    assert multi == single  # every metric, every matrix, the best/worst lists: exactly
    one, two = (
        _npz(tmp_path / "run" / "per_image_confusion.npz"),
        _npz(run / "per_image_confusion.npz"),
    )
    assert one.keys() == two.keys()
    for key in one:
        nan = one[key].dtype.kind == "f"  # bf arrays: NaN where a class is absent
        assert np.array_equal(one[key], two[key], equal_nan=nan), key
    assert two["ids"].tolist() == sorted(two["ids"].tolist())  # split-list order
    assert (run / "overlays.png").is_file() and not list(run.glob("*.tmp*"))
    # rank 0 printed the table once; rank 1 wrote and printed nothing of its own
    assert proc.stdout.count("per-class scores") == 1


@pytest.mark.slow
def test_torchrun_predict_writes_each_image_once(checkpoint, compose_eval, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    sizes = [(64, 64), (48, 80), (64, 64), (72, 40), (64, 64)]
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")  # one rank fails it; rank 0 reports it
    one = tmp_path / "one"
    with pytest.raises(PredictFailures):
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={folder}", f"output={one}",
                             *PREDICT, name="predict"))  # fmt: skip
    two = tmp_path / "two"
    proc = _torchrun("predict", f"ckpt_path={checkpoint}", f"input={folder}", f"output={two}",
                     *PREDICT, f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'h'}",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]  # a failed input: non-zero, as in one process
    summary = json.loads((two / "summary.json").read_text())
    # 5 written in all over both ranks, 5 distinct files: each image written exactly once
    assert (summary["images"], summary["written"], summary["failed"]) == (6, 5, 1)
    assert summary["failures"][0]["path"].endswith("broken.jpg")
    assert sorted(p.name for p in two.glob("*.png") if p.name != "legend.png") == [
        f"im{i}.png" for i in range(5)
    ]
    for i in range(5):
        assert np.array_equal(read_mask(two / f"im{i}.png"), read_mask(one / f"im{i}.png"))
    assert proc.stdout.count("predict: 5 written, 1 failed") == 1
