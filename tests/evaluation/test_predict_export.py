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

from segkit.data import read_image, read_mask
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


def test_predict_folder_any_size_with_an_unreadable_image(
    checkpoint, compose_eval, tmp_path, capsys
):
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
    assert "predicting: 4/4 img in " in capsys.readouterr().err  # progress, one line in a log
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
                expected = model(x)["out"].argmax(1)[0].numpy()
            assert np.array_equal(read_mask(out / f"img{i}.png"), expected)


def test_predict_batches_equal_sizes_as_decoded_even_with_exif_turns(
    checkpoint, compose_eval, tmp_path
):
    # img1 is stored 40x56 like img0 but carries an EXIF quarter turn: decoded it is 56x40, like
    # img2. Batches follow the decoded sizes, and every label map equals a batch-1 forward.
    folder = _images(tmp_path / "in", [(40, 56), (40, 56), (56, 40), (48, 48)])
    turned = folder / "img1.png"
    with Image.open(turned) as im:
        exif = im.getexif()
        exif[0x0112] = 6
        im.save(turned, exif=exif.tobytes())
    out = tmp_path / "out"
    predict(
        compose_eval(
            f"ckpt_path={checkpoint}", f"input={folder}", f"output={out}",
            "predict.batch_size=4", "predict.device=cpu", name="predict",
        )
    )  # fmt: skip
    model, _ = load_segmentor(checkpoint)
    for path in sorted(folder.iterdir()):
        source = read_image(path)
        x = torch.from_numpy(source).permute(2, 0, 1)[None].contiguous()
        with torch.no_grad():
            expected = model(x)["out"].argmax(1)[0].numpy()
        assert np.array_equal(read_mask(out / f"{path.stem}.png"), expected), path.name


def test_predict_skips_an_undecodable_image_and_one_whose_header_lies(
    checkpoint, compose_eval, tmp_path, monkeypatch
):
    # img2.jpg keeps its header but loses half its body: it fails inside the loader, in the batch
    # it shares with img0. img1.png's header is made to lie about its size: it decodes to another.
    import segkit.tasks.predict as task

    folder = _images(tmp_path / "in", [(40, 56), (40, 56), (40, 56)])
    whole = (folder / "img2.jpg").read_bytes()
    (folder / "img2.jpg").write_bytes(whole[: len(whole) // 2])
    real = task.read_image_size
    monkeypatch.setattr(
        task, "read_image_size", lambda p: (56, 40) if Path(p).name == "img1.png" else real(p)
    )
    out = tmp_path / "out"
    with pytest.raises(PredictFailures, match=r"2 of 3 inputs failed.*the other 1 were written"):
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={folder}", f"output={out}",
                             "predict.batch_size=4", "predict.device=cpu", "predict.precision=32",
                             "predict.channels_last=false", name="predict"))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    errors = {Path(f["path"]).name: f["error"] for f in summary["failures"]}
    assert errors == {
        "img1.png": "image decoded as 40x56 px where its header gives 56x40",
        "img2.jpg": "unreadable or corrupt image",
    }
    assert sorted(p.name for p in out.glob("img*")) == ["img0.png", "img0_overlay.jpg"]
    model, _ = load_segmentor(checkpoint)
    x = torch.from_numpy(read_image(folder / "img0.jpg")).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        expected = model(x)["out"].argmax(1)[0].numpy()
    assert np.array_equal(read_mask(out / "img0.png"), expected)  # its batch-mate failed: exact


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
    x = torch.randint(0, 256, (3, 3, 72, 45), dtype=torch.uint8)
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


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("where", ["same", "parent"])
def test_predict_refuses_an_output_folder_that_is_or_holds_the_input(
    checkpoint, compose_eval, tmp_path, where
):
    """The issue: output=input replaced coffee.png (the photo) with its label map, exit 0."""
    folder = _images(tmp_path / "photos", [(40, 40), (40, 40)])  # img0.jpg, img1.png
    before = _snapshot(folder)
    out = folder if where == "same" else tmp_path
    with pytest.raises(ValueError, match=r"output=.* (is|contains) the input folder"):
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={folder}", f"output={out}",
                             "predict.device=cpu", name="predict"))  # fmt: skip
    assert _snapshot(folder) == before  # nothing written, nothing replaced


