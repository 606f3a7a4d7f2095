"""Rules on user-given values, in one place for the builders and the command line's pre-flight check.

Each rule here is *the* rule: the constructor that consumes the value calls it (``fcn`` calls
``check_fcn_variant``, ``SegDataModule`` calls ``check_batch_size`` and ``check_num_workers``, ``poly_lr`` calls
``check_lr_schedule``, ``VOC.split`` calls ``resolve_voc_dir``...), and
``segkit.cli.preflight`` calls the same function on the composed config before anything heavy is
imported, so a bad value is refused in well under a second with the constructor's own message.

Messages name the Python arguments of the constructor (``output_stride``, ``batch_size``), never
config keys: the command line adds the config node (``model: output_stride must be ...``).

This module imports only the standard library (no torch, no Hydra): the command line imports it
before it knows whether torch is needed at all (``tests/cli/test_import_discipline.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Output strides the backbones can be planned at (the builders' ``output_stride``).
VALID_OUTPUT_STRIDES: tuple[int, ...] = (8, 16, 32)
#: FCN variant -> the stride it predicts at (``segkit.models.fcn``'s ``fcn_variant``).
FCN_VARIANTS: dict[str, int] = {"32s": 32, "16s": 16, "8s": 8}
DOWNLOAD_HINT = (
    "download it with `python scripts/download_voc.py --root {root}` or use data=synthetic"
)


def check_dataset_node(value: Any) -> None:
    """``SegDataModule``'s ``dataset`` is a dataset object (in a config, a node with
    ``_target_``), not a name: ``data.dataset=coco`` on the command line replaces the node with a
    string."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        raise ValueError(
            f"dataset must be a dataset object (e.g. segkit.data.VOC; in a config, a node with "
            f"_target_), got {value!r}: choose a dataset by its config group (configs/data/), "
            "or set its fields as dataset.<field>=..."
        )


def check_output_stride(output_stride: Any) -> int:
    """Validate a user-given output stride; returns it as int."""
    if output_stride not in VALID_OUTPUT_STRIDES:
        raise ValueError(
            f"output_stride must be 8, 16 or 32, got {output_stride!r} (e.g. output_stride=16)"
        )
    return int(output_stride)


def check_fcn_variant(variant: str, output_stride: int) -> int:
    """The prediction stride N of ``variant`` ("Ns"); ValueError when impossible at ``output_stride``."""
    if variant not in FCN_VARIANTS:
        raise ValueError(f"fcn_variant must be one of {list(FCN_VARIANTS)}, got {variant!r}")
    n = FCN_VARIANTS[variant]
    if output_stride < n:
        possible = [v for v, s in FCN_VARIANTS.items() if s <= output_stride]
        fixes = " or ".join(f"fcn_variant={v}" for v in possible)
        raise ValueError(
            f"fcn_variant={variant} predicts at stride {n} but the backbone's output stride is "
            f"{output_stride}; use {fixes} "
            f"or output_stride={32 if n == 32 else '16 or 32'}"
        )
    return n


def check_batch_size(value: Any, key: str) -> int:
    """A batch size is an integer >= 1; ``key`` names it in the message: the caller's argument
    (``batch_size``, ``val_batch_size``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r} (set {key}=1 or more)")
    return value


def check_num_workers(value: Any, key: str) -> int:
    """DataLoader worker processes: an integer >= 0 (0 loads in the main process); ``key`` names
    it: the caller's argument (``num_workers``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{key} must be an integer >= 0 (0 = load in the main process), got {value!r} "
            f"(set {key}=0 or more)"
        )
    return value


def check_lr_schedule(*, max_steps: int, warmup_steps: int, warmup_start_factor: float) -> None:
    """The poly schedule's horizon (``poly_lr``'s ``total_steps``: the Trainer's ``max_steps``)
    and warm-up (``warmup_steps``, ``warmup_start_factor``). A warm-up longer than half the run is
    clipped, not refused (``training.schedule.clip_warmup``)."""
    if max_steps <= 0:
        raise ValueError(
            f"poly LR needs a positive number of steps, got {max_steps} (the Trainer's "
            "max_steps, or max_epochs with a non-empty train set)"
        )
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if not 0.0 < warmup_start_factor <= 1.0:
        raise ValueError(f"warmup_start_factor must be in (0, 1], got {warmup_start_factor}")


