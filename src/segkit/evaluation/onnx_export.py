"""A Segmentor as one self-contained ONNX file with dynamic batch, height and width.

The graph maps a uint8 RGB image batch ``"image"`` (N, 3, H, W) to float32 ``"logits"`` (N, K, H, W);
the normalisation (the Segmentor's mean / std) is inside the graph, so the file is all a runtime
needs. Exporters:

* ``dynamo`` (default): ``torch.onnx.export(dynamo=True)`` with ``torch.export.Dim`` for N, H, W —
  the exporter torch maintains (the TorchScript one is deprecated since torch 2.9); it proves the
  graph shape-generic or fails loudly instead of silently baking a size in. Slow (~20 s on a CPU).
* ``legacy``: TorchScript tracing with ``dynamic_axes``; ~15x faster, but a Python int computed
  from a shape would be frozen silently — which is why ``check_onnx`` compares against PyTorch.

The weights are stored inside the ``.onnx`` file (no ``.onnx.data`` side file): a copied file loads on
its own. ONNX's protobuf caps one file at 2 GB; every segkit model is far below, a larger one is an
error. The file is written under a temporary name in the target folder and renamed when complete,
so a reader never sees a half-written model. Used by the export task and the onnxruntime backend.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from segkit.optional import require

EXPORTERS: tuple[str, ...] = ("dynamo", "legacy")
#: Smallest H / W the exported graph accepts (the dynamo exporter needs a range).
MIN_SIDE, MAX_SIDE = 32, 8192
#: ONNX's protobuf limit for one file; weights above it would need an external data file.
SINGLE_FILE_LIMIT = 2**31 - 2**24  # 2 GiB less 16 MiB for the graph itself
#: Loggers of the dynamo exporter's optimiser that print one INFO line per initializer / rewrite.
_CHATTY_LOGGERS = ("onnxscript", "onnx_ir")
_OP_PATTERNS = (
    re.compile(r"OpOverload\(op='aten\.(\w+)'"),
    re.compile(r"torch\.ops\.aten\.(\w+)"),
    re.compile(r"'aten::(\w+)'"),
    re.compile(r"aten(?:::|\.)(\w+)"),
)


class OnnxExportError(ValueError):
    """The exporter could not convert the model; ``op`` names the operator when it is known."""

    def __init__(self, message: str, op: str | None = None) -> None:
        super().__init__(message)
        self.op = op


class LogitsOnly(nn.Module):
    """Segmentor -> a module returning only ``out`` (ONNX outputs are tensors, not dicts)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return self.model(image)["out"]


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporter's per-initializer INFO lines and the TorchScript deprecation notice."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():  # the deprecation notice is the documented trade-off
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def failed_op(err: BaseException) -> str | None:
    """The aten operator an exporter error names (``aten::cummax``), searching the cause chain."""
    seen: BaseException | None = err
    while seen is not None:
        text = str(seen)
        for pattern in _OP_PATTERNS:
            match = pattern.search(text)
            if match:
                return f"aten::{match.group(1)}"
        seen = seen.__cause__ or seen.__context__
    return None


def _weight_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _write(wrapped: nn.Module, path: str, exporter: str, opset: int, sample: Tensor) -> None:
    names = {"input_names": ["image"], "output_names": ["logits"], "opset_version": int(opset)}
    if exporter == "dynamo":
        dims = {
            0: torch.export.Dim("batch", min=1, max=1024),
            2: torch.export.Dim("height", min=MIN_SIDE, max=MAX_SIDE),
            3: torch.export.Dim("width", min=MIN_SIDE, max=MAX_SIDE),
        }
        torch.onnx.export(
            wrapped, (sample,), path, dynamo=True, dynamic_shapes={"image": dims},
            external_data=False, verbose=False, **names,
        )  # fmt: skip
    else:
        axes = {0: "batch", 2: "height", 3: "width"}
        torch.onnx.export(
            wrapped, (sample,), path, dynamo=False,
            dynamic_axes={"image": axes, "logits": axes}, **names,
        )  # fmt: skip


