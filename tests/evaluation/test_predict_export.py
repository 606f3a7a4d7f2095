"""predict (label PNGs + overlays, any size, failures skipped) and export (ONNX, dynamic H/W)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from segkit.data import normalize, read_image, read_mask
from segkit.tasks.checkpoints import load_segmentor
from segkit.tasks.export import export
from segkit.tasks.predict import PredictFailures, output_stems, predict


def _images(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"img{i}.{'png' if i % 2 else 'jpg'}")
    return folder


def test_predict_folder_any_size_with_an_unreadable_image(checkpoint, compose_eval, tmp_path):
    folder = _images(tmp_path / "in", [(64, 64), (50, 77), (64, 64), (90, 41)])
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image")
    out = tmp_path / "out"
    with pytest.raises(PredictFailures, match=r"1 of 5 inputs failed.*the other 4 were written"):
        predict(
            compose_eval(
                f"ckpt_path={checkpoint}", f"input={folder}", f"output={out}",
                "predict.batch_size=2", "predict.device=cpu", "predict.precision=32",
                "predict.channels_last=false", name="predict",  # exact: compared with a forward
            )
        )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["written"], summary["failed"]) == (5, 4, 1)
    assert summary["failures"][0]["path"].endswith("broken.jpg")
    assert "unreadable" in summary["failures"][0]["error"]
    model, _ = load_segmentor(checkpoint)
    for i, (h, w) in enumerate([(64, 64), (50, 77), (64, 64), (90, 41)]):
        png = Image.open(out / f"img{i}.png")
        assert png.mode == "P" and png.size == (w, h)
        assert Image.open(out / f"img{i}_overlay.jpg").size == (w, h)
        # Same-size images share an unpadded batch: labels equal a single-image forward exactly.
        if (h, w) == (64, 64):
            source = read_image(next(folder.glob(f"img{i}.*")))  # the decoder predict uses
            x = torch.from_numpy(source).permute(2, 0, 1)[None].contiguous()
            with torch.no_grad():
                expected = model(normalize(x))["out"].argmax(1)[0].numpy()
            assert np.array_equal(read_mask(out / f"img{i}.png"), expected)


def test_predict_single_file_and_empty_folder(checkpoint, compose_eval, tmp_path):
    folder = _images(tmp_path / "one", [(40, 56)])
    summary = predict(
        compose_eval(
            f"ckpt_path={checkpoint}",
            f"input={folder / 'img0.jpg'}",
            f"output={tmp_path / 'o'}",
            name="predict",
        )  # fmt: skip
    )
    assert summary["written"] == 1 and (tmp_path / "o" / "img0.png").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={empty}", name="predict"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        predict(
            compose_eval(f"ckpt_path={checkpoint}", f"input={tmp_path}/nowhere", name="predict")
        )


@pytest.mark.slow  # two fresh interpreters importing torch + Hydra: ~10 s each
def test_predict_script_exits_non_zero_when_an_input_failed(checkpoint, tmp_path):
    root = Path(__file__).resolve().parents[2]
    folder = _images(tmp_path / "in", [(64, 64)])

    def run(out: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(root / "scripts" / "predict.py"), f"ckpt_path={checkpoint}",
             f"input={folder}", f"output={tmp_path / out}", "predict.device=cpu",
             f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/h_{out}"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip

    clean = run("clean")
    assert clean.returncode == 0, clean.stderr
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    failed = run("failed")
    assert failed.returncode == 1
    assert "1 of 2 inputs failed" in failed.stderr and "Traceback" not in failed.stderr
    assert (tmp_path / "failed" / "img0.png").is_file()  # the good input was still written


@pytest.mark.parametrize("exporter", ["legacy", pytest.param("dynamo", marks=pytest.mark.slow)])
def test_export_onnx_runs_in_onnxruntime_at_two_sizes(
    checkpoint, compose_eval, tmp_path, exporter, caplog
):
    import onnxruntime as ort

    path = tmp_path / "out" / f"{exporter}.onnx"
    with caplog.at_level(logging.INFO):  # what a Hydra run shows
        summary = export(
            compose_eval(
                f"ckpt_path={checkpoint}",
                "format=onnx",
                f"output={path}",
                f"export.exporter={exporter}",
                name="export",
            )  # fmt: skip
        )
    chatty = [r for r in caplog.records if r.name.split(".")[0] in ("onnxscript", "onnx_ir")]
    assert not chatty, chatty[:3]  # no per-initializer INFO lines
    assert set(summary["max_abs_diff"]) == {"64x64", "97x130"}
    # One self-contained file, whose size is the one reported: copied alone, it loads and runs.
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert summary["size_mb"] == round(path.stat().st_size / 2**20, 3)
    copy = tmp_path / "elsewhere" / "model.onnx"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    path.unlink()
    onnx.checker.check_model(str(copy))
    # Independent of the task's own check: another batch size and size, against PyTorch.
    model, _ = load_segmentor(checkpoint)
    x = torch.randn(3, 3, 72, 45)
    with torch.no_grad():
        ref = model(x)["out"].numpy()
    got = ort.InferenceSession(str(copy), providers=["CPUExecutionProvider"]).run(
        None, {"image": x.numpy()}
    )[0]
    assert got.shape == (3, 7, 72, 45)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


def test_export_rejects_unknown_format_and_exporter(checkpoint, compose_eval):
    with pytest.raises(ValueError, match="format must be one of"):
        export(compose_eval(f"ckpt_path={checkpoint}", "format=tflite", name="export"))
    with pytest.raises(ValueError, match="export.exporter"):
        export(compose_eval(f"ckpt_path={checkpoint}", "export.exporter=jit", name="export"))


def test_inputs_sharing_a_stem_get_distinct_outputs(tmp_path):
    paths = [tmp_path / "a.jpg", tmp_path / "a.png", tmp_path / "b.jpg"]
    assert list(output_stems(paths).values()) == ["a_jpg", "a_png", "b"]
