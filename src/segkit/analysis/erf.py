"""Effective receptive field (Luo, Li, Urtasun, Zemel, NeurIPS 2016).

The ERF is the input-gradient of one output unit: we back-propagate a one-hot gradient placed at the
centre pixel of the model's output (for a segmentation model: the logits ``"out"`` at the input
size, summed over the class channels, i.e. ``d sum_k out[k, H/2, W/2] / d input``), take its absolute
value summed over the input's colour channels, and average over a few random N(0, 1) inputs. "Input"
is the *normalised* image (a Segmentor normalises its 0..255 input itself, ``pixel_mean`` /
``pixel_std``: the random images are N(0, 1) after that step and the gradient is taken there, so the
per-channel 1 / (255 std) of the normalisation does not weigh the colour channels). Radii
are Euclidean distances from that centre pixel: ``r50`` is the smallest circle holding 50 % of the
gradient mass (likewise 90 / 99 %). The model is used in eval mode (BN running statistics).

A freshly initialised model has BN running statistics mean 0 / variance 1 that match nothing: in
eval mode PyTorch's default conv init then shrinks activations layer after layer and the gradient of
a deep path vanishes (DeepLabv3+ / MobileNetV2 at init: the ASPP path arrives ~7 decades below the
decoder's low-level path). ``calibrate_bn=True`` (used for fresh models) makes every BN layer
normalise with the mean and unbiased variance of its own input over the ERF batch -- the running
statistics one training-mode pass over that batch would store -- taken as constants (no gradient
flows through them), within the same single forward: the ERF shows the architecture rather than
that artefact, at no extra forward pass. A trained checkpoint keeps its own statistics.

The ERF of *one chosen* output pixel of a real image (the design explorer: "which part of this
image does the prediction here draw on") is ``PixelGradients``: one forward of the image whose
graph is kept, then one backward per asked pixel -- the gradient of that pixel's logit (one class,
by default the predicted one) w.r.t. the input, its mass map and radii around that pixel
(``erf_from_gradient``, shared with the centre-pixel ERF above); the explorer draws it
(``segkit.explore.drawing.heatmap_rgb``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from segkit.checks import check_image_size

MASS_LEVELS: tuple[float, ...] = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class ERF:
    """``grad``: (H, W) normalised gradient mass (sums to 1); radii in input pixels around
    ``centre`` (row, column)."""

    grad: Tensor
    centre: tuple[int, int]
    r50: float
    r90: float
    r99: float

    def radii(self) -> dict[str, float]:
        return {"r50": self.r50, "r90": self.r90, "r99": self.r99}


def effective_receptive_field(
    model: nn.Module,
    *,
    input_size: int | Sequence[int],
    samples: int = 2,
    seed: int = 0,
    output: str = "out",
    calibrate_bn: bool = False,
) -> ERF:
    """ERF of the centre output unit. ``model(x)`` may return a tensor or a dict (key ``output``).

    One forward and one backward pass over ``samples`` inputs of shape (samples, 3, H, W)
    (``input_size``: a side N for N x N, or (H, W)); in eval mode the images do not interact, so this equals averaging per-image
    gradients. ``calibrate_bn`` (see module doc) forwards at least 2 images (an image-pooling
    branch's BN sees one value per image and channel) and keeps the gradients of the first
    ``samples``. The model's parameters, gradients and statistics are left untouched.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    height, width = check_image_size(input_size, "input_size", minimum=3)
    gen = torch.Generator().manual_seed(seed)
    batch = max(samples, 2) if calibrate_bn else samples
    x = torch.randn(batch, 3, height, width, generator=gen).requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        with batch_calibrated_bn(model, enabled=calibrate_bn):
            y = model(_from_normalised(model, x))
            y = y[output] if isinstance(y, dict) else y
            h, w = y.shape[-2] // 2, y.shape[-1] // 2
            (grad,) = torch.autograd.grad(y[:samples, :, h, w].sum(), x)
    finally:
        model.train(was_training)
    # The unit's centre in input pixels (the same pixel when the output is at the input size).
    centre = (_to_input(h, y.shape[-2], height), _to_input(w, y.shape[-1], width))
    return erf_from_gradient(grad[:samples], centre, what="the centre output unit")


def erf_from_gradient(grad: Tensor, centre: tuple[int, int], *, what: str = "") -> ERF:
    """The ERF of an input gradient ``grad`` (..., H, W) (leading dims: samples, colour channels,
    summed as absolute values), normalised to mass 1, with its radii around ``centre`` (row, col).

    Raises ValueError when the gradient is zero everywhere (``what`` names the unit).
    """
    if grad.dim() < 2:
        raise ValueError(f"an input gradient has (..., H, W) dims, got shape {tuple(grad.shape)}")
    mass = grad.detach().abs().reshape(-1, *grad.shape[-2:]).sum(0)
    total = mass.sum()
    if not total > 0:
        unit = what or f"the output pixel {centre}"
        raise ValueError(f"{unit} has zero gradient w.r.t. the input (dead model?)")
    mass = mass / total
    r50, r90, r99 = mass_radii(mass, centre, MASS_LEVELS)
    return ERF(mass, centre, r50, r90, r99)


class PixelGradients:
    """ERFs of chosen output pixels of one real image, at one backward pass each.

    ``PixelGradients(model, x)`` runs ``model(x)`` once on ``x`` (1, 3, H, W) (what the model takes:
    uint8 RGB for a Segmentor; gradients are taken w.r.t. its normalised image) in eval mode, keeps its autograd graph, and exposes the logits
    (``logits``: (K, H, W), detached). ``erf((row, col))`` back-propagates that output pixel's
    logit of one class (``channel``; default: the class predicted there) to the input and returns
    its ``ERF`` centred on the pixel. The model's parameters and their ``.grad`` are untouched
    (``torch.autograd.grad`` w.r.t. the input only). Build a new one after changing the model
    (e.g. ``set_output_stride``): the kept graph is the old network's.
    """

    def __init__(self, model: nn.Module, x: Tensor, *, output: str = "out") -> None:
        if x.dim() != 4 or x.shape[0] != 1:
            raise ValueError(f"PixelGradients takes one image (1, C, H, W), got {tuple(x.shape)}")
        model.eval()
        norm = getattr(model, "normalize", None)
        start = norm(x) if norm is not None else x.float()
        self.input = start.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            y = model(_from_normalised(model, self.input))
        y = y[output] if isinstance(y, dict) else y
        if y.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"the model's {output!r} is {tuple(y.shape[-2:])}, not the input size "
                f"{tuple(x.shape[-2:])}: output pixels would not be image pixels"
            )
        self._out = y[0]
        self.logits = y[0].detach()

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.logits.shape[-2]), int(self.logits.shape[-1]))

    def erf(self, pixel: tuple[int, int], *, channel: int | None = None) -> ERF:
        """ERF of output pixel ``pixel`` = (row, col) for class ``channel`` (None: the argmax)."""
        row, col = (int(v) for v in pixel)
        h, w = self.size
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"pixel (row={row}, col={col}) lies outside the {h} x {w} output")
        k = int(self.logits[:, row, col].argmax()) if channel is None else int(channel)
        if not 0 <= k < self.logits.shape[0]:
            raise ValueError(f"channel must be in 0..{self.logits.shape[0] - 1}, got {k}")
        (grad,) = torch.autograd.grad(self._out[k, row, col], self.input, retain_graph=True)
        return erf_from_gradient(grad[0], (row, col), what=f"output pixel ({row}, {col})")


