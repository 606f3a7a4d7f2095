"""Boundary F1 score (BF) of SegNet (Badrinarayanan et al., TPAMI 2017, sec. 3.3), after Csurka et
al., "What is a good evaluation measure for semantic segmentation?", BMVC 2013.

Per image and per class ``c`` present in the ground truth: the boundary pixels of the ground-truth
mask ``target == c`` and of the predicted mask ``pred == c`` (with the pixels void in the ground
truth removed first; batch padding is void too). A boundary pixel is a pixel of the mask with a
4-neighbour outside it; the image border is not a boundary (neither is the edge of the padding).
Precision = share of the predicted boundary pixels within ``theta`` (Euclidean distance between pixel
centres, ``<=``) of a ground-truth boundary pixel; recall the other way round; F1 = 2PR / (P + R).
``theta`` = 0.75 % of the image's own diagonal (not the padded batch's).

Degenerate cases (documented in docs/metrics.md): class absent from the prediction -> 0; neither
mask has a boundary pixel (the class fills the valid image in both) -> 1; one side has boundary
pixels and the other none -> 0; P = R = 0 -> 0. A class absent from the ground truth is not scored
(NaN). The image's BF is the mean over its scored classes, the split's the mean over images.

Everything is batched on the device and vectorised over classes: a one-hot (B, K, H, W) boolean
map, boundaries by shifted comparisons, "within theta" by a Euclidean distance transform of the
boundary map truncated at the batch's largest radius (row growths, then shifted integer minima over
the row offsets), compared with each image's own radius. No host sync, no Python loop over images
or pixels; the loops run over the <= theta * diagonal pixel offsets (4 at 360 x 480).
"""

from __future__ import annotations

import torch
from torch import Tensor

from segkit.constants import IGNORE_INDEX
from segkit.evaluation.trimap import bottom_right_padding

#: theta as a fraction of the image diagonal (SegNet, sec. 3.3).
BF_THETA = 0.0075


