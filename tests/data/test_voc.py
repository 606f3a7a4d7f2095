"""The VOC reader and its bad-input errors: each one line naming the file and the fix."""

import numpy as np
import pytest

from segkit.data import save_mask, voc_split
from segkit.data.voc import resolve_voc_dir


def voc_dir(root):
    return root / "VOCdevkit" / "VOC2012"


def test_reads_palette_masks_and_accepts_voc2012_dir(voc_root):
    ds = voc_split(voc_dir(voc_root), "trainval", num_classes=5)
    assert len(ds) == 9
    sample = ds[0]
    assert sample["id"] == "train_000000"
    assert sample["image"].ndim == 3 and sample["image"].shape[2] == 3
    assert sample["mask"].dtype == np.uint8


def test_missing_root_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        resolve_voc_dir(tmp_path / "nowhere")
    msg = str(err.value)
    assert "nowhere" in msg and "scripts/download_voc.py" in msg and "data=synthetic" in msg
    assert "\n" not in msg


def test_missing_split_list(voc_root):
    with pytest.raises(FileNotFoundError, match=r"trainaug\.txt is missing: build it with"):
        voc_split(voc_root, "trainaug", num_classes=5)


@pytest.mark.parametrize(
    "kind,folder,ext", [("image", "JPEGImages", "jpg"), ("mask", "SegmentationClass", "png")]
)
def test_missing_file_of_listed_id(voc_root, kind, folder, ext):
    (voc_dir(voc_root) / folder / f"train_000002.{ext}").unlink()
    with pytest.raises(
        FileNotFoundError, match=rf"{kind} file .*train_000002\.{ext} .* remove the id"
    ):
        voc_split(voc_root, "train", num_classes=5)


@pytest.mark.parametrize(
    ("file", "garbage"),
    [("JPEGImages/train_000001.jpg", b"not a jpeg at all"),
     ("SegmentationClass/train_000001.png", b"\x89PNG garbage")],
)  # fmt: skip
def test_corrupt_image_or_mask(voc_root, file, garbage):
    (voc_dir(voc_root) / file).write_bytes(garbage)
    ds = voc_split(voc_root, "train", num_classes=5)
    name = file.split("/")[1].replace(".", r"\.")
    with pytest.raises(ValueError, match=rf"{name} is unreadable or corrupt"):
        ds[1]


def test_truncated_jpeg_is_an_error_not_a_grey_image(voc_root):
    # cv2.imread would pad a truncated JPEG with grey and only warn; an interrupted extraction
    # must not slip half-images into training.
    path = voc_dir(voc_root) / "JPEGImages" / "train_000002.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ds = voc_split(voc_root, "train", num_classes=5)
    with pytest.raises(
        ValueError, match=r"train_000002\.jpg is unreadable or corrupt \(e\.g\. trunc"
    ):
        ds[2]


def test_mask_size_mismatch(voc_root):
    ds = voc_split(voc_root, "train", num_classes=5)
    save_mask(ds.mask_path("train_000003"), np.zeros((10, 11), np.uint8))
    with pytest.raises(
        ValueError, match=r"train_000003\.png is 11x10 .* must match their image size"
    ):
        ds[3]


def test_mask_values_out_of_range_are_named(voc_root):
    ds = voc_split(voc_root, "train", num_classes=5)
    image, mask = ds.load(0)
    mask = mask.copy()
    mask[0, 0], mask[1, 1] = 7, 200
    save_mask(ds.mask_path("train_000000"), mask)
    with pytest.raises(
        ValueError, match=r"train_000000\.png has label values \[7, 200\] outside 0..4"
    ):
        ds[0]


def test_rgb_mask_rejected(voc_root):
    from PIL import Image

    ds = voc_split(voc_root, "train", num_classes=5)
    Image.new("RGB", (8, 8)).save(ds.mask_path("train_000004"))
    with pytest.raises(ValueError, match=r"train_000004\.png has mode 'RGB'"):
        ds[4]


def _repeat_ids(voc_root, split, *ids):
    """Append ``ids`` again to ``split``'s list; returns the list's path."""
    path = voc_dir(voc_root) / "ImageSets" / "Segmentation" / f"{split}.txt"
    path.write_text(path.read_text() + "".join(f"{i}\n" for i in ids))
    return path


def test_repeated_ids_in_an_evaluation_split_are_rejected_naming_file_and_ids(voc_root):
    """A repeated val id was accepted and scored twice (the mIoU changed)."""
    path = _repeat_ids(voc_root, "val", "val_000001", "val_000001", "val_000002")
    with pytest.raises(ValueError) as err:
        voc_split(voc_root, "val", num_classes=5)
    msg = str(err.value)
    assert msg.startswith(f"split list {path} lists 2 ids more than once")
    assert "'val_000001' x3" in msg and "'val_000002' x2" in msg and "'val_000000'" not in msg
    assert "remove the repeated lines" in msg and "\n" not in msg


def test_repeated_ids_in_training_are_dropped_with_a_warning(voc_root, caplog):
    path = _repeat_ids(voc_root, "train", "train_000003", "train_000000")
    with caplog.at_level("WARNING"):
        ds = voc_split(voc_root, "train", num_classes=5, on_repeat="warn")
    assert ds.ids == [f"train_{i:06d}" for i in range(6)]  # each once, in list order
    assert ds.repeated == {"train_000000": 2, "train_000003": 2}
    assert f"split list {path} lists 2 ids more than once" in caplog.text
    assert "repeats dropped" in caplog.text


def test_many_repeated_ids_are_counted_not_all_printed(voc_root):
    ids = [f"id{i:02d}" for i in range(12)] * 2  # the list is refused before any file is looked up
    (voc_dir(voc_root) / "ImageSets" / "Segmentation" / "many.txt").write_text("\n".join(ids))
    with pytest.raises(ValueError) as err:
        voc_split(voc_root, "many", num_classes=5)
    assert "lists 12 ids more than once ('id00' x2, " in str(err.value)
    assert "'id09' x2 and 2 more)" in str(err.value) and "id10" not in str(err.value)
