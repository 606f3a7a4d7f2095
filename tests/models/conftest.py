"""Fixtures of the model tests; the fake backbone lives in fake_backbone.py (importable by name)."""

from __future__ import annotations

import pytest
import torch
from fake_backbone import FakeBackbone


@pytest.fixture
def fake_backbone() -> type[FakeBackbone]:
    """The FakeBackbone class, usable as the ``backbone`` argument of the model builders."""
    torch.manual_seed(0)
    return FakeBackbone
