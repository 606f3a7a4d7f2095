"""SBD .mat reading, PNG conversion (cached) and the trainaug split."""

import os

import numpy as np
import pytest
import scipy.io

from segkit.data import build_trainaug, read_mask, read_sbd_mask, trainaug_ids, voc_split
from segkit.data.sbd import AUG_MASK_DIR, sbd_dir


def test_trainaug_ids_is_union_minus_voc_val():
    assert trainaug_ids(["a", "b"], ["v"], ["b", "c", "v"]) == ["a", "b", "c"]


def test_build_trainaug_converts_once_and_reads_as_voc(voc_root, make_sbd):
    masks = make_sbd(voc_root, ["sbd_1", "train_000001"], ["sbd_2", "val_000000"])
    counts = build_trainaug(voc_root)
    # 6 VOC train + sbd_1 + sbd_2; val_000000 is VOC val so it is left out
    assert counts == {"trainaug": 8, "converted": 2, "copied_voc": 9}
    voc2012 = voc_root / "VOCdevkit" / "VOC2012"
    np.testing.assert_array_equal(read_mask(voc2012 / AUG_MASK_DIR / "sbd_2.png"), masks["sbd_2"])
    # where VOC has a mask (with void borders) it wins over SBD's
    np.testing.assert_array_equal(
        read_mask(voc2012 / AUG_MASK_DIR / "train_000001.png"),
        read_mask(voc2012 / "SegmentationClass" / "train_000001.png"),
    )
    ds = voc_split(voc_root, "trainaug", num_classes=5)
    assert len(ds) == 8 and "val_000000" not in ds.ids
    assert ds[ds.ids.index("sbd_1")]["mask"].shape == (50, 60)

    png = voc2012 / AUG_MASK_DIR / "sbd_1.png"
    os.utime(png, (1, 1))
    assert build_trainaug(voc_root) == {"trainaug": 8, "converted": 0, "copied_voc": 0}
    assert png.stat().st_mtime == 1  # cached: not rewritten


def test_missing_sbd_says_how_to_download(voc_root):
    with pytest.raises(FileNotFoundError, match=r"SBD not found: .*scripts/download_voc\.py"):
        sbd_dir(voc_root)


def test_corrupt_mat(tmp_path):
    bad = tmp_path / "x.mat"
    bad.write_bytes(b"nonsense")
    with pytest.raises(ValueError, match=r"x\.mat is unreadable or lacks GTcls.Segmentation"):
        read_sbd_mask(bad)
    scipy.io.savemat(bad, {"other": np.zeros(3)})
    with pytest.raises(ValueError, match="lacks GTcls"):
        read_sbd_mask(bad)


def test_missing_sbd_files_are_named(voc_root, make_sbd):
    make_sbd(voc_root, ["sbd_1", "sbd_2"], [])
    base = voc_root / "benchmark_RELEASE" / "dataset"
    image = (base / "img" / "sbd_1.jpg").read_bytes()
    (base / "img" / "sbd_1.jpg").unlink()
    (base / "cls" / "sbd_2.mat").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"image .*img/sbd_1\.jpg for trainaug id 'sbd_1' is missing"
    ):
        build_trainaug(voc_root)
    (base / "img" / "sbd_1.jpg").write_bytes(image)
    with pytest.raises(
        FileNotFoundError, match=r"SBD mask .*cls/sbd_2\.mat is missing: re-extract"
    ):
        build_trainaug(voc_root)
    (base / "val.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"split list .*dataset/val\.txt is missing: re-"):
        build_trainaug(voc_root)


def test_interrupted_conversion_leaves_no_truncated_png(voc_root, make_sbd, monkeypatch):
    import segkit.data.sbd as sbd_module

    masks = make_sbd(voc_root, ["sbd_1"], [])
    real_save = sbd_module.save_mask

    def save_then_die(path, mask):  # half a PNG on disk, then the process "dies"
        real_save(path, mask)
        path.write_bytes(path.read_bytes()[:40])
        raise KeyboardInterrupt

    monkeypatch.setattr(sbd_module, "save_mask", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        build_trainaug(voc_root)
    aug = voc_root / "VOCdevkit" / "VOC2012" / AUG_MASK_DIR
    assert not (aug / "sbd_1.png").exists() and not list(aug.glob(".*tmp*"))
    monkeypatch.setattr(sbd_module, "save_mask", real_save)
    assert build_trainaug(voc_root)["converted"] == 1  # the rerun redoes it
    np.testing.assert_array_equal(read_mask(aug / "sbd_1.png"), masks["sbd_1"])
