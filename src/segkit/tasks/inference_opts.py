"""The inference and backend keys shared by ``evaluate`` (``eval.*``) and ``predict`` (``predict.*``):
one builder each, from the config node to the library's settings objects."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from segkit.evaluation.inference import InferenceSettings
from segkit.evaluation.onnx_backend import BackendSettings, file_sha256


def inference_settings(opts: DictConfig) -> InferenceSettings:
    """``InferenceSettings`` from the ``eval`` (or ``predict``) node (its checks name the keys)."""
    return InferenceSettings(
        mode=str(opts.get("mode", "whole")),  # type: ignore[arg-type]
        scales=tuple(opts.get("scales", [1.0])),
        flip=bool(opts.get("flip", False)),
        window=int(opts.get("window", 513)),
        stride=int(opts.get("stride", 341)),
    )


def backend_settings(opts: DictConfig, key: str) -> BackendSettings:
    """``BackendSettings`` from the ``eval`` (or ``predict``) node; ``key`` names it in messages."""
    return BackendSettings(
        backend=str(opts.get("backend", "torch")),
        threads=None if opts.get("threads") is None else int(opts.threads),
        cache_dir=None if opts.get("onnx_cache") is None else str(opts.onnx_cache),
        exporter=str(opts.get("onnx_exporter", "dynamo")),
        key=key,
    )


def checkpoint_digest(path: str, backend: BackendSettings) -> str | None:
    """The checkpoint's SHA-256 before it is loaded, when the backend caches an export of it."""
    if backend.backend == "torch" or not Path(path).is_file():
        return None  # a missing file is reported by the loader
    return file_sha256(path)


__all__ = ["backend_settings", "checkpoint_digest", "inference_settings"]
