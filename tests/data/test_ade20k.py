"""ADE20K reader on a tiny ADEChallengeData2016 tree, and its download from a loopback server."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from segkit.cli import download as download_cli
from segkit.data import SegDataModule, SegSplit, check_datasets
from segkit.data import download as dl
from segkit.data.ade20k import ADE20K, ADE20K_INFO
from segkit.data.download import Archive

SIZES = {"training": 4, "validation": 2}
PREFIX = {"training": "ADE_train", "validation": "ADE_val"}
H, W = 24, 40


def annotation(k: int) -> np.ndarray:
    """Real annotation values: 0 ("other"), 1, 150 and a spread in between."""
    rng = np.random.default_rng(k)
    mask = rng.integers(0, 151, (H, W)).astype(np.uint8)
    mask[0, :3] = (0, 1, 150)
    return mask


def write_ade20k(parent: Path) -> Path:
    """``parent/ADEChallengeData2016`` with images/ and annotations/ per split, the release's
    objectInfo150.txt / sceneCategories.txt next to them."""
    base = parent / "ADEChallengeData2016"
    for folder, n in SIZES.items():
        (base / "images" / folder).mkdir(parents=True)
        (base / "annotations" / folder).mkdir(parents=True)
        for k in range(1, n + 1):
            stem = f"{PREFIX[folder]}_{k:08d}"
            image = np.random.default_rng(k).integers(0, 256, (H, W, 3), dtype=np.uint8)
            cv2.imwrite(str(base / "images" / folder / f"{stem}.jpg"), image)
            cv2.imwrite(str(base / "annotations" / folder / f"{stem}.png"), annotation(k))
    (base / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n1\t0.1\t1\t1\twall\n")
    (base / "sceneCategories.txt").write_text("ADE_train_00000001 airport_terminal\n")
    return base


@pytest.fixture
def ade_parent(tmp_path: Path) -> Path:
    write_ade20k(tmp_path / "data")
    return tmp_path / "data"


def test_splits_and_root_forms(ade_parent):
    train = ADE20K(ade_parent).split("train")
    val = ADE20K(ade_parent / "ADEChallengeData2016").split("val")
    assert isinstance(train, SegSplit) and isinstance(val, SegSplit)
    assert (len(train), len(val)) == (4, 2)
    assert train.ids[0] == "ADE_train_00000001" and val.ids == [
        "ADE_val_00000001",
        "ADE_val_00000002",
    ]
    assert val.image_path(val.ids[0]).parent.name == "validation"
    assert val.mask_path(val.ids[0]).parts[-3:] == (
        "annotations",
        "validation",
        "ADE_val_00000001.png",
    )


def test_reduce_zero_label(ade_parent):
    ds = ADE20K(ade_parent).split("train")
    raw = annotation(1)
    image, mask = ds.load(0)
    assert image.shape == (H, W, 3)
    assert tuple(mask[0, :3]) == (255, 0, 149)  # other -> void, 1 -> 0, 150 -> 149
    expected = np.where(raw == 0, 255, raw.astype(np.int16) - 1).astype(np.uint8)
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(ds.load_mask(0), expected)


def test_classes():
    assert ADE20K_INFO.num_classes == 150 and ADE20K_INFO.background is None
    assert ADE20K_INFO.names[:4] == ("wall", "building", "sky", "floor")
    assert ADE20K_INFO.names[7] == "bed" and ADE20K_INFO.names[-1] == "flag"
    assert ADE20K_INFO.palette[0] == (120, 120, 120) and ADE20K_INFO.palette[-1] == (92, 0, 255)


def test_missing_root_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        ADE20K(tmp_path / "nothing").split("val")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "nothing" / "ADEChallengeData2016") in message
    assert f"python scripts/download_ade20k.py --root {tmp_path / 'nothing'}" in message


def test_value_outside_the_classes_and_wrong_size(ade_parent):
    ds = ADE20K(ade_parent).split("val")
    bad = annotation(1)
    bad[5, 5] = 200
    cv2.imwrite(str(ds.mask_path(ds.ids[0])), bad)
    with pytest.raises(
        ValueError, match=r"has values \[200\] that are not ADE20K annotation values"
    ):
        ds.load(0)
    cv2.imwrite(str(ds.mask_path(ds.ids[1])), np.zeros((H + 1, W), np.uint8))
    with pytest.raises(ValueError, match=r"is 40x25 \(WxH\) but its image is 40x24"):
        ds.load(1)
    report = check_datasets([ds])
    assert len(report.defects) == 2


def test_missing_annotation(ade_parent):
    (ade_parent / "ADEChallengeData2016/annotations/training/ADE_train_00000003.png").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"ADE_train_00000003\.png .* is missing: re-extract"
    ):
        ADE20K(ade_parent).split("train")
    lenient = ADE20K(ade_parent).split("train", check_files=False)
    assert len(check_datasets([lenient]).defects) == 1


def test_datamodule(ade_parent):
    dm = SegDataModule(dataset=ADE20K(ade_parent), crop_size=16, batch_size=2, num_workers=0)
    assert dm.classes == ADE20K_INFO and dm.num_classes == 150
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch["image"].shape) == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"^num_classes=151 but ADE20K \(SceneParsing\) has 150"):
        SegDataModule(dataset=ADE20K(ade_parent), num_classes=151)


# -- download ------------------------------------------------------------------------------------


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


@pytest.fixture
def zip_server(tmp_path):
    fixture = write_ade20k(tmp_path / "fixture")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:  # the release's member names
        for path in sorted(fixture.rglob("*")):
            archive.write(path, path.relative_to(fixture.parent).as_posix())
    _ZipServer.body, _ZipServer.cut, _ZipServer.ranges = buf.getvalue(), False, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ZipServer)
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/ADEChallengeData2016.zip"
    yield _ZipServer, url
    httpd.shutdown()
    httpd.server_close()


def _archive(url: str, body: bytes, md5: str | None = None) -> Archive:
    return Archive(url, "ADEChallengeData2016.zip", md5 or hashlib.md5(body).hexdigest(),
                   "ADEChallengeData2016")  # fmt: skip


def test_download_resumes_verifies_and_unzips(zip_server, tmp_path, monkeypatch, capsys):
    server, url = zip_server
    monkeypatch.setitem(dl.ARCHIVES, "ade20k", _archive(url, server.body))
    root = tmp_path / "data"
    server.cut = True
    assert download_cli.ade20k(["--root", str(root)]) == 1  # cut half way: .part kept
    record, err = capsys.readouterr().err.strip().splitlines()  # the download's line, the error
    assert record.startswith("downloading ADEChallengeData2016.zip: ")
    assert err.startswith("error: download of") and "rerun the same command to resume" in err
    assert (root / "ADEChallengeData2016.zip.part").is_file()
    assert download_cli.ade20k(["--root", str(root)]) == 0  # resumed from the cut
    assert server.ranges[-1] == f"bytes={len(server.body) // 2}-"
    assert len(ADE20K(root).split("train")) == 4 and len(ADE20K(root).split("val")) == 2
    requests = len(server.ranges)
    assert download_cli.ade20k(["--root", str(root), "--delete-archive"]) == 0  # present: skipped
    assert len(server.ranges) == requests


def test_download_checksum_mismatch(zip_server, tmp_path, monkeypatch, capsys):
    server, url = zip_server
    monkeypatch.setitem(dl.ARCHIVES, "ade20k", _archive(url, server.body, md5="0" * 32))
    assert download_cli.ade20k(["--root", str(tmp_path)]) == 1
    record, err = capsys.readouterr().err.strip().splitlines()  # the download's line, the error
    assert record.startswith("downloading ADEChallengeData2016.zip: ")
    assert err.startswith(f"error: checksum mismatch for {url}")
    assert not list(tmp_path.glob("ADEChallengeData2016*"))


def test_unsafe_zip_member_is_refused(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../outside.txt", b"x")
    with pytest.raises(ValueError, match=r"refusing unsafe archive member '\.\./outside\.txt'"):
        dl.extract(path, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_the_real_archive_entry():
    real = dl.ARCHIVES["ade20k"]
    assert real.url == "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip"
    assert real.creates == "ADEChallengeData2016" and len(real.md5) == 32


@pytest.mark.parametrize("recipe", ["deeplabv3plus_mobilenetv2", "deeplabv3plus_xception65"])
def test_recipes_compose_and_build(recipe, ade_parent, tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    config_dir = Path(__file__).resolve().parents[2] / "configs"
    text = (config_dir / "experiment" / "ade20k" / f"{recipe}.yaml").read_text()
    assert "not verified here" in text and "mIoU on val" in text
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"experiment=ade20k/{recipe}", "backbone.weights=null",
                       f"data.root={ade_parent}", f"paths.root_dir={tmp_path}"],
        )  # fmt: skip
    assert (cfg.data.dataset._target_, cfg.data.num_classes, cfg.module.num_classes) == (
        "segkit.data.ADE20K",
        150,
        150,
    )
    assert cfg.trainer.max_steps % cfg.trainer.val_check_interval == 0
    assert instantiate(cfg.model).backbone.output_stride == 16


@pytest.mark.slow
def test_train_evaluate_predict_on_ade20k(ade_parent, tmp_path):
    from test_cityscapes import train_evaluate_predict

    from segkit.data.io import read_mask

    images = ade_parent / "ADEChallengeData2016" / "images" / "validation"
    metrics, summary = train_evaluate_predict("ade20k", ade_parent, tmp_path, images)
    settings = metrics["settings"]
    assert (settings["dataset"], settings["split"], settings["mode"]) == ("ade20k", "val", "whole")
    assert metrics["num_images"] == 2 and len(metrics["per_class_iou"]) == 150
    assert summary["written"] == 2 and summary["class_names"][0] == "wall"
    label = read_mask(tmp_path / "pred" / "ADE_val_00000001.png")
    assert label.shape == (H, W) and label.max() < 150
