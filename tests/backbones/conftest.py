"""Fixtures for backbone tests."""

import pytest
import torch


@pytest.fixture
def image() -> torch.Tensor:
    return torch.randn(1, 3, 72, 72, generator=torch.Generator().manual_seed(1))
