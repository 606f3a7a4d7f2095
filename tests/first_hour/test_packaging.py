"""`pip install -e .` must not warn about the project's own metadata: setuptools >= 77 deprecates a
TOML-table `project.license` (it warned three times per install) in favour of an SPDX string."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_license_is_an_spdx_string_and_the_backend_understands_it() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert "setuptools>=77" in meta["build-system"]["requires"]
