"""Evaluation forward on the CPU, three backends side by side: torch float32 (NCHW), torch bf16
autocast + channels_last (what ``eval.precision=auto`` picks on a bf16 CPU) and onnxruntime (the
exported float32 graph, ``eval.backend=onnxruntime``), through ``segkit.evaluation.inference.infer``
-- the call ``evaluate`` and ``predict`` make per batch -- on one fixed uint8 batch per size.
The onnxruntime model is exported once (its one-off seconds are recorded) into a temporary cache.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from _helpers import interleave, least_disturbed
from segkit.evaluation.inference import InferenceSettings, infer
from segkit.evaluation.onnx_backend import BackendSettings, inference_model

BACKENDS = ("torch fp32", "torch bf16 + channels_last", "onnxruntime")
SETTINGS = {
    "torch fp32": InferenceSettings(precision="32", channels_last=False),
    "torch bf16 + channels_last": InferenceSettings(precision="bf16", channels_last=True),
    "onnxruntime": InferenceSettings(),
}


def _timed(model, image: torch.Tensor, settings: InferenceSettings) -> Callable[[], float]:  # noqa: ANN001
    def call() -> float:
        start = time.perf_counter()
        infer(model, image, settings)
        return time.perf_counter() - start

    return call


def run(
    build: Callable[[], nn.Module],
    sizes: list[tuple[int, int]],
    batch: int,
    repeats: int,
    exporter: str = "dynamo",
) -> dict[str, object]:
    """Least-disturbed seconds per batch of each backend at each size (interleaved, after one
    warm-up call each), images/s and each backend's speed over torch fp32."""
    torch.manual_seed(0)
    model = build().eval()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.pt"  # the cache key is the file's digest
        torch.save(model.state_dict(), ckpt)
        start = time.perf_counter()
        settings = BackendSettings("onnxruntime", threads=torch.get_num_threads(), onnx_cache=tmp,
                                   onnx_exporter=exporter)  # fmt: skip
        ort = inference_model(copy.deepcopy(model), ckpt, device=torch.device("cpu"),
                              settings=settings)  # fmt: skip
        export_s = time.perf_counter() - start
        models = {"torch fp32": model, "torch bf16 + channels_last": copy.deepcopy(model),
                  "onnxruntime": ort}  # fmt: skip
        g = torch.Generator().manual_seed(0)
        jobs = {}
        for h, w in sizes:
            image = torch.randint(0, 256, (batch, 3, h, w), dtype=torch.uint8, generator=g)
            for name in BACKENDS:
                jobs[f"{name} @ {h}x{w}"] = _timed(models[name], image, SETTINGS[name])
                jobs[f"{name} @ {h}x{w}"]()  # warm-up
        times = interleave(jobs, repeats)
    rows = []
    for h, w in sizes:
        base = least_disturbed(times[f"torch fp32 @ {h}x{w}"])["best"]
        for name in BACKENDS:
            t = least_disturbed(times[f"{name} @ {h}x{w}"])
            rows.append({"backend": name, "size": f"{h}x{w}", "batch": batch, "batch_seconds": t,
                         "images_per_s": batch / t["best"], "vs_torch_fp32": base / t["best"]})  # fmt: skip
    return {"onnx_export_seconds": export_s, "onnx_exporter": exporter, "rows": rows}


__all__ = ["BACKENDS", "run"]
