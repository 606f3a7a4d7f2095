"""Effective receptive field (Luo, Li, Urtasun, Zemel, NeurIPS 2016).

The ERF is the input-gradient of one output unit: we back-propagate a one-hot gradient placed at the
centre pixel of the model's output (for a segmentation model: the logits ``"out"`` at the input
size, summed over the class channels, i.e. ``d sum_k out[k, H/2, W/2] / d input``), take its absolute
value summed over the input's colour channels, and average over a few random N(0, 1) inputs. Radii
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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

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
    input_size: int,
    samples: int = 2,
    seed: int = 0,
    output: str = "out",
    calibrate_bn: bool = False,
) -> ERF:
    """ERF of the centre output unit. ``model(x)`` may return a tensor or a dict (key ``output``).

    One forward and one backward pass over ``samples`` inputs of shape (samples, 3, input_size,
    input_size); in eval mode the images do not interact, so this equals averaging per-image
    gradients. ``calibrate_bn`` (see module doc) forwards at least 2 images (an image-pooling
    branch's BN sees one value per image and channel) and keeps the gradients of the first
    ``samples``. The model's parameters, gradients and statistics are left untouched.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if input_size < 3:
        raise ValueError(f"input_size must be >= 3, got {input_size}")
    gen = torch.Generator().manual_seed(seed)
    batch = max(samples, 2) if calibrate_bn else samples
    x = torch.randn(batch, 3, input_size, input_size, generator=gen).requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        with batch_calibrated_bn(model, enabled=calibrate_bn):
            y = model(x)
            y = y[output] if isinstance(y, dict) else y
            h, w = y.shape[-2] // 2, y.shape[-1] // 2
            (grad,) = torch.autograd.grad(y[:samples, :, h, w].sum(), x)
    finally:
        model.train(was_training)
    grad = grad[:samples].abs().sum(dim=(0, 1))
    total = grad.sum()
    if total <= 0:
        raise ValueError("the centre output unit has zero gradient w.r.t. the input (dead model?)")
    grad = grad / total
    # The unit's centre in input pixels (the same pixel when the output is at the input size).
    centre = (_to_input(h, y.shape[-2], input_size), _to_input(w, y.shape[-1], input_size))
    r50, r90, r99 = mass_radii(grad, centre, MASS_LEVELS)
    return ERF(grad.detach(), centre, r50, r90, r99)


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
