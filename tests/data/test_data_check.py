"""segkit.data.check and the pre-training check of SegDataModule: every sample of
every split is checked and every defect listed; a corrupt val image stops a run before training."""

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from segkit.cli.configs import compose_config
from segkit.data import VOC, SegDataModule, Synthetic, check_datasets, save_mask, voc_split


def voc(root: Path) -> Path:
    return root / "VOCdevkit" / "VOC2012"


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def lenient(root: Path, split: str, **kwargs) -> voc_split:
    kwargs = {"num_classes": 5, "check_files": False, "on_repeat": "keep_first", **kwargs}
    return voc_split(root, split, **kwargs)


def break_samples(root: Path) -> dict[tuple[str, str], str]:
    """Put one defect of each kind into the tiny tree; returns {(split, id): expected message part}."""
    images, masks = voc(root) / "JPEGImages", voc(root) / "SegmentationClass"
    truncate(images / "val_000002.jpg")  # the last val image: a sampled check would miss it
    (images / "train_000001.jpg").write_bytes(b"not a jpeg")
    (masks / "train_000002.png").unlink()
    save_mask(masks / "train_000003.png", np.zeros((10, 11), np.uint8))
    Image.new("RGB", (8, 8)).save(masks / "train_000004.png")
    bad = np.array(Image.open(masks / "val_000000.png"))
    bad[0, 0] = 9
    save_mask(masks / "val_000000.png", bad)
    return {
        ("train", "train_000001"): "train_000001.jpg is unreadable or corrupt",
        ("train", "train_000002"): "train_000002.png is missing",
        ("train", "train_000003"): "train_000003.png is 11x10 (WxH) but its image is",
        ("train", "train_000004"): "train_000004.png has mode 'RGB'",
        ("val", "val_000000"): "val_000000.png has label values [9]",
        ("val", "val_000002"): "val_000002.jpg is unreadable or corrupt (e.g. truncated)",
    }


def test_every_defect_of_every_split_is_listed(voc_root):
    expected = break_samples(voc_root)
    split_list = voc(voc_root) / "ImageSets" / "Segmentation" / "val.txt"
    split_list.write_text(split_list.read_text() + "val_000001\n")
    datasets = [lenient(voc_root, "train"), lenient(voc_root, "val")]
    report = check_datasets(datasets, level="full", workers=2)
    assert report.samples == {"train": 6, "val": 3}
    listed = [(d.split, d.image_id) for d in report.defects]
    assert listed == [
        ("train", "train_000001"),
        ("train", "train_000002"),
        ("train", "train_000003"),
        ("train", "train_000004"),
        ("val", None),  # the split list itself: val_000001 is listed twice
        ("val", "val_000000"),
        ("val", "val_000002"),
    ]
    for defect in report.defects:
        if defect.image_id is not None:
            assert expected[(defect.split, defect.image_id)] in defect.message
    assert "val.txt lists 1 ids more than once ('val_000001' x2)" in report.defects[4].message
    assert report.defects_by_split() == {"train": 4, "val": 3}
    assert "9 samples of train, val" in report.summary() and "7 defects" in report.summary()


def test_threads_find_the_same_as_one(voc_root):
    break_samples(voc_root)
    datasets = [lenient(voc_root, "trainval")]
    one = check_datasets(datasets, workers=1, count_labels=True)
    many = check_datasets(datasets, workers=3, count_labels=True)
    assert one.defects == many.defects and len(one.defects) == 6
    np.testing.assert_array_equal(one.label_pixels, many.label_pixels)


def test_label_pixels_are_the_masks_histogram(voc_root):
    ds = lenient(voc_root, "trainval")
    report = check_datasets([ds], count_labels=True, workers=2)
    hist = sum(np.bincount(ds.load_mask(i).ravel(), minlength=256) for i in range(len(ds)))
    np.testing.assert_array_equal(report.label_pixels, hist)
    assert not report.defects and report.summary().endswith("no defect found")


def test_headers_level_skips_image_decoding(voc_root):
    expected = break_samples(voc_root)
    report = check_datasets([lenient(voc_root, "train"), lenient(voc_root, "val")], level="headers")
    found = {(d.split, d.image_id) for d in report.defects}
    # a truncated JPEG body needs the decode; everything else is still found
    assert found == set(expected) - {("val", "val_000002")}


def test_training_split_repeats_are_not_a_defect(voc_root):
    split_list = voc(voc_root) / "ImageSets" / "Segmentation" / "train.txt"
    split_list.write_text(split_list.read_text() + "train_000000\n")
    report = check_datasets([lenient(voc_root, "train", on_repeat="warn")])
    assert not report.defects  # dropped with a warning by the dataset


def test_bad_arguments(voc_root):
    with pytest.raises(ValueError, match="check level must be one of"):
        check_datasets([lenient(voc_root, "val")], level="sampled")
    with pytest.raises(ValueError, match="check workers must be >= 1"):
        check_datasets([lenient(voc_root, "val")], workers=0)
    with pytest.raises(ValueError, match="^check must be 'full', 'headers' or 'off'"):
        SegDataModule(dataset=VOC("data"), check="quick")


SPEC = dict(seed=2, num_train=8, num_val=4, min_size=40, max_size=56, num_classes=5)


def _dm(root: Path, **kwargs) -> SegDataModule:
    base = dict(dataset=Synthetic(root=root, **SPEC), num_classes=5, crop_size=32, batch_size=2)
    return SegDataModule(**{**base, "val_batch_size": 2, "num_workers": 0, **kwargs})


