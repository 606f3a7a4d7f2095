import json
import multiprocessing
import os
import socket
import subprocess
import sys
from dataclasses import fields, replace

import numpy as np
import pytest

from segkit.constants import IGNORE_INDEX
from segkit.data import (
    ensure_synthetic,
    render_sample,
    synthetic_class_names,
    synthetic_folder_name,
    voc_split,
)
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
    train = voc_split(voc_root, "train", num_classes=tiny_spec.num_classes)
    val = voc_split(voc_root, "val", num_classes=tiny_spec.num_classes)
    assert (len(train), len(val)) == (tiny_spec.num_train, tiny_spec.num_val)
    sample = train[0]
    assert sample["image"].shape[:2] == sample["mask"].shape
    # the JPEG on disk is the rendered image up to compression noise; the PNG is exact
    image, mask = render_sample(tiny_spec, "train", 0)
    np.testing.assert_array_equal(sample["mask"], mask)
    assert np.abs(sample["image"].astype(int) - image).mean() < 6


def _files(folder):
    """{relative path: (inode, mtime_ns)} of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_ensure_generates_once_into_a_folder_of_its_spec(tmp_path, tiny_spec, caplog):
    root = tmp_path / "synth"
    with caplog.at_level("INFO"):
        folder = ensure_synthetic(root, tiny_spec)
    assert "generating synthetic" in caplog.text
    assert folder == root / synthetic_folder_name(tiny_spec)
    assert json.loads((folder / MANIFEST).read_text())["seed"] == tiny_spec.seed
    before = _files(folder)
    caplog.clear()
    with caplog.at_level("INFO"):
        assert ensure_synthetic(root, tiny_spec) == folder
    assert "generating" not in caplog.text and _files(folder) == before
    assert sorted(p.name for p in root.iterdir()) == [folder.name]  # no temporary folder left


def test_two_specs_coexist_and_neither_is_rewritten(tmp_path, tiny_spec):
    """A run with other data.dataset.* values used to delete and rewrite the folder
    under every run reading it. Now each spec has its own folder: a reader of A keeps reading A,
    byte for byte, while B is generated and after."""
    root = tmp_path / "synth"
    folder_a = ensure_synthetic(root, tiny_spec)
    reader = voc_split(folder_a, "val", num_classes=tiny_spec.num_classes)
    before = _files(folder_a)
    other = replace(tiny_spec, num_train=2, seed=tiny_spec.seed + 1)
    folder_b = ensure_synthetic(root, other)
    assert folder_b != folder_a and _files(folder_a) == before
    for i in range(len(reader)):
        _, mask = reader.load(i)
        np.testing.assert_array_equal(mask, render_sample(tiny_spec, "val", i)[1])
    assert len(voc_split(folder_b, "train", num_classes=5)) == 2
    assert ensure_synthetic(root, tiny_spec) == folder_a and _files(folder_a) == before


def test_folder_name_changes_with_every_spec_field(tiny_spec):
    names = {synthetic_folder_name(tiny_spec)}
    for f in fields(SyntheticSpec):
        value = getattr(tiny_spec, f.name)
        changed = replace(tiny_spec, **{f.name: value + 1 if f.name != "min_size" else value - 1})
        names.add(synthetic_folder_name(changed))
    assert len(names) == 1 + len(fields(SyntheticSpec))


def test_interrupted_generation_leaves_nothing_behind(tmp_path, tiny_spec, monkeypatch):
    import segkit.data.synthetic as synthetic

    real = synthetic._write_split

    def crash_on_val(spec, voc_dir, split, count):
        if split == "val":
            raise KeyboardInterrupt  # e.g. Ctrl-C half-way
        return real(spec, voc_dir, split, count)

    root = tmp_path / "synth"
    monkeypatch.setattr(synthetic, "_write_split", crash_on_val)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic(root, tiny_spec)
    assert list(root.iterdir()) == []  # neither a half-written final folder nor the temporary one
    monkeypatch.setattr(synthetic, "_write_split", real)
    folder = ensure_synthetic(root, tiny_spec)
    assert len(voc_split(folder, "val", num_classes=5)) == tiny_spec.num_val


def test_losing_the_rename_race_uses_the_winners_folder(tmp_path, tiny_spec, monkeypatch, caplog):
    import segkit.data.synthetic as synthetic

    real = synthetic.generate_synthetic
    calls = []

    def another_run_finishes_first(root, spec):
        calls.append(root)
        if len(calls) == 1:  # while we generate, another process completes the same spec
            ensure_synthetic(tmp_path, spec)
        return real(root, spec)

    monkeypatch.setattr(synthetic, "generate_synthetic", another_run_finishes_first)
    with caplog.at_level("INFO"):
        folder = ensure_synthetic(tmp_path, tiny_spec)
    assert len(calls) == 2 and "completed by another run meanwhile" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # our copy is gone
    assert len(voc_split(folder, "val", num_classes=5)) == tiny_spec.num_val


def test_partial_folder_of_a_killed_run_is_removed(tmp_path, tiny_spec):
    root = tmp_path / "synth"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = synthetic_folder_name(tiny_spec)
    stale = root / f".{name}.partial-{socket.gethostname()}-{dead.pid}-0000"
    live = root / f".{name}.partial-{socket.gethostname()}-{os.getpid()}-0000"  # still running
    for partial in (stale, live):
        (partial / "VOCdevkit").mkdir(parents=True)
    ensure_synthetic(root, tiny_spec)
    assert not stale.exists() and live.exists()


def test_incomplete_folder_is_refused_not_trusted(tmp_path, tiny_spec):
    folder = tmp_path / synthetic_folder_name(tiny_spec)
    (folder / "VOCdevkit" / "VOC2012").mkdir(parents=True)
    with pytest.raises(ValueError, match=rf"{folder} is not the complete .* delete that folder"):
        ensure_synthetic(tmp_path, tiny_spec)


def test_foreign_voc_in_root_is_left_alone(tmp_path, tiny_spec):
    foreign = tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages"
    foreign.mkdir(parents=True)
    (foreign / "mine.jpg").write_bytes(b"x")
    folder = ensure_synthetic(tmp_path, tiny_spec)
    assert folder.parent == tmp_path and (foreign / "mine.jpg").read_bytes() == b"x"


def _generate_and_read(root, spec, barrier, results):
    barrier.wait()  # all processes start generating at once
    folder = ensure_synthetic(root, spec)
    ds = voc_split(folder, "train", num_classes=spec.num_classes)
    ok = all(
        np.array_equal(ds.load(i)[1], render_sample(spec, "train", i)[1]) for i in range(len(ds))
    )
    results.put((spec.seed, len(ds), ok))


def test_concurrent_runs_generate_and_read_safely(tmp_path, tiny_spec):
    """Two processes generating the same spec and one generating another, started together: each
    reads back its complete set and one folder per spec remains, no temporary one."""
    ctx = multiprocessing.get_context("fork")
    other = replace(tiny_spec, seed=tiny_spec.seed + 1, num_train=4)
    specs = [tiny_spec, tiny_spec, other]
    barrier, results = ctx.Barrier(len(specs)), ctx.Queue()
    procs = [
        ctx.Process(target=_generate_and_read, args=(tmp_path, spec, barrier, results))
        for spec in specs
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0]
    got = sorted(results.get(timeout=5) for _ in specs)
    assert got == sorted((s.seed, s.num_train, True) for s in specs)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {synthetic_folder_name(s) for s in specs}
    )


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
