"""Run folders: the files the tasks write into them, their schema ids, the design names, and the one
JSON writer. The tasks write run folders with these names and ``segkit.compare`` reads them back.
Standard library only (compare imports no torch; the command line imports no more than it needs).
"""

from __future__ import annotations

import errno
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The resolved run config (train, evaluate, analyze, predict, export).
CONFIG_FILE = "config.yaml"
#: Train's and evaluate's results (evaluate's carry ``"schema": EVALUATE_SCHEMA``).
METRICS_FILE = "metrics.json"
#: Analyze's results.
ANALYSIS_FILE = "analysis.json"
#: Evaluate's per-image confusion matrices, next to its metrics.json (docs/metrics.md).
IMAGE_CONFUSION_FILE = "per_image_confusion.npz"
#: Train's learning curve (step, train_loss, val_mIoU), drawn from its CSV log.
CURVE_CSV = "learning_curve.csv"
#: The files that make a folder a run compare reads (and one a new run must not write over).
RECORD_FILES: tuple[str, ...] = (CONFIG_FILE, METRICS_FILE, ANALYSIS_FILE)

#: ``metrics.json`` of an evaluation; compare tells it from train's by the prefix.
EVALUATE_SCHEMA = "segkit.evaluate/2"
EVALUATE_SCHEMA_PREFIX = EVALUATE_SCHEMA.split("/")[0]
#: ``trials.json`` of a hyperparameter search.
TRIALS_SCHEMA = "segkit.trials/1"

#: Model builder -> the name a design is shown by.
DESIGN_NAMES: dict[str, str] = {
    "fcn": "FCN",
    "deeplabv3": "DeepLabv3",
    "deeplabv3plus": "DeepLabv3+",
}


def builder_name(node: Any) -> str | None:
    """Builder name of a config node (``_target_: segkit.models.fcn`` -> ``fcn``; a plain dict or
    an omegaconf ``DictConfig``) or of a ``_target_`` string; None without one. The one spelling:
    the train, evaluate and analyze tasks name their model and backbone in their JSON with it, and
    compare reads those names back."""
    if isinstance(node, Mapping):
        node = node.get("_target_")
    return str(node).rsplit(".", 1)[-1] if node else None


def design_name(model: str | None, model_cfg: Mapping[str, Any] | None) -> str:
    """Human name of a model builder: ``FCN-8s``, ``DeepLabv3``, ``DeepLabv3+``."""
    name = DESIGN_NAMES.get(model or "", model or "?")
    if model == "fcn" and model_cfg and model_cfg.get("fcn_variant"):
        name = f"FCN-{model_cfg['fcn_variant']}"
    return name


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``: a full disk
    or a kill never leaves a truncated ``metrics.json`` / ``config.yaml`` that looks complete.
    A full disk is one line (ValueError) naming the file and the fix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        temp.write_text(text)
        os.replace(temp, path)
    except OSError as err:
        temp.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise ValueError(
                f"cannot write {path}: {err.strerror}; "
                + ("the previous file is intact" if path.is_file() else "it was not written")
                + ". Free disk space, or write the run to another disk"
            ) from err
        raise
    return path


def write_json(data: Mapping[str, Any], path: str | Path) -> Path:
    """The one JSON writer of run folders: strict JSON (a NaN or infinity is a ValueError, never a
    bare ``NaN`` a JSON reader refuses; write ``None``), indented, written atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


__all__ = [
    "ANALYSIS_FILE",
    "CONFIG_FILE",
    "CURVE_CSV",
    "DESIGN_NAMES",
    "EVALUATE_SCHEMA",
    "EVALUATE_SCHEMA_PREFIX",
    "IMAGE_CONFUSION_FILE",
    "METRICS_FILE",
    "RECORD_FILES",
    "TRIALS_SCHEMA",
    "builder_name",
    "design_name",
    "write_json",
    "write_text_atomic",
]