@contextmanager
def batch_calibrated_bn(model: nn.Module, *, enabled: bool = True) -> Iterator[None]:
    """Within: each eval-mode BN layer of ``model`` that tracks running statistics normalises its
    input (B, C, ...) with that input's own per-channel mean and unbiased variance over the batch
    and spatial positions, detached (constants for autograd). On exit the layers get their own
    statistics tensors back (the same objects, unmodified)."""
    if not enabled:
        yield
        return
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    ]
    saved = [(m.running_mean, m.running_var) for m in norms]

    def use_batch_statistics(m: nn.Module, args: tuple) -> None:
        x = args[0].detach()
        dims = [0, *range(2, x.dim())]
        if x.numel() // x.shape[1] < 2:
            raise ValueError(
                f"BN calibration of the ERF: {type(m).__name__} sees one value per channel; "
                "pass calibrate_bn=False"
            )
        # new tensors, not in-place: a layer called twice keeps its first statistics for backward
        m.running_mean = x.mean(dims)
        m.running_var = x.var(dims, correction=1)

    handles = [m.register_forward_pre_hook(use_batch_statistics) for m in norms]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for m, (mean, var) in zip(norms, saved, strict=True):
            m.running_mean, m.running_var = mean, var


def _from_normalised(model: nn.Module, z: Tensor) -> Tensor:
    """The 0..255 image a model that normalises its own input (``pixel_mean`` / ``pixel_std``, a
    Segmentor) turns into ``z``; ``z`` itself for any other model."""
    mean, std = getattr(model, "pixel_mean", None), getattr(model, "pixel_std", None)
    if mean is None or std is None:
        return z
    return z * std.to(z.device) + mean.to(z.device)


