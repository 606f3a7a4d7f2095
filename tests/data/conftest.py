"""Shared fixtures of the data tests: tiny VOC-format trees built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from segkit.data.synthetic import SyntheticSpec, generate_synthetic

TINY = SyntheticSpec(seed=3, num_train=6, num_val=3, min_size=48, max_size=72, num_classes=5)


@pytest.fixture
def tiny_spec() -> SyntheticSpec:
    return TINY


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    """A folder holding a small ``VOCdevkit/VOC2012`` (written by the synthetic generator)."""
    root = tmp_path / "voc"
    generate_synthetic(root, TINY)
    return root


def write_sbd(root: Path, ids_train: list[str], ids_val: list[str], shape=(50, 60)) -> dict:
    """A tiny ``benchmark_RELEASE/dataset`` (cls/*.mat, img/*.jpg, train/val lists); returns masks."""
    base = root / "benchmark_RELEASE" / "dataset"
    (base / "cls").mkdir(parents=True)
    (base / "img").mkdir()
    rng = np.random.default_rng(0)
    masks = {}
    for image_id in ids_train + ids_val:
        mask = rng.integers(0, 5, shape).astype(np.uint8)
        scipy.io.savemat(base / "cls" / f"{image_id}.mat", {"GTcls": {"Segmentation": mask}})
        cv2.imwrite(str(base / "img" / f"{image_id}.jpg"), np.zeros((*shape, 3), np.uint8))
        masks[image_id] = mask
    (base / "train.txt").write_text("\n".join(ids_train) + "\n")
    (base / "val.txt").write_text("\n".join(ids_val) + "\n")
    return masks


@pytest.fixture
def make_sbd():
    return write_sbd
