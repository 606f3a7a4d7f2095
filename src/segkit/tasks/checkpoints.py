"""Checkpoint path -> (Segmentor with its trained weights, the run config it was trained with).

Shared by the evaluate, predict, export and analyze tasks. A segkit checkpoint is a Lightning
checkpoint written by the train task: the composed, resolved run config as a plain dict under
``ckpt["hyper_parameters"]["cfg"]`` and the network weights as ``state_dict`` keys ``model.*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segkit.data.classes import ClassInfo
from segkit.tasks._common import instantiate_user
from segkit.training.checkpoint_file import (
    apply_checkpoint_input_norm,
    checkpoint_config,
    read_checkpoint,
)

#: Prefix of the network's weights in a SegModule state dict.
STATE_PREFIX = "model."


def load_model_weights(model: nn.Module, state_dict: dict[str, Any], *, path: str | Path) -> None:
    """Load the ``model.*`` entries of a Lightning state dict into ``model`` (strictly)."""
    weights = {
        k[len(STATE_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(STATE_PREFIX)
    }
    if not weights:
        raise ValueError(
            f"{path} has no 'model.*' weights in its state_dict: it is not a segkit training "
            "checkpoint (give <run dir>/checkpoints/best.ckpt)"
        )
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit the model its own config describes: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )


@dataclass(frozen=True)
class TrainedModel:
    """A checkpoint's network (eval mode, CPU), its stored run config and its classes."""

    model: nn.Module
    cfg: dict[str, Any]
    classes: ClassInfo


def load_trained(path: str | Path, *, output_stride: int | None = None) -> TrainedModel:
    """Rebuild the trained network of a checkpoint, in eval mode on the CPU, with its classes.

    Args:
        path: a checkpoint written by the train task.
        output_stride: re-dilate to 8 | 16 | 32 after loading (same weights, ASPP rates rescaled);
            None keeps the trained output stride.
    Returns:
        the Segmentor, the stored run config (plain dict; ``cfg["model"]``, ``cfg["data"]``, ...)
        and the class metadata the checkpoint carries (:func:`checkpoint_classes`).
    Raises:
        FileNotFoundError: missing file. ValueError: corrupt file, not a segkit checkpoint, weights
        that do not fit, invalid output stride, class metadata that does not fit the model.
    """
    ckpt = read_checkpoint(path)
    cfg = checkpoint_config(ckpt, path=path)
    if not isinstance(cfg.get("model"), dict) or "_target_" not in cfg["model"]:
        raise ValueError(f"{path}: its stored config has no model section with a _target_")
    model = instantiate_user(cfg["model"])
    state = ckpt.get("state_dict")
    load_model_weights(model, state if isinstance(state, dict) else {}, path=path)
    apply_checkpoint_input_norm(model, ckpt)
    classes = checkpoint_classes(ckpt, cfg, path=path)
    if output_stride is not None:
        if not hasattr(model, "set_output_stride"):
            raise ValueError(f"{path}: its model cannot change output stride")
        model.set_output_stride(int(output_stride))
    model.eval()
    return TrainedModel(model, cfg, classes)


def load_segmentor(
    path: str | Path, *, output_stride: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, cfg)`` of :func:`load_trained` (for callers that need no class metadata)."""
    trained = load_trained(path, output_stride=output_stride)
    return trained.model, trained.cfg


def stored_data(cfg: dict[str, Any], *, path: str | Path) -> dict[str, Any]:
    """The data section of a checkpoint's stored config, its ``dataset`` node a ``_target_``
    object; a ValueError in one line when there is none, or when it is in the schema of segkit
    before dataset objects (``dataset: <name>`` with ``options`` / ``synthetic``): evaluate then
    needs the data group named on the command line, which replaces the stored section whole."""
    data = cfg.get("data")
    if not isinstance(data, dict) or "_target_" not in data:
        raise ValueError(
            f"{path}: its stored config has no data section; choose one with data=<group> "
            "(configs/data/)"
        )
    dataset = data.get("dataset")
    if not isinstance(dataset, dict) or "_target_" not in dataset:
        group = dataset if isinstance(dataset, str) else "<group>"
        raise ValueError(
            f"{path}: its stored data config (data.dataset={dataset}) is in the format of an "
            f"older segkit: name the data group on the command line, e.g. data={group} "
            "data.root=<the data folder>"
        )
    return data


def checkpoint_classes(ckpt: dict[str, Any], cfg: dict[str, Any], *, path: str | Path) -> ClassInfo:
    """The class metadata stored in a checkpoint (``ckpt["segkit"]["classes"]``, written by the
    train task into every checkpoint), checked against the model's class count."""
    num_classes = checkpoint_num_classes(cfg, path=path)
    stored = (ckpt.get("segkit") or {}).get("classes")
    if stored is None:
        raise ValueError(
            f"{path} carries no class metadata (checkpoint['segkit']['classes']): it was not "
            "written by segkit's train task; give <run dir>/checkpoints/best.ckpt of a train run"
        )
    classes = ClassInfo.from_dict(stored, source=f"{path}")
    if classes.num_classes != num_classes:
        raise ValueError(
            f"{path}: its class metadata names {classes.num_classes} classes but its model has "
            f"{num_classes}: the checkpoint is inconsistent, use another one"
        )
    return classes


def checkpoint_num_classes(cfg: dict[str, Any], *, path: str | Path) -> int:
    """The class count the checkpoint was trained with (``data.num_classes`` / ``model.num_classes``)."""
    value = cfg.get("model", {}).get("num_classes", cfg.get("data", {}).get("num_classes"))
    if value is None:
        raise ValueError(f"{path}: its stored config names no num_classes")
    return int(value)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU -> ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name} but no CUDA GPU is available: use device=cpu or auto")
    return torch.device(name)


__all__ = [
    "stored_data",
    "STATE_PREFIX",
    "TrainedModel",
    "checkpoint_classes",
    "checkpoint_num_classes",
    "load_model_weights",
    "load_segmentor",
    "load_trained",
    "read_checkpoint",
    "resolve_device",
]
