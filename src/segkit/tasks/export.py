"""``export`` task: a checkpoint's network as ONNX with dynamic batch, height and width.

The graph maps an ImageNet-normalised float32 image batch ``"image"`` (N, 3, H, W) to ``"logits"``
(N, K, H, W). Exporters (``export.exporter``):

* ``dynamo`` (default): ``torch.onnx.export(dynamo=True)`` with ``torch.export.Dim`` for N, H, W —
  the exporter torch maintains (the TorchScript one is deprecated since torch 2.9); it proves the
  graph shape-generic or fails loudly instead of silently baking a size in. Slower (~15 s on a CPU).
* ``legacy``: TorchScript tracing with ``dynamic_axes``; fast, but a Python int computed from a
  shape would be frozen silently — which is why every export is checked below.

After writing, the model runs in onnxruntime at ``export.check_sizes`` and is compared with PyTorch;
a mismatch above ``export.atol`` is an error (so a size-specialised graph cannot pass).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from segkit.tasks._common import save_config, save_json
from segkit.tasks.checkpoints import load_segmentor

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("onnx",)
EXPORTERS: tuple[str, ...] = ("dynamo", "legacy")
#: Smallest H / W the exported graph accepts (the dynamo exporter needs a range).
MIN_SIDE, MAX_SIDE = 32, 8192


class LogitsOnly(nn.Module):
    """Segmentor -> a module returning only ``out`` (ONNX outputs are tensors, not dicts)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return self.model(image)["out"]


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    exporter: str = "dynamo",
    opset: int = 18,
    sample_size: Sequence[int] = (64, 64),
) -> Path:
    """Write ``model`` (Segmentor contract, eval mode) as ONNX with dynamic N, H, W."""
    if exporter not in EXPORTERS:
        raise ValueError(f"export.exporter must be one of {EXPORTERS}, got {exporter!r}")
    h, w = (int(s) for s in sample_size)
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"export.sample_size must be >= {MIN_SIDE} px per side, got {[h, w]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = LogitsOnly(model).eval()
    # Batch 2, not 1: torch.export specialises dimensions of size 0/1 to constants.
    sample = torch.randn(2, 3, h, w)
    names = {"input_names": ["image"], "output_names": ["logits"], "opset_version": int(opset)}
    if exporter == "dynamo":
        dims = {
            0: torch.export.Dim("batch", min=1, max=1024),
            2: torch.export.Dim("height", min=MIN_SIDE, max=MAX_SIDE),
            3: torch.export.Dim("width", min=MIN_SIDE, max=MAX_SIDE),
        }
        torch.onnx.export(
            wrapped, (sample,), str(path), dynamo=True, dynamic_shapes={"image": dims},
            verbose=False, **names,
        )  # fmt: skip
    else:
        axes = {0: "batch", 2: "height", 3: "width"}
        with warnings.catch_warnings():  # the deprecation notice is the documented trade-off
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                wrapped, (sample,), str(path), dynamo=False,
                dynamic_axes={"image": axes, "logits": axes}, **names,
            )  # fmt: skip
    return path


def check_onnx(
    model: nn.Module, path: str | Path, sizes: Sequence[Sequence[int]], *, atol: float
) -> dict[str, float]:
    """Run the ONNX file in onnxruntime at each (H, W); {"HxW": max |onnx - torch|}.

    Raises ValueError when a difference exceeds ``atol`` or the output shape is wrong.
    """
    import onnxruntime as ort  # heavy import, only needed here

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    diffs: dict[str, float] = {}
    for h, w in ((int(a), int(b)) for a, b in sizes):
        x = torch.randn(2, 3, h, w, generator=generator)
        with torch.inference_mode():
            ref = model(x)["out"].numpy()
        got = session.run(["logits"], {"image": x.numpy()})[0]
        if got.shape != ref.shape:
            raise ValueError(
                f"{path}: ONNX output {got.shape} != PyTorch {ref.shape} at {h}x{w}; the graph is "
                "not size-generic (try export.exporter=dynamo)"
            )
        diffs[f"{h}x{w}"] = float(np.abs(got - ref).max())
        if diffs[f"{h}x{w}"] > atol:
            raise ValueError(
                f"{path}: ONNX differs from PyTorch by {diffs[f'{h}x{w}']:.3g} > export.atol={atol} "
                f"at {h}x{w} (try the other export.exporter)"
            )
    return diffs


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.ckpt_path`` to ``cfg.output``; returns (and writes ``export.json``) a summary."""
    if str(cfg.format) not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {cfg.format!r}")
    opts = cfg.export
    model, stored = load_segmentor(cfg.ckpt_path, output_stride=opts.get("output_stride"))
    save_config(cfg, cfg.paths.output_dir)
    path = export_onnx(
        model,
        cfg.output,
        exporter=str(opts.exporter),
        opset=int(opts.opset),
        sample_size=list(opts.sample_size),
    )
    diffs = check_onnx(model, path, [list(s) for s in opts.check_sizes], atol=float(opts.atol))
    summary = {
        "ckpt_path": str(cfg.ckpt_path),
        "output": str(path),
        "format": str(cfg.format),
        "exporter": str(opts.exporter),
        "opset": int(opts.opset),
        "output_stride": int(model.output_stride),
        "num_classes": int(stored["model"]["num_classes"]),
        "input": {"name": "image", "shape": ["N", 3, "H", "W"], "normalisation": "imagenet"},
        "output_names": ["logits"],
        "max_abs_diff": diffs,
        "size_mb": round(path.stat().st_size / 2**20, 3),
    }
    save_json(summary, Path(cfg.paths.output_dir) / "export.json")
    print(f"exported {path} ({summary['size_mb']} MB); onnxruntime vs torch max |diff|: {diffs}")
    return summary


__all__ = ["EXPORTERS", "FORMATS", "LogitsOnly", "check_onnx", "export", "export_onnx"]
