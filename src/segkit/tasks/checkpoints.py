"""The one prelude of the checkpoint tasks: a checkpoint opened for inference.

Shared by evaluate and predict (:func:`open_for_inference`: the ``eval.*`` / ``predict.*``
inference and backend keys, the checkpoint's network on this process's device, torchrun's process
group), and by export, analyze and the explorer (:func:`load_trained`: checkpoint -> Segmentor and
its classes).

A segkit checkpoint is a Lightning checkpoint written by the train task: the composed, resolved run
config as a plain dict under ``ckpt["hyper_parameters"]["cfg"]`` and the network weights as
``state_dict`` keys ``model.*``.

``evaluate`` and ``predict`` under ``torchrun``: ``torchrun --nproc-per-node=N scripts/evaluate.py
...`` starts N copies of the script with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
address in the environment. Each copy joins the process group (gloo on the CPU, NCCL on CUDA, one
GPU per local rank), works on its share of the images, and rank 0 writes the outputs. Every copy
runs Hydra itself, so they only share a run folder when it is named on the command line
(``hydra.run.dir=...``): :meth:`Ranks.agree_on_folder` checks that before anything is written.
Started without torchrun, nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig
from torch import nn

from segkit.cli.jobs import instantiate_user
from segkit.cli.preflight import config_node
from segkit.data.classes import ClassInfo
from segkit.evaluation.inference import InferenceSettings, bf16_native, check_precision
from segkit.evaluation.onnx_backend import BackendSettings, file_sha256, inference_model
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


# torchrun -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ranks:
    """This process's place in the job: ``rank`` of ``world_size``, computing on ``device``."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes the run's files; the others only compute."""
        return self.rank == 0

    def gather(self, value: Any) -> list[Any]:
        """``value`` of every rank, in rank order (a collective: every rank must call it)."""
        if self.world_size == 1:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def agree_on_folder(self, path: str | Path, key: str) -> None:
        """Raise (on every rank) unless all ranks were given the same ``path`` (config ``key``)."""
        folders = self.gather(str(Path(path).resolve()))
        if len(set(folders)) > 1:
            raise ValueError(
                f"the {self.world_size} torchrun processes got different run folders ({key}: "
                f"{', '.join(sorted(set(folders)))}): each process runs Hydra, so name the folder "
                "on the command line, e.g. hydra.run.dir=logs/<task>/runs/<name>"
            )


@contextmanager
def torchrun_ranks(device: torch.device) -> Iterator[Ranks]:
    """The process group torchrun describes (joined here, left on exit), or a single process.

    On CUDA each process takes the GPU of its ``LOCAL_RANK``; a group already initialised by the
    caller is used as it is.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield Ranks(0, 1, device)
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), device)
    finally:
        if owned:
            dist.destroy_process_group()


# the eval.* / predict.* keys ------------------------------------------------------------------
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


def eager_numerics(
    precision: Any, channels_last: Any, trained: Mapping[str, Any] | None, device: torch.device
) -> tuple[str, bool]:
    """(``bf16`` | ``32``, channels_last) for running a checkpoint's eager network on ``device``
    (the explorer), by the rule of :func:`inference_settings`: ``precision`` ``auto`` is bf16
    autocast for a run trained under ``bf16-mixed`` where ``device`` computes bf16 natively, else
    float32; a null ``channels_last`` is the run's ``module.channels_last``.

    Raises:
        ValueError: ``precision`` is not one of ``auto``, ``bf16``, ``32``.
    """
    resolved = _precision(check_precision(precision), trained)
    if resolved == "auto":
        resolved = "bf16" if bf16_native(device) else "32"
    return resolved, _channels_last(channels_last, trained)


def backend_settings(opts: DictConfig, key: str) -> BackendSettings:
    """``BackendSettings`` from the ``eval`` (or ``predict``) node; ``key`` names that node before
    a refusal (``eval: backend must be one of ...``; the settings' fields are the node's keys)."""
    with config_node(key):
        return BackendSettings(
            backend=str(opts.get("backend", "torch")),
            threads=None if opts.get("threads") is None else int(opts.threads),
            onnx_cache=None if opts.get("onnx_cache") is None else str(opts.onnx_cache),
            onnx_exporter=str(opts.get("onnx_exporter", "dynamo")),
        )


def checkpoint_digest(path: str, backend: BackendSettings) -> str | None:
    """The checkpoint's SHA-256 before it is loaded, when the backend caches an export of it."""
    if backend.backend == "torch" or not Path(path).is_file():
        return None  # a missing file is reported by the loader
    return file_sha256(path)


# the prelude of evaluate and predict ------------------------------------------------------------
@dataclass(frozen=True)
class InferenceCheckpoint:
    """A checkpoint opened for inference on one device: ``net`` is what the inference functions
    call (the Segmentor, or its onnxruntime stand-in of the same call shape), ``cfg`` the stored
    run config, ``classes`` the checkpoint's classes, ``settings`` and ``backend`` what the
    ``eval`` / ``predict`` node asked for."""

    net: Any
    cfg: dict[str, Any]
    classes: ClassInfo
    settings: InferenceSettings
    backend: BackendSettings


def trained_data_defaults(stored: dict[str, Any]) -> Mapping[str, Any] | None:
    """The inference defaults of the checkpoint's own data config (``data.inference``)."""
    return (stored.get("data") or {}).get("inference")


def open_for_inference(
    path: str,
    opts: DictConfig,
    *,
    key: str,
    device: torch.device,
    data_defaults: Callable[[dict[str, Any]], Mapping[str, Any] | None] = trained_data_defaults,
) -> InferenceCheckpoint:
    """Checkpoint ``path`` ready for inference on ``device``, as the ``opts`` node (``eval`` or
    ``predict``, named ``key`` in messages) asks: its backend keys, ``output_stride`` (re-dilation
    of the loaded network) and inference keys, a null one taking the dataset's default
    (``data_defaults(stored run config)``; by default the training data's, e.g. Cityscapes' sliding
    window) and then the built-in one (:func:`inference_settings`). When the backend caches an ONNX
    export, the checkpoint's SHA-256 is taken before it is loaded (the cache key is the file read).
    """
    backend = backend_settings(opts, key)
    digest = checkpoint_digest(path, backend)
    trained = load_trained(path, output_stride=opts.get("output_stride"))
    settings = inference_settings(opts, data_defaults(trained.cfg), trained=trained.cfg, key=key)
    with config_node(key):  # the backend's settings are its keys
        net = inference_model(
            trained.model, path, device=device, settings=backend, loaded_sha256=digest
        )
    return InferenceCheckpoint(net, trained.cfg, trained.classes, settings, backend)


__all__ = [
    "INFERENCE_KEYS",
    "STATE_PREFIX",
    "InferenceCheckpoint",
    "Ranks",
    "TrainedModel",
    "backend_settings",
    "checkpoint_classes",
    "checkpoint_digest",
    "checkpoint_num_classes",
    "eager_numerics",
    "inference_settings",
    "load_model_weights",
    "load_segmentor",
    "load_trained",
    "open_for_inference",
    "read_checkpoint",
    "resolve_device",
    "stored_data",
    "torchrun_ranks",
    "trained_data_defaults",
]
