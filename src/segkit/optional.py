"""Optional dependencies: the packages of pyproject's extras, imported where a feature needs them.

``require(module, what=...)`` imports one, or raises :class:`MissingExtraError`, a ValueError whose
message is one line naming the install command (``pip install 'segkit[onnx]'``); the command line
prints it as it prints any user error. Standard library only.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Optional top-level module -> the extra (``[project.optional-dependencies]``) that installs it.
EXTRAS: dict[str, str] = {
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
    "tensorboard": "tensorboard",
    "gradio": "app",
}


class MissingExtraError(ValueError):
    """An optional package is not installed; the message names the extra that installs it."""


def install_command(module: str) -> str:
    """``pip install 'segkit[<extra>]'`` for an optional ``module`` (a key of ``EXTRAS``)."""
    return f"pip install 'segkit[{EXTRAS[module]}]'"


def require(module: str, *, what: str) -> ModuleType:
    """Import the optional ``module`` that ``what`` (a feature, in the user's words) needs.

    Raises:
        MissingExtraError: ``module`` is not installed: "<what> needs <module>, which is not
            installed: pip install 'segkit[<extra>]'". A module that is installed but fails to
            import (one of *its* dependencies missing) raises its own error.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        raise MissingExtraError(
            f"{what} needs {module}, which is not installed: {install_command(module)}"
        ) from None


__all__ = ["EXTRAS", "MissingExtraError", "install_command", "require"]
