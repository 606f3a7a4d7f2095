"""``export`` task: a checkpoint's network as one self-contained ONNX file with dynamic batch,
height and width.

The graph maps a uint8 RGB image batch ``"image"`` (N, 3, H, W) to float32 ``"logits"``
(N, K, H, W) and normalises inside (the model's mean / std); the weights are inside the file (no ``.onnx.data`` side file), so the file alone can
be copied and loaded. Exporters (``export.exporter``): ``dynamo`` (default, torch's maintained
exporter) or ``legacy`` (TorchScript tracing) — see ``segkit.evaluation.onnx_export``.

After writing, the model runs in onnxruntime at ``export.check_sizes`` and is compared with PyTorch;
a mismatch above ``export.atol`` is an error (so a size-specialised graph cannot pass). The file's
metadata and ``export.json`` carry the checkpoint's classes (names, palette, void) as JSON.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from segkit.cli.jobs import save_config, save_json
from segkit.cli.launch import echo
from segkit.evaluation.onnx_backend import file_sha256
from segkit.evaluation.onnx_export import (
    EXPORTERS,
    LogitsOnly,
    OnnxExportError,
    check_onnx,
    export_onnx,
)
from segkit.progress import progress
from segkit.tasks.checkpoints import load_trained

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("onnx",)


def check_output(output: str | Path, ckpt_path: str | Path) -> None:
    """Refuse an ``output`` that is a folder or an existing file (the checkpoint itself, an earlier
    export): export writes one new file and never replaces one it did not create."""
    out = Path(output)
    if out.is_dir():
        raise ValueError(
            f"output={out} is a folder: output must be the path of the ONNX file to write, "
            f"e.g. output={out / 'model.onnx'}"
        )
    if out.exists():
        what = (
            "the checkpoint being exported"
            if out.resolve() == Path(ckpt_path).resolve()
            else ("an existing file")
        )
        raise FileExistsError(
            f"output={out} is {what}: export never overwrites a file; give a new path "
            "(the default is <run folder>/model.onnx) or delete the old file first"
        )


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.ckpt_path`` to ``cfg.output``; returns (and writes ``export.json``) a summary."""
    if str(cfg.format) not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {cfg.format!r}")
    opts = cfg.export
    if str(opts.exporter) not in EXPORTERS:
        raise ValueError(f"export.exporter must be one of {EXPORTERS}, got {opts.exporter!r}")
    check_output(cfg.output, cfg.ckpt_path)
    digest = file_sha256(cfg.ckpt_path) if Path(cfg.ckpt_path).is_file() else ""
    trained = load_trained(cfg.ckpt_path, output_stride=opts.get("output_stride"))
    model, classes = trained.model, trained.classes
    save_config(cfg, cfg.paths.output_dir)
    try:
        path = export_onnx(
            model,
            cfg.output,
            exporter=str(opts.exporter),
            opset=int(opts.opset),
            sample_size=list(opts.sample_size),
            metadata={"segkit.checkpoint": str(cfg.ckpt_path), "segkit.checkpoint_sha256": digest,
                      "segkit.output_stride": str(int(model.output_stride)),
                      "segkit.classes": json.dumps(classes.to_dict())},
        )  # fmt: skip
    except OnnxExportError as err:
        other = next(e for e in EXPORTERS if e != str(opts.exporter))
        raise OnnxExportError(
            f"{cfg.ckpt_path}: {err} (try export.exporter={other})", err.op
        ) from None
    sizes = [list(s) for s in opts.check_sizes]
    try:
        with progress("checking ONNX against PyTorch", len(sizes), unit="size") as advance:
            diffs = check_onnx(model, path, sizes, atol=float(opts.atol), advance=advance)
    except ValueError as err:
        path.unlink(missing_ok=True)  # a file that fails the check is no deliverable
        raise ValueError(f"{err} (export.atol={opts.atol}); {path} was removed") from None
    summary = {
        "ckpt_path": str(cfg.ckpt_path),
        "output": str(path),
        "format": str(cfg.format),
        "exporter": str(opts.exporter),
        "opset": int(opts.opset),
        "output_stride": int(model.output_stride),
        "num_classes": classes.num_classes,
        "classes": classes.to_dict(),
        "input": {
            "name": "image",
            "shape": ["N", 3, "H", "W"],
            "dtype": "uint8",
            "range": [0, 255],
            "normalised_inside": {"mean": list(model.input_mean), "std": list(model.input_std)},
        },
        "output_names": ["logits"],
        "max_abs_diff": diffs,
        "size_mb": round(path.stat().st_size / 2**20, 3),  # the whole model: weights inside
        "checkpoint_sha256": digest,
    }
    save_json(summary, Path(cfg.paths.output_dir) / "export.json")
    echo(
        f"exported {path} ({summary['size_mb']} MB, one self-contained file); "
        f"onnxruntime vs torch max |diff|: {diffs}"
    )
    return summary


__all__ = [
    "EXPORTERS",
    "FORMATS",
    "LogitsOnly",
    "check_onnx",
    "check_output",
    "export",
    "export_onnx",
]