def image_sizes(target: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """(B, H, W) labels -> (B, 2) int64 ``(height, width)`` of each image's labelled extent: the
    rows above and columns left of its last non-void pixel (what ``pad_collate`` did not add).
    An unpadded image whose last rows/columns are entirely void counts as that much smaller (as
    ``trimap.bottom_right_padding``); pass the sizes explicitly to :func:`boundary_f1` to avoid it."""
    b, h, w = target.shape
    labelled = target != ignore_index
    rows = torch.arange(1, h + 1, device=target.device)
    cols = torch.arange(1, w + 1, device=target.device)
    height = (labelled.any(2) * rows).amax(1)
    width = (labelled.any(1) * cols).amax(1)
    return torch.stack([height, width], 1)


def max_radius(height: int, width: int, theta: float = BF_THETA) -> int:
    """The largest integer offset within ``theta`` of the diagonal of an ``height`` x ``width``
    image (host arithmetic on shapes: bounds the disk of every image a batch of that size holds)."""
    return int((theta * (height**2 + width**2) ** 0.5) // 1)


def boundary_f1(
    pred: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    sizes: Tensor | None = None,
    theta: float = BF_THETA,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Per-image, per-class boundary F1: (B, K) float64, NaN where the class is not in the image's
    ground truth. ``nanmean(-1)`` is each image's BF.

    Args:
        pred: (B, H, W) integer class predictions.
        target: (B, H, W) labels in ``0..K-1`` or ``ignore_index`` (void and batch padding).
        num_classes: K.
        sizes: optional (B, 2) ``(height, width)`` of each image's true extent, anchored top-left
            (``pad_collate`` pads bottom/right); default :func:`image_sizes` (the labelled extent).
        theta: distance tolerance as a fraction of each image's diagonal.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    b, h, w = target.shape
    if sizes is None:
        sizes = image_sizes(target, ignore_index)
        padding = bottom_right_padding(target)
    else:
        sizes = sizes.to(target.device, torch.int64)
        padding = _outside(sizes, h, w)
    void = target == ignore_index  # padding included
    classes = torch.arange(num_classes, device=target.device).view(1, -1, 1, 1)
    gt = target.unsqueeze(1) == classes  # (B, K, H, W); void matches no class
    pr = (pred.unsqueeze(1) == classes) & ~void.unsqueeze(1)
    outside = padding.unsqueeze(1)
    gt_edge, pr_edge = mask_boundary(gt, outside), mask_boundary(pr, outside)
    diag = sizes.double().square().sum(1).sqrt()  # (B,)
    radius2 = (theta * diag).square()
    reach = max_radius(h, w, theta)
    near_gt, near_pr = _within(gt_edge, radius2, reach), _within(pr_edge, radius2, reach)
    n_pr, n_gt = pr_edge.sum((2, 3)).double(), gt_edge.sum((2, 3)).double()
    precision = (pr_edge & near_gt).sum((2, 3)).double() / n_pr.clamp(min=1)
    recall = (gt_edge & near_pr).sum((2, 3)).double() / n_gt.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    both_empty = (n_pr == 0) & (n_gt == 0)
    f1 = torch.where(both_empty, torch.ones_like(f1), f1)  # one side empty: P or R = 0 -> F1 0
    f1 = torch.where(pr.any((2, 3)), f1, torch.zeros_like(f1))  # class missing from prediction
    return torch.where(gt.any((2, 3)), f1, torch.full_like(f1, float("nan")))


def mask_boundary(mask: Tensor, outside: Tensor) -> Tensor:
    """(B, K, H, W) bool masks -> the pixels of each mask with a 4-neighbour outside it.

    ``outside`` (B, 1, H, W) bool marks pixels beyond the image (batch padding): neighbours there,
    like those beyond the tensor's border, do not make a boundary.
    """
    inner = mask | outside  # a neighbour beyond the image counts as inside: no boundary there
    keep = torch.ones_like(mask)  # pixels whose every in-tensor neighbour is inside
    keep[..., 1:, :] &= inner[..., :-1, :]
    keep[..., :-1, :] &= inner[..., 1:, :]
    keep[..., :, 1:] &= inner[..., :, :-1]
    keep[..., :, :-1] &= inner[..., :, 1:]
    return mask & ~keep


def _outside(sizes: Tensor, h: int, w: int) -> Tensor:
    """(B, 2) sizes -> (B, H, W) bool: the pixels beyond each image's extent."""
    rows = torch.arange(h, device=sizes.device).view(1, h, 1)
    cols = torch.arange(w, device=sizes.device).view(1, 1, w)
    return (rows >= sizes[:, 0].view(-1, 1, 1)) | (cols >= sizes[:, 1].view(-1, 1, 1))


def _within(edge: Tensor, radius2: Tensor, reach: int) -> Tensor:
    """(B, K, H, W) bool -> the pixels within Euclidean distance ``sqrt(radius2[b])`` of a True
    pixel of the same map (``reach`` >= every radius: a host int from the batch's shape).

    A distance transform truncated at ``reach``: ``g`` = horizontal distance to the nearest True
    pixel of the row (``reach + 1`` if none is that close), from ``reach`` one-pixel row growths;
    then ``d^2 = min over |dy| <= reach of dy^2 + g(y + dy)^2``, shifted integer minima. Each image
    compares with its own radius, so images of different sizes share the batch without a gather
    and no (reach, B, K, H, W) stack is held."""
    b = edge.shape[0]
    dtype = torch.int16 if 2 * (reach + 1) ** 2 < 2**15 else torch.int32
    threshold = radius2.floor().to(dtype).view(b, 1, 1, 1)  # integer d^2 <= r^2 <=> <= floor(r^2)
    far = edge.new_full(edge.shape, reach + 1, dtype=dtype)
    grown, g = edge, far.clone()
    for k in range(reach + 1):
        if k:
            prev = grown
            grown = prev.clone()
            grown[..., 1:] |= prev[..., :-1]
            grown[..., :-1] |= prev[..., 1:]
        g -= grown.to(dtype)  # first k that covers a pixel: reach + 1 - (#growths covering it)
    g2 = g * g
    d2 = g2.clone()
    for dy in range(1, reach + 1):
        step = dy * dy
        below, above = d2[..., dy:, :], d2[..., :-dy, :]
        torch.minimum(below, g2[..., :-dy, :] + step, out=below)
        torch.minimum(above, g2[..., dy:, :] + step, out=above)
    return d2 <= threshold


__all__ = ["BF_THETA", "boundary_f1", "image_sizes", "mask_boundary", "max_radius"]
