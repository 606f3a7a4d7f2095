"""`pip install -e .` must not warn about the project's own metadata: setuptools >= 77 deprecates a
TOML-table `project.license` (it warned three times per install) in favour of an SPDX string."""

from __future__ import annotations

import re
from pathlib import Path

PYPROJECT = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()


def test_license_is_an_spdx_string_and_the_backend_understands_it() -> None:
    # Text, not tomllib: Python 3.10 (supported) has no tomllib.
    assert re.search(r'^license = "MIT"', PYPROJECT, re.M)
    assert re.search(r'^requires = \["setuptools>=77"', PYPROJECT, re.M)
