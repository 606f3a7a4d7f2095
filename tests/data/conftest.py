"""Shared fixtures of the data tests: tiny VOC-format trees built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def voc_dir(root: Path) -> Path:
    return root / "VOCdevkit" / "VOC2012"
