"""segkit._lazy.lazy_exports: the PEP 562 exports of segkit.data / training / analysis / compare / evaluation."""

from __future__ import annotations

import importlib

import pytest

from segkit._lazy import lazy_exports


@pytest.mark.parametrize("package", ["data", "training", "analysis", "compare", "evaluation"])
def test_every_export_resolves_to_its_submodule(package: str) -> None:
    pkg = importlib.import_module(f"segkit.{package}")
    assert pkg.__all__ == sorted(pkg.__all__) == dir(pkg)
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
    with pytest.raises(AttributeError, match=rf"segkit\.{package}' has no attribute 'nope'"):
        pkg.nope  # noqa: B018


def test_a_name_in_two_submodules_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'x' exported from both a and b"):
        lazy_exports("pkg", {"a": ("x",), "b": ("y", "x")})