def _add_metadata(path: str, metadata: Mapping[str, str]) -> None:
    onnx = require("onnx", what="writing ONNX metadata")  # heavy import, only needed here
    proto = onnx.load(path)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    onnx.save(proto, path)


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    exporter: str = "dynamo",
    opset: int = 18,
    sample_size: Sequence[int] = (64, 64),
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``model`` (Segmentor contract, eval mode) as one ONNX file with dynamic N, H, W.

    ``metadata`` goes into the model's ``metadata_props`` (read back by onnxruntime's
    ``get_modelmeta().custom_metadata_map``). Raises ``OnnxExportError`` naming the operator the
    exporter could not convert, ValueError for bad settings or a model over the single-file limit.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    # torch's exporters import these themselves, deep inside; say here what to install.
    require("onnx", what="ONNX export")
    if exporter == "dynamo":
        require("onnxscript", what="the dynamo ONNX exporter")
    h, w = (int(s) for s in sample_size)
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"sample_size must be >= {MIN_SIDE} px per side, got {[h, w]}")
    size = _weight_bytes(model)
    if size > SINGLE_FILE_LIMIT:
        raise ValueError(
            f"the model's weights take {size / 2**30:.2f} GiB, over ONNX's 2 GiB single-file limit; "
            "segkit writes self-contained files only"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    # Batch 2, not 1: torch.export specialises dimensions of size 0/1 to constants.
    sample = torch.randint(0, 256, (2, 3, h, w), dtype=torch.uint8)
    try:
        with quiet_exporter():
            try:
                _write(LogitsOnly(model).eval(), str(tmp), exporter, opset, sample)
            except Exception as err:  # noqa: BLE001 - exporters raise many types; all mean "cannot convert"
                op = failed_op(err)
                what = f"operator {op}" if op else f"{type(err).__name__}: {_first_line(err)}"
                raise OnnxExportError(
                    f"the {exporter} ONNX exporter (opset {opset}) cannot convert this model: {what}",
                    op=op,
                ) from err
        if metadata:
            _add_metadata(str(tmp), metadata)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:200] if lines else "no message"


def check_onnx(
    model: nn.Module,
    path: str | Path,
    sizes: Sequence[Sequence[int]],
    *,
    atol: float,
    advance: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Run the ONNX file in onnxruntime on random uint8 images at each (H, W);
    {"HxW": max |onnx - torch|}.

    ``advance(1)`` is called after each size (a progress bar). Raises ValueError when a
    difference exceeds ``atol`` or the output shape is wrong.
    """
    ort = require("onnxruntime", what="the ONNX file's check in onnxruntime")  # heavy import

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    diffs: dict[str, float] = {}
    for h, w in ((int(a), int(b)) for a, b in sizes):
        x = torch.randint(0, 256, (2, 3, h, w), generator=generator, dtype=torch.uint8)
        with torch.inference_mode():
            ref = model(x)["out"].numpy()
        got = session.run(["logits"], {"image": x.numpy()})[0]
        if got.shape != ref.shape:
            raise ValueError(
                f"{path}: ONNX output {got.shape} != PyTorch {ref.shape} at {h}x{w}; the graph is "
                "not size-generic (try the dynamo exporter)"
            )
        diffs[f"{h}x{w}"] = float(np.abs(got - ref).max())
        if diffs[f"{h}x{w}"] > atol:
            raise ValueError(
                f"{path}: ONNX differs from PyTorch by {diffs[f'{h}x{w}']:.3g} > {atol} at {h}x{w} "
                "(try the other exporter)"
            )
        if advance is not None:
            advance(1)
    return diffs


__all__ = [
    "EXPORTERS",
    "MAX_SIDE",
    "MIN_SIDE",
    "LogitsOnly",
    "OnnxExportError",
    "check_onnx",
    "export_onnx",
    "failed_op",
    "quiet_exporter",
]
