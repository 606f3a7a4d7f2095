"""Helpers of the explorer tests (imported by them; a module of its own, not conftest, so that
the name cannot clash with the other test folders' conftest modules)."""

from __future__ import annotations

import importlib.util
import os

import pytest


def need(module: str, install: str, *, present: bool | None = None) -> None:
    """Skip without ``module`` (a Python module, or ``present`` says whether the requirement is
    there) on a developer machine; in CI (``CI`` set) fail: CI must install it (``.ci/run``), a
    skipped explorer test there would count for nothing."""
    if present is None:
        present = importlib.util.find_spec(module) is not None
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{module} is missing in CI: .ci/run must install it ({install})")
    pytest.skip(f"{module} is not installed here ({install}; CI installs it)")
