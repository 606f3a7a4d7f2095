"""data=folder: matching by stem, splits, the classes file, and every defect as one named line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from segkit.constants import IGNORE_INDEX
from segkit.data import SegDataModule, check_datasets
from segkit.data.folder import Folder, ratio_split, read_classes_file
from segkit.data.split import SegSplit

CLASSES = "names: [background, crack, rust]\npalette: [[0, 0, 0], [255, 0, 0], [0, 0, 255]]\n"


def write_folder(root: Path, n: int = 6, *, size=(40, 48), classes: str = CLASSES) -> Path:
    """``n`` images (JPEG and PNG) with greyscale masks of values 0..2 and a void border."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    h, w = size
    for i in range(n):
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        suffix = ".jpg" if i % 2 else ".png"
        cv2.imwrite(str(root / "images" / f"img{i}{suffix}"), image)
        mask = np.zeros((h, w), np.uint8)
        mask[: h // 2, : w // 2] = 1
        mask[h // 2 :, w // 2 :] = 2
        mask[0, :] = IGNORE_INDEX
        Image.fromarray(mask, mode="L").save(root / "masks" / f"img{i}.png")
    (root / "classes.yaml").write_text(classes)
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "mine")


def holding(root: Path, stem: str, **options) -> tuple[SegSplit, int]:
    """The split of ``root`` that holds ``stem``, and its index there."""
    for split in ("train", "val"):
        ds = Folder(root, **options).split(split)
        if stem in ds.ids:
            return ds, ds.ids.index(stem)
    raise AssertionError(f"{stem} in no split")


def test_matches_by_stem_and_splits_by_ratio(folder):
    train = Folder(folder).split("train")
    val = Folder(folder).split("val")
    assert isinstance(train, SegSplit)
    assert len(train) == 5 and len(val) == 1  # round(6 * 0.2) = 1
    assert set(train.ids) | set(val.ids) == {f"img{i}" for i in range(6)}
    assert not set(train.ids) & set(val.ids)
    assert train.image_path("img1").suffix == ".jpg" and train.image_path("img0").suffix == ".png"
    image, mask = train.load(0)
    assert image.shape == (40, 48, 3) and mask.shape == (40, 48)
    assert set(np.unique(mask)) == {0, 1, 2, IGNORE_INDEX}
    assert train.classes.names == ("background", "crack", "rust")
    assert train.classes.palette[1] == (255, 0, 0)


def test_ratio_split_is_fixed_by_its_seed():
    stems = [f"s{i}" for i in range(20)]
    a = ratio_split(stems, 0.25, seed=0)
    assert a == ratio_split(list(reversed(stems)), 0.25, seed=0)  # independent of listing order
    assert len(a["val"]) == 5 and len(a["train"]) == 15
    assert ratio_split(stems, 0.25, seed=1)["val"] != a["val"]
    with pytest.raises(ValueError, match="has 1 image\\(s\\): a train/val split needs at least 2"):
        ratio_split(["only"], 0.5, seed=0)


def test_split_lists(folder):
    (folder / "splits").mkdir()
    (folder / "splits" / "train.txt").write_text("img0\nimg1\nimg2\n")
    (folder / "splits" / "val.txt").write_text("img3\n")
    opts = Folder(folder, splits="splits")
    assert opts.split("train").ids == ["img0", "img1", "img2"]
    assert opts.split("val").ids == ["img3"]
    (folder / "splits" / "val.txt").write_text("img3\nimg9\n")
    with pytest.raises(FileNotFoundError, match=r"image file .*img9\.\* for id 'img9' in split"):
        opts.split("val")
    with pytest.raises(FileNotFoundError, match=r"split list .*test\.txt is missing: write it"):
        opts.split("test")


def test_image_without_mask_and_mask_without_image_are_named(folder):
    (folder / "masks" / "img2.png").unlink()
    (folder / "images" / "img5.jpg").unlink()
    with pytest.raises(ValueError) as err:
        Folder(folder).split("train")
    msg = str(err.value)
    assert "\n" not in msg
    assert "1 image(s) in" in msg and "have no mask" in msg and "(img2)" in msg
    assert "1 mask(s) in" in msg and "have no image" in msg and "(img5)" in msg
    assert "matched by file stem" in msg


def test_the_check_lists_unmatched_files_with_the_other_defects(folder):
    (folder / "masks" / "img2.png").unlink()
    (folder / "images" / "img5.jpg").unlink()
    datasets = [Folder(folder).split(s, check_files=False, on_repeat="keep_first")
                for s in ("train", "val")]  # fmt: skip
    report = check_datasets(datasets)
    messages = " | ".join(str(d) for d in report.defects)
    assert len(report.defects) == 2, messages
    assert "img2.png is missing" in messages and "img5.* is missing" in messages


def test_bad_mask_values_and_sizes_are_named(folder):
    Image.fromarray(np.full((40, 48), 7, np.uint8), mode="L").save(folder / "masks" / "img0.png")
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(folder / "masks" / "img1.png")
    datasets = [Folder(folder).split(s) for s in ("train", "val")]
    report = check_datasets(datasets)
    messages = [d.message for d in report.defects]
    assert any("img0.png has label values [7] outside 0..2 and 255" in m for m in messages)
    assert any("img1.png is 10x10 (WxH) but its image is 48x40" in m for m in messages)
    ds = next(d for d in datasets if "img0" in d.ids)
    with pytest.raises(ValueError, match=r"img0\.png has label values \[7\]"):
        ds.load(ds.ids.index("img0"))


def test_colour_masks_and_lossy_masks_are_refused(folder):
    Image.new("RGB", (48, 40)).save(folder / "masks" / "img0.png")
    ds, index = holding(folder, "img0")
    with pytest.raises(ValueError, match="has mode 'RGB', expected a palette or greyscale PNG"):
        ds.load_mask(index)
    (folder / "masks" / "img9.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"are not PNGs \(img9\.jpg\): masks must be palette"):
        Folder(folder).split("train")


def test_two_images_with_one_stem(folder):
    cv2.imwrite(str(folder / "images" / "img0.jpg"), np.zeros((40, 48, 3), np.uint8))
    with pytest.raises(ValueError, match=r"name several images: img0 \(img0\.jpg, img0\.png\)"):
        Folder(folder).split("train")


def test_void_value_of_the_classes_file_becomes_255(tmp_path):
    root = write_folder(tmp_path / "v", classes="names: [a, b, c]\nvoid: 200\n")
    mask = np.zeros((40, 48), np.uint8)
    mask[5:10] = 200
    Image.fromarray(mask, mode="L").save(root / "masks" / "img0.png")
    ds, index = holding(root, "img0")
    out = ds.load_mask(index)
    assert (out[5:10] == IGNORE_INDEX).all() and (out[10:] == 0).all()
    ds, index = holding(root, "img1")  # its border row holds 255, not the void value 200
    with pytest.raises(ValueError, match="has label value 255, which is neither a class"):
        ds.load_mask(index)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("classes.txt", "a\nb\n", r"unknown format \(\.txt\): write it as YAML"),
        ("classes.yaml", "- a\n- b\n", "must be a mapping with a 'names' list"),
        ("classes.yaml", "names: [a, b]\ncolours: []\n", r"unknown key\(s\) \['colours'\]"),
        ("classes.yaml", "names: [a, b]\nvoid: 1\n", "void value .* must be in 2..255"),
        ("classes.yaml", "names: [a, a]\n", "must be unique"),
        ("classes.yaml", "names: [a, b]\npalette: [[0, 0, 0]]\n", "1 colours for 2 classes"),
        ("classes.yaml", "names: [a, b]\nbackground: c\n", "background 'c' is not one of"),
        ("classes.json", "{names: ", "cannot be parsed"),
    ],
)
def test_classes_file_errors(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        read_classes_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_json_classes_file(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"names": ["bg", "x"], "background": "bg", "void": 254}))
    info = read_classes_file(path)
    assert info.names == ("bg", "x") and info.background == 0 and info.void == 254


