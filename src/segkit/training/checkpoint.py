"""Reading segkit checkpoints and checking that one fits the model a run is about to build.

A SegModule checkpoint stores the composed run config as a plain dict under
``ckpt["hyper_parameters"]["cfg"]``; the network weights are ``state_dict`` keys ``model.*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from segkit.checks import check_checkpoint_file

#: Config sections whose values decide the network's shape; resuming across them cannot work.
MODEL_KEYS: tuple[str, ...] = ("model", "backbone", "data.num_classes")
#: Keys that may differ on resume: they do not change the architecture.
IGNORED_KEYS: tuple[str, ...] = ("backbone.weights", "model.backbone.weights")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU; FileNotFoundError naming the path if it is missing."""
    path = check_checkpoint_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def checkpoint_config(ckpt: Mapping[str, Any], *, path: str | Path = "<checkpoint>") -> dict:
    """The composed run config stored in a checkpoint (ValueError if it has none)."""
    cfg = ckpt.get("hyper_parameters", {}).get("cfg")
    if not isinstance(cfg, Mapping):
        raise ValueError(
            f"{path} holds no segkit run config (hyper_parameters['cfg']); "
            "it was not written by segkit's train task"
        )
    return dict(cfg)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {"a.b.c": leaf}; lists and scalars are leaves."""
    if not isinstance(tree, Mapping):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _select(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def config_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, keys: tuple[str, ...] = MODEL_KEYS
) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (saved value, current value)} for every differing leaf under ``keys``."""
    diffs: dict[str, tuple[Any, Any]] = {}
    for section in keys:
        old = flatten(_select(saved, section), section)
        new = flatten(_select(current, section), section)
        for key in sorted(set(old) | set(new)):
            if key in IGNORED_KEYS or old.get(key) == new.get(key):
                continue
            diffs[key] = (old.get(key, "<absent>"), new.get(key, "<absent>"))
    # model.backbone is the backbone section interpolated: report each difference once.
    return {
        k: v
        for k, v in diffs.items()
        if not (k.startswith("model.backbone.") and diffs.get(k.removeprefix("model.")) == v)
    }


def check_resume_compatible(
    ckpt_path: str | Path, current_cfg: Mapping[str, Any], *, max_listed: int = 12
) -> None:
    """ValueError naming the differing keys if ``ckpt_path`` was trained with another model config."""
    saved = checkpoint_config(load_checkpoint(ckpt_path), path=ckpt_path)
    diffs = config_differences(saved, current_cfg)
    if not diffs:
        return
    lines = [f"  {k}: checkpoint={old!r} vs now={new!r}" for k, (old, new) in diffs.items()]
    more = len(lines) - max_listed
    listed = "\n".join(lines[:max_listed]) + (f"\n  ... and {more} more" if more > 0 else "")
    raise ValueError(
        f"ckpt_path={ckpt_path} was trained with a different model config; these keys differ:\n"
        f"{listed}\nUse the same model/backbone/data.num_classes overrides as the run that wrote "
        "it (its config is saved in the run folder), or start without ckpt_path."
    )