def _to_input(i: int, out_size: int, in_size: int) -> int:
    return round((i + 0.5) * in_size / out_size - 0.5)


def mass_radii(
    mass: Tensor, centre: tuple[int, int], levels: tuple[float, ...]
) -> tuple[float, ...]:
    """Smallest Euclidean radius around ``centre`` holding each fraction of ``mass`` (H, W)."""
    hh, ww = mass.shape
    ys = torch.arange(hh, dtype=torch.float64).view(-1, 1) - centre[0]
    xs = torch.arange(ww, dtype=torch.float64).view(1, -1) - centre[1]
    dist = (ys.square() + xs.square()).sqrt().flatten()
    order = torch.argsort(dist)
    cum = torch.cumsum(mass.flatten().double()[order], 0)
    cum = cum / cum[-1]
    idx = torch.searchsorted(cum, torch.tensor(levels, dtype=torch.float64) - 1e-12)
    idx = idx.clamp(max=dist.numel() - 1)
    return tuple(float(dist[order[i]]) for i in idx.tolist())


def save_heatmap(erf: ERF, path: str | Path, *, title: str = "") -> Path:
    """PNG of the gradient mass with the r50/r90/r99 circles: linear scale (left) and log10 scale
    (right, 5 decades), where the faint long-range tail that the linear map hides shows up.

    Drawn on a ``matplotlib.figure.Figure`` (no pyplot: no global backend, no GUI)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grad = erf.grad.double()
    log = torch.log10(grad / grad.max()).clamp(min=-5.0)
    fig = Figure(figsize=(9, 4.6))
    axes = fig.subplots(1, 2)
    for ax, image, label in ((axes[0], grad, "linear"), (axes[1], log, "log10 (relative to max)")):
        shown = ax.imshow(image.numpy(), cmap="inferno", interpolation="nearest")
        fig.colorbar(shown, ax=ax, fraction=0.046)
        for r, style in ((erf.r50, "-"), (erf.r90, "--"), (erf.r99, ":")):
            centre = (erf.centre[1], erf.centre[0])
            ax.add_patch(Circle(centre, r, fill=False, color="cyan", ls=style))
        ax.set_title(label)
    fig.suptitle(title or "effective receptive field")
    axes[0].set_xlabel(f"r50={erf.r50:.0f}  r90={erf.r90:.0f}  r99={erf.r99:.0f} px")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
