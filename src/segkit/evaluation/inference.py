"""Inference on uint8 image batches: whole image, sliding window, multi-scale + flip.

All functions take a model with the Segmentor call shape (``model(x)["out"]`` = (B, K, H, W) logits
at the input size, for RGB uint8 ``x``: the model normalises) and a uint8 batch ``(B, 3, H, W)``,
and return float32 class scores
``(B, K, H, W)`` at the input size; ``scores.argmax(1)`` is the prediction. The model is an eager
``nn.Module`` or any callable of that shape, e.g. ``segkit.evaluation.onnx_backend.OnnxRuntimeModel``
(the same network in onnxruntime): every mode below then runs on that backend unchanged.

* ``whole``: one forward pass of the (padded) batch; scores are logits.
* ``slide``: overlapping ``window`` x ``window`` crops every ``stride`` pixels; the logits of the
  crops are summed into place and divided by how many crops cover each pixel. A window at least as
  large as the image is one crop = the whole image.
* multi-scale + flip (DeepLabv3 sec. 4.3 / DeepLabv3+ table 3, "MS" and "Flip"): the batch is
  resized by each scale (bilinear, rounded back to uint8 as mmseg's test-time resize of the image
  is, so an exported uint8 graph gets what the eager model gets), optionally also mirrored, run in ``whole`` or ``slide`` mode, and
  the *softmax probabilities* (not logits: each pass then has the same weight whatever its logit
  range) are resized back to the input size and averaged.

**Numerics** (``precision``, ``channels_last``; eager models only): the network's forward runs under
bf16 autocast (``bf16``, or ``auto`` where the device computes bfloat16 natively: AVX512-BF16 /
AMX on a CPU, Ampere or later on CUDA) and its logits are cast back to float32 before anything
else (window sums, softmax averages, argmax), and the model and batch are NHWC. ``32`` with
``channels_last=False`` is the exact float32 path. How far bf16 moves mIoU: docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Mode = Literal["whole", "slide"]
Precision = Literal["auto", "bf16", "32"]
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "32")
#: What the functions below call: an eager Segmentor or a backend with its call shape.
SegModel = nn.Module | Callable[[Tensor], dict[str, Tensor]]


@dataclass(frozen=True)
class InferenceSettings:
    """How to turn a batch into scores (the ``eval.*`` / ``predict.*`` inference keys).

    Args:
        mode: ``whole`` or ``slide``.
        scales: input scale factors, each > 0; ``(1.0,)`` = single scale.
        flip: also run the horizontally mirrored input and average.
        window: slide mode: square window side in pixels.
        stride: slide mode: step between windows (<= window, so windows overlap or touch).
        precision: ``32`` (exact float32), ``bf16`` (bf16 autocast) or ``auto`` (bf16 where the
            device computes it natively, else float32); eager models only.
        channels_last: run an eager model and its input in the NHWC memory format.
    """

    mode: Mode = "whole"
    scales: tuple[float, ...] = field(default=(1.0,))
    flip: bool = False
    window: int = 513
    stride: int = 341
    precision: Precision = "32"
    channels_last: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", check_precision(self.precision))
        if self.mode not in ("whole", "slide"):
            raise ValueError(f"mode must be 'whole' or 'slide', got {self.mode!r}")
        if not self.scales:
            raise ValueError("scales is empty: give at least one scale, e.g. [1.0]")
        bad = [s for s in self.scales if not float(s) > 0]
        if bad:
            raise ValueError(f"scales must all be positive, got {list(self.scales)}")
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if self.mode == "slide" and not (0 < int(self.stride) <= int(self.window)):
            raise ValueError(
                f"stride must be in 1..window ({self.window}), got {self.stride}: "
                "windows must overlap or touch so every pixel is covered"
            )

    @property
    def single_pass(self) -> bool:
        """True when one forward per batch suffices (no rescaling, no flip)."""
        return self.scales == (1.0,) and not self.flip


def predict_whole(model: SegModel, image: Tensor) -> Tensor:
    """(B, 3, H, W) uint8 -> (B, K, H, W) logits, one forward pass."""
    return model(image)["out"]


def _window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets covering ``0..size`` with windows of ``window`` (the last one flush right)."""
    if size <= window:
        return [0]
    starts = list(range(0, size - window, stride))
    return [*starts, size - window]