def test_predict_never_overwrites_a_file_it_did_not_write(checkpoint, compose_eval, tmp_path):
    folder = _images(tmp_path / "in", [(40, 40), (40, 40)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "img1.png").write_bytes(b"someone's file")
    with pytest.raises(FileExistsError, match=r"already holds 1 file\(s\).*\(img1\.png\)"):
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={folder}", f"output={out}",
                             "predict.device=cpu", name="predict"))  # fmt: skip
    assert _snapshot(out) == {"img1.png": b"someone's file"}
    # A single image predicted into its own folder: its label map would replace it.
    single = _images(tmp_path / "single", [(40, 40), (40, 40)]) / "img1.png"
    with pytest.raises(FileExistsError, match=r"img1\.png"):
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={single}",
                             f"output={single.parent}", name="predict"))  # fmt: skip


def test_predict_output_must_be_a_folder(checkpoint, compose_eval, tmp_path):
    folder = _images(tmp_path / "in", [(40, 40)])
    taken = tmp_path / "result.png"
    taken.write_bytes(b"a file")
    with pytest.raises(FileExistsError, match=r"output=.*result\.png is an existing file: output "
                       r"must be a folder"):  # fmt: skip
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={folder}", f"output={taken}",
                             name="predict"))  # fmt: skip
    assert taken.read_bytes() == b"a file"


def test_predict_refuses_an_input_whose_outputs_would_collide(checkpoint, compose_eval, tmp_path):
    folder = _images(tmp_path / "in", [(40, 40)])
    shutil.copyfile(folder / "img0.jpg", folder / "legend.jpg")  # its label map = the legend's name
    with pytest.raises(ValueError, match=r"legend\.jpg and the run's own file would both be "
                       r"written as legend\.png"):  # fmt: skip
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={folder}",
                             f"output={tmp_path / 'out'}", name="predict"))  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_export_never_overwrites_the_checkpoint_or_any_file(checkpoint, compose_eval, tmp_path):
    before = checkpoint.read_bytes()
    with pytest.raises(FileExistsError, match=r"is the checkpoint being exported: export never "
                       "overwrites"):  # fmt: skip
        export(compose_eval(f"ckpt_path={checkpoint}", f"output={checkpoint}", name="export"))
    assert checkpoint.read_bytes() == before
    old = tmp_path / "model.onnx"
    old.write_bytes(b"an earlier export")
    with pytest.raises(FileExistsError, match="is an existing file"):
        export(compose_eval(f"ckpt_path={checkpoint}", f"output={old}", name="export"))
    assert old.read_bytes() == b"an earlier export"
    with pytest.raises(ValueError, match=r"is a folder: output must be the path of the ONNX file"):
        export(compose_eval(f"ckpt_path={checkpoint}", f"output={tmp_path}", name="export"))


def test_predict_with_no_readable_input_is_a_failure_that_says_so(
    checkpoint, compose_eval, tmp_path
):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(PredictFailures, match=r"1 of 1 inputs failed .* no image could be read, "
                       "so no label map was written"):  # fmt: skip
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={folder}",
                             f"output={tmp_path / 'out'}", name="predict"))  # fmt: skip


def test_a_full_disk_leaves_no_truncated_label_map(checkpoint, compose_eval, tmp_path, monkeypatch):
    """A sibling of the checkpoint case: a label PNG cut short by a full disk kept its name."""
    import errno

    import segkit.tasks.predict as task

    folder = _images(tmp_path / "in", [(40, 40), (40, 40)])
    real = task.save_label_png

    def save(path, labels, classes):
        if path.name == "img1.png":
            path.write_bytes(b"\x89PNG trunc")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, labels, classes)

    monkeypatch.setattr(task, "save_label_png", save)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"cannot write .*img1\.png: No space left on device; its "
                       "partial files were removed"):  # fmt: skip
        predict(compose_eval(f"ckpt_path={checkpoint}", f"input={folder}", f"output={out}",
                             "predict.batch_size=1", name="predict"))  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img0_overlay.jpg"]