def test_setup_fails_on_a_corrupt_val_image_before_any_batch(tmp_path):
    """The corrupt val image used to surface at the first validation, after training."""
    dm = _dm(tmp_path)
    dm.prepare_data()
    truncate(voc(dm.dataset.folder) / "JPEGImages" / "val_000003.jpg")
    (voc(dm.dataset.folder) / "SegmentationClass" / "train_000005.png").unlink()
    with pytest.raises(ValueError) as err:
        dm.setup("fit")
    msg = str(err.value)
    assert msg.startswith("data check: 12 samples of train, val (full check, ")
    assert "2 defects (train 1, val 1)" in msg
    assert "[train train_000005] mask file" in msg and "train_000005.png is missing" in msg
    assert "[val val_000003] image file" in msg and "val_000003.jpg is unreadable" in msg
    assert "scripts/inspect_data.py" in msg and "check='off'" in msg
    assert dm.train_set is None and dm.val_set is None


def test_check_off_skips_it_and_the_check_runs_once(tmp_path, monkeypatch):
    import segkit.data.datamodule as datamodule

    calls = []
    real = datamodule.check_datasets
    monkeypatch.setattr(
        datamodule, "check_datasets", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    dm = _dm(tmp_path)
    dm.setup("fit")
    dm.setup("fit")  # train.py's early setup, then Lightning's
    assert calls == [1] and dm.checked
    truncate(voc(dm.dataset.folder) / "JPEGImages" / "val_000003.jpg")
    off = _dm(tmp_path, check="off")
    off.setup("fit")  # not checked: the defect only shows when the sample is loaded
    assert calls == [1] and not off.checked
    with pytest.raises(ValueError, match=r"val_000003\.jpg is unreadable"):
        off.val_set[3]


def test_only_global_rank_zero_checks(tmp_path, monkeypatch):
    from pytorch_lightning.utilities import rank_zero_only

    dm = _dm(tmp_path)
    dm.prepare_data()
    truncate(voc(dm.dataset.folder) / "JPEGImages" / "val_000003.jpg")
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    dm.setup("fit")  # rank 1 leaves the check to rank 0 (which fails the job)
    assert not dm.checked and len(dm.val_set) == 4


def test_train_task_stops_before_the_first_step(tmp_path, monkeypatch):
    """The train task needs no change: its early datamodule setup runs the check. (With
    data.check=off, as on main, both training steps run and then the validation fails.)"""
    from segkit.tasks.train import train
    from segkit.training import SegModule

    steps = []
    real_step = SegModule.training_step
    monkeypatch.setattr(
        SegModule,
        "training_step",
        lambda self, *a, **k: steps.append(1) or real_step(self, *a, **k),
    )
    overrides = [
        f"paths.root_dir={tmp_path}",
        f"paths.output_dir={tmp_path / 'run'}",
        "data=synthetic",
        "data.dataset.num_train=8",
        "data.dataset.num_val=2",
        "data.dataset.min_size=64",
        "data.dataset.max_size=64",
        "data.crop_size=64",
        "data.batch_size=4",
        "data.num_workers=0",
        "backbone.width_mult=0.35",
        "model.aspp_channels=16",
        "model.decoder_channels=16",
        "model.low_level_channels=8",
        "trainer=cpu",
        "trainer.max_steps=2",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_model_summary=false",
        "callbacks.progress_bar=null",
    ]
    cfg = compose_config("train", overrides)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    truncate(voc(dm.dataset.folder) / "JPEGImages" / "val_000001.jpg")
    with pytest.raises(ValueError, match=r"data check: .*\n.*val_000001\.jpg is unreadable"):
        train(cfg)
    assert steps == []  # on main: every training step ran, then the first validation failed


def _exif_rotated(path: Path, stored_hw: tuple[int, int], orientation: int = 6) -> None:
    """A JPEG stored ``stored_hw`` whose EXIF orientation rotates it on load (6: 90 degrees)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    pixels = np.random.default_rng(0).integers(0, 256, (*stored_hw, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, exif=exif.tobytes())


@pytest.mark.parametrize("level", ["full", "headers"])
def test_an_exif_rotated_image_is_checked_as_the_loader_reads_it(voc_root, level):
    """A valid sample (mask drawn on the image as displayed) passed the full check and was refused
    by the header check, which used the stored size; the loader applies the orientation."""
    images, masks = voc(voc_root) / "JPEGImages", voc(voc_root) / "SegmentationClass"
    h, w = np.array(Image.open(masks / "train_000000.png")).shape
    _exif_rotated(images / "train_000000.jpg", stored_hw=(w, h))  # displayed (h, w): the mask's
    dataset = lenient(voc_root, "train")
    assert dataset.load(0)[0].shape[:2] == (h, w)
    assert check_datasets([dataset], level=level).defects == []


@pytest.mark.parametrize("level", ["full", "headers"])
def test_a_mask_in_the_stored_orientation_names_exif(voc_root, level):
    images, masks = voc(voc_root) / "JPEGImages", voc(voc_root) / "SegmentationClass"
    h, w = np.array(Image.open(masks / "train_000000.png")).shape
    _exif_rotated(images / "train_000000.jpg", stored_hw=(h, w))  # displayed (w, h)
    dataset = lenient(voc_root, "train")
    (defect,) = check_datasets([dataset], level=level).defects
    assert f"is {w}x{h} (WxH) but its image is {h}x{w} as displayed" in defect.message
    assert "EXIF orientation 6 (rotated on load" in defect.message
    assert "Rotate the mask to the image as displayed" in defect.message
    with pytest.raises(ValueError, match="EXIF orientation 6"):  # loading says the same
        dataset.load(0)
