import json

import numpy as np
import pytest

from segkit.constants import IGNORE_INDEX
from segkit.data import VOCSegmentation, ensure_synthetic, render_sample, synthetic_class_names
from segkit.data.synthetic import MANIFEST, SyntheticSpec


def test_render_is_deterministic_and_seed_dependent(tiny_spec):
    a_img, a_mask = render_sample(tiny_spec, "train", 2)
    b_img, b_mask = render_sample(tiny_spec, "train", 2)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_mask, b_mask)
    other = SyntheticSpec(seed=tiny_spec.seed + 1, num_classes=tiny_spec.num_classes)
    c_img, _ = render_sample(other, "train", 2)
    assert a_img.shape != c_img.shape or not np.array_equal(a_img, c_img)


def test_labels_sizes_and_void_band(tiny_spec):
    seen = set()
    for i in range(40):
        image, mask = render_sample(tiny_spec, "train", i)
        assert image.dtype == np.uint8 and mask.dtype == np.uint8
        assert image.shape[:2] == mask.shape
        assert all(tiny_spec.min_size <= s <= tiny_spec.max_size for s in mask.shape)
        values = set(np.unique(mask).tolist())
        assert values <= set(range(tiny_spec.num_classes)) | {IGNORE_INDEX}
        seen |= values
    # every class appears, and objects are outlined by void as in VOC
    assert seen == set(range(tiny_spec.num_classes)) | {IGNORE_INDEX}


def test_void_band_separates_objects_from_background():
    spec = SyntheticSpec(seed=0, num_classes=7, void_width=1)
    _, mask = render_sample(spec, "val", 0)
    # no pixel of an object class touches background horizontally without void in between
    left, right = mask[:, :-1], mask[:, 1:]
    touching = (left != right) & (left != IGNORE_INDEX) & (right != IGNORE_INDEX)
    assert not touching.any()


def test_generated_tree_is_read_by_voc_reader(voc_root, tiny_spec):
    train = VOCSegmentation(voc_root, "train", num_classes=tiny_spec.num_classes)
    val = VOCSegmentation(voc_root, "val", num_classes=tiny_spec.num_classes)
    assert (len(train), len(val)) == (tiny_spec.num_train, tiny_spec.num_val)
    sample = train[0]
    assert sample["image"].shape[:2] == sample["mask"].shape
    # the JPEG on disk is the rendered image up to compression noise; the PNG is exact
    image, mask = render_sample(tiny_spec, "train", 0)
    np.testing.assert_array_equal(sample["mask"], mask)
    assert np.abs(sample["image"].astype(int) - image).mean() < 6


def test_ensure_generates_once_and_regenerates_on_change(tmp_path, tiny_spec, caplog):
    root = tmp_path / "synth"
    with caplog.at_level("INFO"):
        assert ensure_synthetic(root, tiny_spec) is True
    assert "generating synthetic" in caplog.text
    assert json.loads((root / MANIFEST).read_text())["seed"] == tiny_spec.seed
    assert ensure_synthetic(root, tiny_spec) is False
    bigger = SyntheticSpec(**{**tiny_spec.__dict__, "num_train": 2})
    assert ensure_synthetic(root, bigger) is True
    assert len(VOCSegmentation(root, "train", num_classes=5)) == 2


def test_refuses_to_overwrite_foreign_voc(tmp_path, tiny_spec):
    (tmp_path / "VOCdevkit" / "VOC2012").mkdir(parents=True)
    with pytest.raises(
        ValueError, match=r"VOCdevkit exists but has no .* not segkit synthetic data"
    ):
        ensure_synthetic(tmp_path, tiny_spec)


def test_class_names_and_bad_spec():
    assert synthetic_class_names(3) == ("background", "warm_disc", "cool_disc")
    with pytest.raises(ValueError, match="num_classes must be in 2..11"):
        synthetic_class_names(12)
    with pytest.raises(ValueError, match="min_size <= max_size"):
        SyntheticSpec(min_size=100, max_size=90)


def test_design_needs_context_spans_scales_and_has_thin_parts():
    """The properties the FCN vs DeepLabv3+ comparison relies on, measured on rendered samples."""
    import cv2

    spec = SyntheticSpec(seed=0, num_classes=11, min_size=64, max_size=96, void_width=0)
    names = synthetic_class_names(11)
    colour_sum = np.zeros((11, 3))
    pixels = np.zeros(11)
    kept = np.zeros(11)  # pixels surviving a 7x7 erosion: parts thicker than ~6 px
    fractions = []
    kernel = np.ones((7, 7), np.uint8)
    for i in range(80):
        image, mask = render_sample(spec, "train", i)
        for c in np.unique(mask)[1:]:
            inside = mask == c
            colour_sum[c] += image[inside].sum(axis=0)
            pixels[c] += inside.sum()
            kept[c] += cv2.erode(inside.astype(np.uint8), kernel).sum()
            fractions.append(inside.mean())
    mean = colour_sum / np.maximum(pixels, 1)[:, None]
    idx = {n: k for k, n in enumerate(names)}
    # class = shape x colour family: same-family classes share colours (and textures), so their
    # mean colour is far closer than that of the other family; colour alone cannot name the shape
    same = np.linalg.norm(mean[idx["warm_disc"]] - mean[idx["warm_triangle"]])
    other = np.linalg.norm(mean[idx["warm_disc"]] - mean[idx["cool_disc"]])
    assert same < 0.25 * other
    # objects from small to most of the image
    assert min(fractions) < 0.01 and max(fractions) > 0.3
    # stars and rings are thin (mostly gone after erosion), discs and boxes are not
    survive = kept / np.maximum(pixels, 1)
    for name in ("warm_star", "cool_star", "warm_ring", "cool_ring"):
        assert survive[idx[name]] < 0.2, (name, survive[idx[name]])
    for name in ("warm_disc", "cool_disc", "warm_box", "cool_box"):
        assert survive[idx[name]] > 0.45, (name, survive[idx[name]])
