"""Inference backends: the eager PyTorch model, or the same network exported once to ONNX and run
in onnxruntime.

``OnnxRuntimeModel`` has the call shape of a Segmentor (``model(x)["out"]`` = (B, K, H, W) logits
for a uint8 (B, 3, H, W) RGB batch: the graph normalises), so every inference mode of
``segkit.evaluation.inference`` (whole, slide, multi-scale + flip, batched) runs on it unchanged.

**Cache.** The network is exported once per checkpoint and settings into ``onnx_cache`` (default: an
``onnx_cache/`` folder next to the checkpoint) as ``<checkpoint stem>-<key>.onnx``. The key hashes
the checkpoint file's *content* (SHA-256), the output stride the model was re-dilated to, the
exporter, the opset, the torch version and ``CACHE_VERSION``: a retrained or edited checkpoint gets a
new key and is never served an old graph. The key is also stored inside the file and checked on
every load, so a file copied over a cache entry is refused. A new entry is checked against PyTorch
at two sizes (``check_onnx``) before it is renamed into place: readers see complete, verified files.

**Devices.** CPU: onnxruntime's CPU provider with ``threads`` intra-op threads (default: torch's
own thread count, so both backends get the same cores). CUDA: onnxruntime's CUDA provider, which
the ``onnxruntime-gpu`` package provides; without it (or when it fails to load) this is an error,
never a silent run on the CPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from segkit.evaluation.onnx_export import (
    EXPORTERS,
    MIN_SIDE,
    OnnxExportError,
    check_onnx,
    export_onnx,
)
from segkit.optional import require

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")
#: Bump when what the cache holds changes (graph interface, metadata): old entries then miss.
#: 2: the graph takes uint8 images and normalises them itself (1 took normalised float32).
CACHE_VERSION = 2
OPSET = 18
SAMPLE_SIZE = (64, 64)
#: Sizes and tolerance of the check a new cache entry passes (catches a size-frozen graph).
CHECK_SIZES = ((64, 64), (97, 130))
CHECK_ATOL = 1e-3
_KEY_FIELD = "segkit.cache_key"
_CLASSES_FIELD = "segkit.num_classes"


@dataclass(frozen=True)
class BackendSettings:
    """How to run the network (``eval.backend`` / ``predict.backend`` and their companions).

    Args:
        backend: ``torch`` (eager) or ``onnxruntime``.
        threads: CPU threads for either backend; None = torch's current setting.
        onnx_cache: folder of the exported models; None = ``onnx_cache/`` next to the checkpoint.
        onnx_exporter: ``dynamo`` or ``legacy`` (see ``segkit.evaluation.onnx_export``).

    The field names are the ``eval`` / ``predict`` node's keys.
    """

    backend: str = "torch"
    threads: int | None = None
    onnx_cache: str | None = None
    onnx_exporter: str = "dynamo"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.onnx_exporter not in EXPORTERS:
            raise ValueError(
                f"onnx_exporter must be one of {EXPORTERS}, got {self.onnx_exporter!r}"
            )
        if self.threads is not None and int(self.threads) < 1:
            raise ValueError(f"threads must be >= 1 (or None), got {self.threads}")


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count when ``threads`` is given; the count both backends use."""
    if threads is not None:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def import_onnxruntime() -> ModuleType:
    """``onnxruntime``, or a one-line ``MissingExtraError`` (a ValueError) naming the install command."""
    return require("onnxruntime", what="backend='onnxruntime'")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(checkpoint_sha256: str, *, output_stride: int, exporter: str) -> str:
    """Hex key of one export: checkpoint content + everything that shapes the graph."""
    spec = {
        "version": CACHE_VERSION,
        "checkpoint_sha256": checkpoint_sha256,
        "output_stride": int(output_stride),
        "exporter": exporter,
        "opset": OPSET,
        "sample_size": list(SAMPLE_SIZE),
        "torch": torch.__version__,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def cached_onnx(
    model: nn.Module,
    checkpoint: str | Path,
    settings: BackendSettings,
    *,
    loaded_sha256: str | None = None,
) -> tuple[Path, str]:
    """The cache entry for ``model`` (the checkpoint's network, already re-dilated), exporting it
    when absent. Returns its path and key.

    ``loaded_sha256``: the checkpoint's digest taken before ``model`` was loaded from it; a file
    that changed since (rewritten by a running training) is an error, so no entry can hold weights
    other than those its key names.
    """
    checkpoint = Path(checkpoint)
    folder = Path(settings.onnx_cache) if settings.onnx_cache else checkpoint.parent / "onnx_cache"
    digest = file_sha256(checkpoint)
    if loaded_sha256 is not None and digest != loaded_sha256:
        raise ValueError(
            f"checkpoint {checkpoint} changed while it was being loaded (is a training rewriting "
            "it?): run again once it is complete"
        )
    key = cache_key(digest, output_stride=_output_stride(model), exporter=settings.onnx_exporter)
    path = folder / f"{checkpoint.stem}-{key[:16]}.onnx"
    if path.is_file():
        log.info("onnxruntime backend: cached model %s", path)
        return path, key
    log.info(
        "onnxruntime backend: exporting %s once (%s exporter) -> %s",
        checkpoint, settings.onnx_exporter, path,
    )  # fmt: skip
    partial = folder / f".{path.stem}.{uuid.uuid4().hex[:8]}.partial.onnx"
    start = time.perf_counter()
    with torch.inference_mode():  # onnxruntime may leave the class dimension symbolic
        classes = model(torch.zeros(1, 3, *SAMPLE_SIZE, dtype=torch.uint8))["out"].shape[1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(
            model, partial, exporter=settings.onnx_exporter, opset=OPSET, sample_size=SAMPLE_SIZE,
            metadata={_KEY_FIELD: key, _CLASSES_FIELD: str(classes),
                      "segkit.checkpoint": str(checkpoint),
                      "segkit.output_stride": str(_output_stride(model))},
        )  # fmt: skip
        check_onnx(model, partial, CHECK_SIZES, atol=CHECK_ATOL)
        partial.replace(path)
    except OnnxExportError as err:
        other = next(e for e in EXPORTERS if e != settings.onnx_exporter)
        raise OnnxExportError(
            f"backend='onnxruntime': {err}: use backend='torch' for this model, or try "
            f"onnx_exporter={other!r}",
            err.op,
        ) from None
    except OSError as err:
        raise ValueError(
            f"cannot write the ONNX cache {folder} ({err.strerror or err}): set onnx_cache to a "
            "writable folder"
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    log.info("onnxruntime backend: exported in %.1f s", time.perf_counter() - start)
    return path, key


def _output_stride(model: nn.Module) -> int:
    return int(getattr(model, "output_stride", 0))


def _providers(ort: ModuleType, device: torch.device) -> list[Any]:
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type != "cuda":
        raise ValueError(f"backend='onnxruntime' runs on cpu or cuda, not {device}")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ValueError(
            f"backend='onnxruntime' on {device} needs onnxruntime's CUDA provider, which this "
            f"onnxruntime {ort.__version__} lacks (it has {ort.get_available_providers()}): "
            "pip install onnxruntime-gpu, or use device='cpu' or backend='torch'"
        )
    # The CPU provider only takes nodes the CUDA provider cannot run (onnxruntime's partitioning).
    return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]


def open_session(path: str | Path, *, key: str, device: torch.device, threads: int) -> Any:
    """An onnxruntime session on ``path`` that must carry cache key ``key``."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    providers = _providers(ort, device)
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own pybind types
        raise ValueError(
            f"cached ONNX model {path} is unreadable or corrupt ({type(err).__name__}): delete it; "
            "the next run exports it again"
        ) from None
    found = session.get_modelmeta().custom_metadata_map.get(_KEY_FIELD)
    if found != key:
        raise ValueError(
            f"cached ONNX model {path} was not exported from this checkpoint with these settings "
            f"(its key {str(found)[:16]} != {key[:16]}): delete it; the next run exports it again"
        )
    if device.type == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise ValueError(
            f"onnxruntime could not start its CUDA provider on {device} (see its log above): "
            "fix the CUDA/cuDNN install, or use device='cpu' or backend='torch'"
        )
    return session


class OnnxRuntimeModel:
    """An onnxruntime session with the Segmentor call shape: ``model(x) -> {"out": logits}``.

    Args:
        session: an ``onnxruntime.InferenceSession`` (input ``image``, output ``logits``).
        device: where inputs come from and outputs go (the session's provider device).
        path: the ONNX file (reported in metrics.json).
        output_stride: the output stride the graph was exported at.
        num_classes: K, the logits' channels.
    """

    def __init__(
        self,
        session: Any,
        *,
        device: torch.device,
        path: Path,
        output_stride: int,
        num_classes: int,
    ) -> None:
        self.session = session
        self.num_classes = num_classes
        self.device = torch.device(device)
        self.path = Path(path)
        self.output_stride = output_stride

    def eval(self) -> OnnxRuntimeModel:
        return self

    def to(self, device: torch.device | str, *args: Any, **kwargs: Any) -> OnnxRuntimeModel:
        if torch.device(device).type != self.device.type:
            raise ValueError(f"this onnxruntime model runs on {self.device}, not on {device}")
        return self

    def __call__(self, image: Tensor) -> dict[str, Tensor]:
        """(B, 3, H, W) uint8 RGB -> {"out": (B, K, H, W) float32 logits}."""
        if image.dtype != torch.uint8:
            raise TypeError(f"the exported model takes uint8 images, got {image.dtype}")
        if min(image.shape[-2:]) < MIN_SIDE:
            raise ValueError(
                f"the exported model takes H, W >= {MIN_SIDE} px, got {tuple(image.shape[-2:])}: "
                "use a larger window / larger scales, or backend='torch'"
            )
        if self.device.type == "cuda":
            return {"out": self._run_cuda(image)}
        array = image.detach().cpu().contiguous().numpy()
        return {"out": torch.from_numpy(self.session.run(["logits"], {"image": array})[0])}

    def _run_cuda(self, image: Tensor) -> Tensor:
        """Device-to-device through I/O binding: torch buffers handed to onnxruntime, no host copy."""
        image = image.detach().to(self.device).contiguous()
        out = torch.empty((image.shape[0], self.num_classes, *image.shape[-2:]), device=self.device)
        index = self.device.index or 0
        binding = self.session.io_binding()
        binding.bind_input("image", "cuda", index, np.uint8, tuple(image.shape), image.data_ptr())
        binding.bind_output("logits", "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        # onnxruntime runs on its own stream: the input must be complete before it reads it.
        torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        return out

    def __repr__(self) -> str:
        return f"OnnxRuntimeModel({self.path}, {self.session.get_providers()[0]})"


def inference_model(
    model: nn.Module,
    checkpoint: str | Path,
    *,
    device: torch.device,
    settings: BackendSettings,
    loaded_sha256: str | None = None,
) -> nn.Module | OnnxRuntimeModel:
    """What the inference functions should call: ``model`` itself (torch backend) or its cached
    ONNX export in an onnxruntime session (onnxruntime backend), on ``device``.

    ``loaded_sha256``: see ``cached_onnx`` (give ``file_sha256(checkpoint)`` taken before loading).
    """
    threads = apply_threads(settings.threads)
    if settings.backend == "torch":
        return model.eval().to(device)
    import_onnxruntime()  # before the (slow) export
    model = model.eval().cpu()
    path, key = cached_onnx(model, checkpoint, settings, loaded_sha256=loaded_sha256)
    session = open_session(path, key=key, device=torch.device(device), threads=threads)
    log.info("onnxruntime backend: %s, %d threads", session.get_providers()[0], threads)
    classes = int(session.get_modelmeta().custom_metadata_map[_CLASSES_FIELD])
    return OnnxRuntimeModel(
        session, device=torch.device(device), path=path, output_stride=_output_stride(model),
        num_classes=classes,
    )  # fmt: skip


__all__ = [
    "BACKENDS",
    "CACHE_VERSION",
    "BackendSettings",
    "OnnxRuntimeModel",
    "apply_threads",
    "cache_key",
    "cached_onnx",
    "file_sha256",
    "import_onnxruntime",
    "inference_model",
    "open_session",
]
