"""The segkit checkpoint file format: what a checkpoint holds, its format number, the one reader,
and the scan for non-finite weights (a diverged run's state must never be written or used).

A segkit checkpoint is a Lightning checkpoint (``torch.save`` of a dict) written by the train task:
``ckpt[FORMAT_KEY]`` its format number, ``ckpt["hyper_parameters"]["cfg"]`` the composed run config
as a plain dict, ``ckpt["state_dict"]`` the network weights as ``model.*`` keys,
``ckpt["segkit"]`` the best score, random streams, class weights, classes and the input
normalisation the network was trained with (no state_dict entry: the Segmentor's buffers are
non-persistent). A checkpoint of another format is refused by :func:`read_checkpoint` in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from segkit.checks import check_checkpoint_file
from segkit.constants import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

#: Top-level key of a checkpoint's format number (``SegModule.on_save_checkpoint`` writes it).
FORMAT_KEY = "segkit_format"
#: The format this code writes and reads. Raise it when a checkpoint's content changes meaning.
FORMAT = 1


def checkpoint_format(ckpt: Mapping[str, Any]) -> Any:
    """The format number of a loaded checkpoint.

    A checkpoint without the key is format 1: the checkpoints written before the number existed
    (segkit as of 2026-12-07, e.g. the CamVid comparison's runs) hold what format 1 holds; those
    written before the model owned its normalisation have no ``input_norm`` and were trained with
    ImageNet's (:func:`checkpoint_input_norm`).
    """
    return ckpt.get(FORMAT_KEY, 1)


class NonFiniteWeightsError(FloatingPointError):
    """A state dict about to be written holds NaN or infinite values (training diverged)."""


def non_finite_count_tensors(state: Mapping[str, Any]) -> tuple[list[str], list[Tensor]]:
    """The keys of ``state``'s floating-point tensors and, for each, its number of NaN/inf values
    as a 0-d tensor on the tensor's own device (nothing is read back: no host sync)."""
    keys: list[str] = []
    counts: list[Tensor] = []
    for key, value in state.items():
        if isinstance(value, Tensor) and (value.is_floating_point() or value.is_complex()):
            keys.append(key)
            counts.append(torch.count_nonzero(~torch.isfinite(value.detach())))
    return keys, counts


def non_finite_counts(state: Mapping[str, Any]) -> dict[str, int]:
    """``{key: count}`` of NaN/inf values for every floating-point tensor of ``state`` holding any.

    Reduced on the tensors' device and read back in one transfer: one sync however many tensors
    there are (paid at a save or a validation, never per step).
    """
    keys, counts = non_finite_count_tensors(state)
    if not counts:
        return {}
    totals = torch.stack([c.to(counts[0].device) for c in counts]).tolist()
    return {k: int(n) for k, n in zip(keys, totals, strict=True) if n}


def describe_non_finite(counts: Mapping[str, int], *, max_listed: int = 3) -> str:
    """``"12 NaN/inf values in 2 tensors (model.a.weight: 8, model.b.bias: 4)"``."""
    listed = ", ".join(f"{k}: {n}" for k, n in list(counts.items())[:max_listed])
    more = ", ..." if len(counts) > max_listed else ""
    return f"{sum(counts.values())} NaN/inf values in {len(counts)} tensors ({listed}{more})"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU (``weights_only``), the one reader of every task and of resume,
    with one clear error each: missing file (FileNotFoundError), unreadable/corrupt file, not a
    checkpoint, another format than :data:`FORMAT`, NaN/inf weights (a diverged run's state:
    evaluating, exporting or resuming it is meaningless) (ValueError)."""
    path = check_checkpoint_file(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling garbage raises almost anything (IndexError...)
        raise ValueError(
            f"checkpoint {path} is unreadable or corrupt ({type(err).__name__}): give a .ckpt "
            "written by scripts/train.py (e.g. <run dir>/checkpoints/best.ckpt)"
        ) from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"checkpoint {path} is not a segkit/Lightning checkpoint (not a dict)")
    found = checkpoint_format(ckpt)
    if found != FORMAT:
        raise ValueError(
            f"checkpoint {path} is segkit checkpoint format {found!r}; this segkit reads format "
            f"{FORMAT} only: use the segkit version that wrote it, or retrain"
        )
    state = ckpt.get("state_dict")
    bad = non_finite_counts(state) if isinstance(state, dict) else {}
    if bad:
        raise ValueError(
            f"checkpoint {path} holds {describe_non_finite(bad)} in its weights: it was written "
            "after training diverged. Use an earlier checkpoint of that run, or retrain with a "
            "lower learning rate (or a longer warm-up)."
        )
    return ckpt


def checkpoint_input_norm(ckpt: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """The RGB mean / std (0..1) the checkpoint's network was trained with:
    ``ckpt["segkit"]["input_norm"]``, or ImageNet's for a checkpoint written before the model
    owned its normalisation (``segkit.data.normalize`` gave every model ImageNet's)."""
    norm = (ckpt.get("segkit") or {}).get("input_norm")
    if isinstance(norm, Mapping):
        return [float(v) for v in norm["mean"]], [float(v) for v in norm["std"]]
    return list(IMAGENET_MEAN), list(IMAGENET_STD)


def apply_checkpoint_input_norm(model: nn.Module, ckpt: Mapping[str, Any]) -> None:
    """Give ``model`` (a Segmentor) the normalisation its checkpoint was trained with, when its
    backbone now names another one (e.g. a timm model whose ``pretrained_cfg`` is not ImageNet's,
    trained before the model normalised its input)."""
    if not hasattr(model, "set_input_norm"):
        return
    mean, std = checkpoint_input_norm(ckpt)
    if (list(model.input_mean), list(model.input_std)) != (mean, std):
        log.info("input normalisation of the checkpoint kept: mean %s, std %s", mean, std)
        model.set_input_norm(mean, std)


def checkpoint_config(ckpt: Mapping[str, Any], *, path: str | Path = "<checkpoint>") -> dict:
    """The composed run config stored in a checkpoint (ValueError if it has none)."""
    cfg = ckpt.get("hyper_parameters", {}).get("cfg")
    if not isinstance(cfg, Mapping):
        raise ValueError(
            f"{path} holds no segkit run config (hyper_parameters['cfg']); "
            "it was not written by segkit's train task"
        )
    return dict(cfg)


__all__ = [
    "FORMAT",
    "FORMAT_KEY",
    "NonFiniteWeightsError",
    "checkpoint_config",
    "checkpoint_format",
    "describe_non_finite",
    "non_finite_count_tensors",
    "non_finite_counts",
    "read_checkpoint",
]
