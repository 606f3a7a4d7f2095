"""The inference and backend keys shared by ``evaluate`` (``eval.*``) and ``predict`` (``predict.*``):
one builder each, from the config node (and, for inference, the data config's defaults) to the
library's settings objects."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from segkit.evaluation.inference import InferenceSettings
from segkit.evaluation.onnx_backend import BackendSettings, file_sha256
from segkit.tasks._common import config_node

#: The inference keys a data config may give defaults for (``data.inference``).
INFERENCE_KEYS: tuple[str, ...] = ("mode", "window", "stride", "scales", "flip")
_BUILT_IN: dict[str, Any] = {"mode": "whole", "window": 513, "stride": 341, "scales": [1.0],
                             "flip": False}  # fmt: skip


def inference_settings(
    opts: DictConfig,
    data_defaults: Mapping[str, Any] | None = None,
    trained: Mapping[str, Any] | None = None,
    *,
    key: str = "",
) -> InferenceSettings:
    """``InferenceSettings`` from the ``eval`` (or ``predict``) node, which ``key`` names before
    a refusal (``eval: mode must be 'whole' or 'slide', got 'slid'``: the settings' arguments are
    the node's keys).

    A key that is null or absent there takes the dataset's default (``data_defaults``: the data
    config's ``inference`` mapping, e.g. Cityscapes' sliding window), else the built-in one
    (whole image, single scale, no flip; window 513 / stride 341 when sliding). The data config
    carries its dataset's default this way, so no task branches on a dataset name.

    ``precision`` and ``channels_last`` follow the checkpoint's training (``trained``: its stored
    config) unless given: ``auto`` is bf16 autocast for a run trained (and so validated) under
    ``bf16-mixed``, where this device computes bf16 natively, and float32 for a ``32-true`` run;
    a null ``channels_last`` is the run's ``module.channels_last``. So evaluate's default
    numbers are the ones training validation logged (``val/mIoU``). Without ``trained``: ``auto``
    stays bf16-where-native, and absent means exact float32, contiguous.
    """
    defaults = dict(data_defaults or {})
    unknown = sorted(set(defaults) - set(INFERENCE_KEYS))
    if unknown:
        raise ValueError(
            f"data.inference.{unknown[0]} is not an inference key: the data config may set "
            f"{', '.join(INFERENCE_KEYS)}"
        )

    def pick(key: str) -> Any:
        value = opts.get(key)
        if value is None:
            value = defaults.get(key)
        return _BUILT_IN[key] if value is None else value

    with config_node(key):
        return InferenceSettings(
            mode=str(pick("mode")),  # type: ignore[arg-type]
            scales=tuple(pick("scales")),
            flip=bool(pick("flip")),
            window=int(pick("window")),
            stride=int(pick("stride")),
            precision=_precision(opts.get("precision"), trained),  # type: ignore[arg-type]
            channels_last=_channels_last(opts.get("channels_last"), trained),
        )


def _precision(asked: Any, trained: Mapping[str, Any] | None) -> str:
    """``asked`` (``auto`` | ``bf16`` | ``32``); ``auto`` of a run trained in float32 is ``32``."""
    asked = str(asked or "32")
    if asked != "auto" or trained is None:
        return asked
    trained_precision = str(((trained.get("trainer") or {}).get("precision")) or "32-true")
    return "auto" if trained_precision.startswith("bf16") else "32"


def _channels_last(asked: Any, trained: Mapping[str, Any] | None) -> bool:
    if asked is not None:
        return bool(asked)
    return bool(((trained or {}).get("module") or {}).get("channels_last", False))


def backend_settings(opts: DictConfig, key: str) -> BackendSettings:
    """``BackendSettings`` from the ``eval`` (or ``predict``) node; ``key`` names that node before
    a refusal (``eval: backend must be one of ...``; its ``onnx_cache`` and ``onnx_exporter`` are
    the settings' ``cache_dir`` and ``exporter``)."""
    with config_node(key):
        return BackendSettings(
            backend=str(opts.get("backend", "torch")),
            threads=None if opts.get("threads") is None else int(opts.threads),
            cache_dir=None if opts.get("onnx_cache") is None else str(opts.onnx_cache),
            exporter=str(opts.get("onnx_exporter", "dynamo")),
        )


def checkpoint_digest(path: str, backend: BackendSettings) -> str | None:
    """The checkpoint's SHA-256 before it is loaded, when the backend caches an export of it."""
    if backend.backend == "torch" or not Path(path).is_file():
        return None  # a missing file is reported by the loader
    return file_sha256(path)


__all__ = ["INFERENCE_KEYS", "backend_settings", "checkpoint_digest", "inference_settings"]
