"""A segmentation model: backbone + head (+ auxiliary head), a plain ``nn.Module``.

The composition of torchvision's segmentation models: the backbone returns its features, the head
turns them into logits at its own stride, and the logits are upsampled bilinearly to the *input's*
size, so any H x W works (not only multiples of 32).

The Segmentor also owns its input normalisation (mmseg's ``SegDataPreProcessor``): it takes RGB
pixel values 0..255 and subtracts / divides by the backbone's ``input_mean`` / ``input_std`` (x 255)
itself, held as *non-persistent* buffers (they move with ``.to(device)`` and are no state_dict keys,
so checkpoints are unchanged). Batches, the ONNX graph and every inference path feed uint8; the
normalisation runs in float32 even under bf16 autocast (subtraction and division are no autocast
ops; the first conv casts).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segkit.backbones.base import Backbone, check_output_stride
from segkit.heads.base import Head
from segkit.nn.atrous import AtrousImpl, atrous_impl_of, set_atrous_impl


class Segmentor(nn.Module):
    """``forward(x: (B, 3, H, W) RGB 0..255) -> {"out": (B, K, H, W), "aux": (B, K, H, W)}``.

    ``x`` is uint8 (what the data and every inference path give) or floating point in the same
    0..255 units (an input that needs gradients, as the ERF's). ``"aux"`` is present only when an
    auxiliary head was given. Heads follow the ``Head`` protocol
    (``segkit.heads.base``); the Segmentor forwards an output-stride change to all parts, and the
    heads' atrous convs run with the backbone's implementation (``backbone.atrous_impl``: one switch
    for every atrous conv of the model).
    """

    def __init__(self, backbone: Backbone, head: Head, aux_head: Head | None = None) -> None:
        super().__init__()
        for part in (head, aux_head):
            if part is not None and not isinstance(part, Head):
                raise TypeError(
                    f"{type(part).__name__} is not a segkit head: it needs in_channels, strides, "
                    "num_classes and set_output_stride (segkit.heads.base.Head)"
                )
        self.backbone = backbone
        self.head = head
        self.aux_head = aux_head
        for part in (head, aux_head):
            if part is not None:
                set_atrous_impl(part, backbone.atrous_impl)
        self.set_input_norm(backbone.input_mean, backbone.input_std)

    def set_input_norm(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Normalise inputs with RGB ``mean`` / ``std`` (0..1 units) from now on (in place)."""
        means, stds = [float(v) for v in mean], [float(v) for v in std]
        if len(means) != 3 or len(stds) != 3 or min(stds) <= 0:  # Python values: works on meta too
            raise ValueError(f"input mean / std need 3 values each, std > 0; got {mean}, {std}")
        mean_t = torch.tensor(means).mul_(255)
        std_t = torch.tensor(stds).mul_(255)
        old = getattr(self, "pixel_mean", None)
        device = None if old is None else old.device
        self.input_mean = tuple(float(v) for v in mean)
        self.input_std = tuple(float(v) for v in std)
        self.register_buffer("pixel_mean", mean_t.view(1, 3, 1, 1).to(device), persistent=False)
        self.register_buffer("pixel_std", std_t.view(1, 3, 1, 1).to(device), persistent=False)

    def normalize(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) RGB 0..255, uint8 or floating -> float32 ``(x - 255 mean) / (255 std)``."""
        if x.dtype != torch.uint8 and not x.is_floating_point():
            raise TypeError(
                f"a Segmentor takes RGB images 0..255 as uint8 or floating point, got {x.dtype}"
            )
        return (x.float() - self.pixel_mean) / self.pixel_std

    @property
    def atrous_impl(self) -> str:
        """How every atrous conv of the model runs: "dilation" or "space_to_batch"."""
        return atrous_impl_of(self)

    def set_atrous_impl(self, impl: AtrousImpl) -> None:
        """Run every atrous conv (backbone and heads) with ``impl``; weights and outputs unchanged."""
        self.backbone.set_atrous_impl(impl)  # refuses an implementation the backbone lacks
        set_atrous_impl(self, impl)

    @property
    def output_stride(self) -> int:
        """The backbone's current output stride (8, 16 or 32)."""
        return self.backbone.output_stride

    def set_output_stride(self, output_stride: int) -> None:
        """Re-dilate the backbone and rescale the heads' atrous rates in place; weights untouched.

        E.g. evaluate at output stride 8 a model trained at 16 (DeepLabv3, table 4).
        """
        check_output_stride(output_stride)
        # Heads validate first (an impossible FCN variant raises) so a failed switch changes nothing.
        heads = [h for h in (self.head, self.aux_head) if h is not None]
        for head in heads:
            head.set_output_stride(output_stride)
        self.backbone.set_output_stride(output_stride)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        size = x.shape[-2:]
        features = self.backbone(self.normalize(x))
        out = {"out": _resize(self.head(features), size)}
        if self.aux_head is not None:
            out["aux"] = _resize(self.aux_head(features), size)
        return out


def _resize(logits: Tensor, size: torch.Size) -> Tensor:
    """(B, K, h, w) logits -> (B, K, H, W), bilinear as in torchvision/DeepLab."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
