"""PEP 562 lazy package exports: ``segkit.data``, ``segkit.training``, ``segkit.analysis`` and
``segkit.compare`` import a submodule only when one of its names is first used, so light tools (the
CLI pre-flight, compare, checkpoint readers) do not pay for torch / Lightning they never touch."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``, whose submodule ``name`` provides the
    public names ``modules[name]`` (read like ``from .name import a, b``); a resolved name is cached
    on the package (looked up once). A name listed under two submodules is a ValueError."""
    exports: dict[str, str] = {}
    for module, names in modules.items():
        for name in names:
            if exports.setdefault(name, module) != module:
                raise ValueError(
                    f"{package}: {name!r} exported from both {exports[name]} and {module}"
                )

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__, sorted(exports)
