"""Effective receptive field (Luo, Li, Urtasun, Zemel, NeurIPS 2016).

The ERF is the input-gradient of one output unit: we back-propagate a one-hot gradient placed at the
centre pixel of the model's output (for a segmentation model: the logits ``"out"`` at the input
size, summed over the class channels, i.e. ``d sum_k out[k, H/2, W/2] / d input``), take its absolute
value summed over the input's colour channels, and average over a few random N(0, 1) inputs. Radii
are Euclidean distances from that centre pixel: ``r50`` is the smallest circle holding 50 % of the
gradient mass (likewise 90 / 99 %). The model is used in eval mode (BN running statistics).
"""

from __future__ import annotations

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
    model: nn.Module, *, input_size: int, samples: int = 2, seed: int = 0, output: str = "out"
) -> ERF:
    """ERF of the centre output unit. ``model(x)`` may return a tensor or a dict (key ``output``).

    One batched backward pass over ``samples`` inputs of shape (samples, 3, input_size, input_size);
    in eval mode the images do not interact, so this equals averaging per-image gradients.
    """
    if samples < 1:
        raise ValueError(f"analyze.erf_samples must be >= 1, got {samples}")
    if input_size < 3:
        raise ValueError(f"analyze.erf_input_size must be >= 3, got {input_size}")
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 3, input_size, input_size, generator=gen).requires_grad_(True)
    try:
        y = model(x)
        y = y[output] if isinstance(y, dict) else y
        h, w = y.shape[-2] // 2, y.shape[-1] // 2
        y[:, :, h, w].sum().backward()
    finally:
        model.train(was_training)
    grad = x.grad.abs().sum(dim=(0, 1))
    total = grad.sum()
    if total <= 0:
        raise ValueError("the centre output unit has zero gradient w.r.t. the input (dead model?)")
    grad = grad / total
    # The unit's centre in input pixels (the same pixel when the output is at the input size).
    centre = (_to_input(h, y.shape[-2], input_size), _to_input(w, y.shape[-1], input_size))
    r50, r90, r99 = mass_radii(grad, centre, MASS_LEVELS)
    return ERF(grad.detach(), centre, r50, r90, r99)


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
    """Heatmap PNG of the gradient mass with the r50/r90/r99 circles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(erf.grad.numpy(), cmap="inferno", interpolation="nearest")
    for r, style in ((erf.r50, "-"), (erf.r90, "--"), (erf.r99, ":")):
        ax.add_patch(
            plt.Circle((erf.centre[1], erf.centre[0]), r, fill=False, color="cyan", ls=style)
        )
    ax.set_title(title or "effective receptive field")
    ax.set_xlabel(f"r50={erf.r50:.0f}  r90={erf.r90:.0f}  r99={erf.r99:.0f} px")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
