"""Optional packages (pyproject's extras): a missing one is one line naming the install command."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from segkit.optional import EXTRAS, MissingExtraError, require

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # the standard library's from Python 3.11
    return tomllib.loads(PYPROJECT.read_text())["project"]


@pytest.mark.parametrize("module", sorted(EXTRAS))
def test_a_missing_extra_names_its_install_command(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` fail as if absent
    with pytest.raises(MissingExtraError) as err:
        require(module, what="this feature")
    assert str(err.value) == (
        f"this feature needs {module}, which is not installed: "
        f"pip install 'segkit[{EXTRAS[module]}]'"
    )
    assert isinstance(err.value, ValueError)  # the command line prints it as a user error


def test_an_installed_module_is_returned():
    assert require("json", what="nothing") is sys.modules["json"]


@pytest.mark.parametrize("module", sorted(EXTRAS))
def test_each_extra_installs_its_module(module):
    """The table agrees with pyproject.toml: the named extra lists the package."""
    extras = pyproject()["optional-dependencies"]
    packages = [spec.split(">")[0].split("<")[0].split("=")[0] for spec in extras[EXTRAS[module]]]
    assert module in packages


def test_the_optional_packages_are_not_dependencies():
    dependencies = pyproject()["dependencies"]
    assert not [d for d in dependencies if d.split(">")[0].split("=")[0] in EXTRAS]