def test_missing_root_folder_and_classes_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data root .*nowhere does not exist: set root to"):
        SegDataModule(dataset=Folder(tmp_path / "nowhere"))
    (tmp_path / "r").mkdir()
    with pytest.raises(FileNotFoundError, match=r"classes file .*classes\.yaml is missing"):
        SegDataModule(dataset=Folder(tmp_path / "r"))
    (tmp_path / "r" / "classes.yaml").write_text(CLASSES)
    dm = SegDataModule(dataset=Folder(tmp_path / "r"), num_workers=0)
    with pytest.raises(FileNotFoundError, match=r"images folder .*images is missing: put the"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="^val_fraction must be in"):
        Folder(tmp_path / "r", val_fraction=1.5)


def test_datamodule_takes_the_class_count_from_the_classes_file(folder):
    dm = SegDataModule(dataset=Folder(folder), crop_size=32, batch_size=2,
                       val_batch_size=1, num_workers=0)  # fmt: skip
    assert dm.num_classes == 3 and dm.class_names == ("background", "crack", "rust")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 32)
    assert int(batch["mask"][batch["mask"] != IGNORE_INDEX].max()) <= 2
    with pytest.raises(ValueError, match=r"^num_classes=4 but classes file .*classes.yaml has 3"):
        SegDataModule(dataset=Folder(folder), num_classes=4)


def test_the_data_check_refuses_a_bad_folder_before_training(folder):
    Image.fromarray(np.full((40, 48), 9, np.uint8), mode="L").save(folder / "masks" / "img3.png")
    dm = SegDataModule(dataset=Folder(folder), num_workers=0)
    with pytest.raises(
        ValueError, match=r"(?s)data check: .*1 defect.*img3\.png has label values \[9\]"
    ):
        dm.setup("fit")