def predict_slide(model: SegModel, image: Tensor, *, window: int, stride: int) -> Tensor:
    """(B, 3, H, W) uint8 -> (B, K, H, W) float32 logits averaged over overlapping windows.

    Windows larger than the image are clipped to it, so ``window >= max(H, W)`` is one whole pass.
    """
    _, _, h, w = image.shape
    total: Tensor | None = None
    count = torch.zeros((1, 1, h, w), device=image.device)
    for top in _window_starts(h, window, stride):
        for left in _window_starts(w, window, stride):
            rows = slice(top, min(top + window, h))
            cols = slice(left, min(left + window, w))
            logits = model(image[:, :, rows, cols])["out"]
            if total is None:
                total = logits.new_zeros((image.shape[0], logits.shape[1], h, w))
            total[:, :, rows, cols] += logits
            count[:, :, rows, cols] += 1
    assert total is not None  # at least one window always exists
    return total / count


def _run(model: SegModel, image: Tensor, settings: InferenceSettings) -> Tensor:
    if settings.mode == "slide":
        return predict_slide(model, image, window=settings.window, stride=settings.stride)
    return predict_whole(model, image)


def predict_multiscale(model: SegModel, image: Tensor, settings: InferenceSettings) -> Tensor:
    """(B, 3, H, W) uint8 -> (B, K, H, W) softmax probabilities averaged over scales (and flips)."""
    size = image.shape[-2:]
    total: Tensor | None = None
    passes = 0
    for scale in settings.scales:
        scaled = image
        if scale != 1.0:
            target = [max(1, round(int(s) * scale)) for s in size]
            scaled = resize_image(image, target)
        for mirrored in (False, True) if settings.flip else (False,):
            x = scaled.flip(-1) if mirrored else scaled
            probs = _run(model, x, settings).softmax(1)
            if mirrored:
                probs = probs.flip(-1)
            if probs.shape[-2:] != size:
                probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
            total = probs if total is None else total + probs
            passes += 1
    assert total is not None
    return total / passes


def resize_image(image: Tensor, size: list[int]) -> Tensor:
    """(B, 3, H, W) -> (B, 3, *size) bilinear, in float32; a uint8 image is rounded back to uint8."""
    scaled = F.interpolate(image.float(), size=size, mode="bilinear", align_corners=False)
    if image.dtype != torch.uint8:
        return scaled.to(image.dtype)
    return scaled.round_().clamp_(0, 255).to(torch.uint8)


def check_precision(precision: Any) -> str:
    """``precision`` as one of :data:`PRECISIONS`; ValueError naming them otherwise."""
    if str(precision) not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return str(precision)


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (what ``precision=auto`` asks)."""
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return False


def resolved_precision(model: SegModel, device: torch.device, settings: InferenceSettings) -> str:
    """``bf16`` or ``32``: what ``settings.precision`` means for ``model`` on ``device``.

    Raises:
        ValueError: ``bf16`` asked of a backend that is not an eager ``nn.Module`` (onnxruntime
            runs the float32 graph it exported).
    """
    if not isinstance(model, nn.Module):
        if settings.precision == "bf16":
            raise ValueError(
                "precision='bf16' needs the torch backend (onnxruntime runs the exported "
                "float32 graph): use precision 'auto' or '32' with the onnxruntime backend"
            )
        return "32"
    if settings.precision == "auto":
        return "bf16" if bf16_native(torch.device(device)) else "32"
    return settings.precision


class _Autocast:
    """``model`` under bf16 autocast, its logits back in float32 (the call shape of a Segmentor)."""

    def __init__(self, model: SegModel, device_type: str) -> None:
        self.model, self.device_type = model, device_type

    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            out = self.model(x)["out"]
        return {"out": out.float()}


def to_channels_last(model: nn.Module) -> nn.Module:
    """``model`` with NHWC 4-d weights (in place; a no-op when its first conv weight already is)."""
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    if weight is not None and not weight.is_contiguous(memory_format=torch.channels_last):
        with torch.inference_mode(False):  # normal tensors: the weights stay usable for autograd
            model.to(memory_format=torch.channels_last)
    return model


def infer(model: SegModel, image: Tensor, settings: InferenceSettings) -> Tensor:
    """Scores (B, K, H, W) float32 for a uint8 batch (B, 3, H, W) according to ``settings``.

    Single-scale, no-flip settings return logits (one pass, no softmax); otherwise averaged softmax
    probabilities. Either way ``argmax(1)`` is the predicted label map.
    """
    precision = resolved_precision(model, image.device, settings)
    if settings.channels_last and isinstance(model, nn.Module):
        to_channels_last(model)
        image = image.contiguous(memory_format=torch.channels_last)
    if precision == "bf16":
        model = _Autocast(model, image.device.type)
    return _infer(model, image, settings)


@torch.inference_mode()
def _infer(model: SegModel, image: Tensor, settings: InferenceSettings) -> Tensor:
    if settings.single_pass:
        return _run(model, image, settings)
    return predict_multiscale(model, image, settings)