def check_image_size(value: Any, key: str, *, minimum: int = 1) -> tuple[int, int]:
    """An input size in pixels: a side ``N`` (an N x N square) or a ``[H, W]`` pair, each side an
    integer >= ``minimum``; returns ``(H, W)``. ``key`` names it (``input_size``)."""
    sides = _sides(value)
    if sides is None or any(side < minimum for side in sides):
        raise ValueError(
            f"{key} must be >= {minimum} px: a side N (N x N) or a [H, W] pair of such sides, "
            f"got {_shown(value)} (e.g. {key}=513 or {key}=[360,480])"
        )
    return sides


def _sides(value: Any) -> tuple[int, int] | None:
    """``(N, N)`` for an int, ``(H, W)`` for a pair of ints, else None (bools are no sizes)."""

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if is_int(value):
        return (value, value)
    pair = isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) == 2
    return (int(value[0]), int(value[1])) if pair and all(map(is_int, value)) else None


def _shown(value: Any) -> str:
    """A value as the user typed it: a list config as ``[360, 0]``, not its class's repr."""
    is_list = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    return repr(list(value)) if is_list else repr(value)


def resolve_voc_dir(root: str | Path) -> Path:
    """Return the ``VOC2012`` folder under ``root``; raise FileNotFoundError saying how to get it."""
    root = Path(root)
    for candidate in (root / "VOCdevkit" / "VOC2012", root):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise FileNotFoundError(
        f"data root {root} has no VOCdevkit/VOC2012/JPEGImages: " + DOWNLOAD_HINT.format(root=root)
    )


def check_checkpoint_file(path: str | Path) -> Path:
    """A checkpoint path names an existing file (``ckpt_path``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {path} (set ckpt_path=<run dir>/checkpoints/last.ckpt)"
        )
    return path


#: The class weights ``class_weight`` can name instead of a list (computed by the train task).
CLASS_WEIGHT_MODES: tuple[str, ...] = ("median_frequency",)


def check_class_weight(value: Any, num_classes: int | None) -> list[float] | str | None:
    """``SegModule``'s ``class_weight``: None, a mode of :data:`CLASS_WEIGHT_MODES`, or one
    finite weight >= 0 per class (not all 0); returns it as given (a list of floats).
    ``num_classes`` None: the length is not checked (the dataset decides it later)."""
    if value is None or (isinstance(value, str) and value in CLASS_WEIGHT_MODES):
        return value
    expected = f"{num_classes} " if num_classes is not None else ""
    modes = " or ".join(repr(mode) for mode in CLASS_WEIGHT_MODES)
    usage = (
        f"class_weight must be None, {modes}, or a list of {expected}weights (one per class, "
        f"e.g. class_weight={CLASS_WEIGHT_MODES[0]!r})"
    )
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{usage}, got {value!r}")
    items = list(value)
    if any(isinstance(w, bool) or not isinstance(w, (int, float)) for w in items):
        raise ValueError(f"{usage}, got {items!r}")
    weights = [float(w) for w in items]
    if num_classes is not None and len(weights) != num_classes:
        raise ValueError(
            f"class_weight has {len(weights)} values but the dataset has {num_classes} "
            f"classes: give one weight per class, in label order"
        )
    for k, w in enumerate(weights):
        if not math.isfinite(w) or w < 0:
            raise ValueError(
                f"class_weight[{k}] is {w}: every class weight must be finite and >= 0"
            )
    if not any(weights):
        raise ValueError("class_weight is all zeros: at least one class needs a weight > 0")
    return weights


__all__ = [
    "CLASS_WEIGHT_MODES",
    "DOWNLOAD_HINT",
    "FCN_VARIANTS",
    "VALID_OUTPUT_STRIDES",
    "check_batch_size",
    "check_checkpoint_file",
    "check_class_weight",
    "check_fcn_variant",
    "check_image_size",
    "check_lr_schedule",
    "check_num_workers",
    "check_output_stride",
    "resolve_voc_dir",
]
