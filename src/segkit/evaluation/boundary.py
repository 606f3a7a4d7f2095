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

Everything is batched on the device, and no (B, K, H, W) map is built: boundaries come from the
label maps themselves (a pixel differing from an in-image 4-neighbour), and the classes travel as
bits of one integer per pixel (``1 << label``), so a single OR-dilation of the bit map by the
Euclidean disk of each image's theta answers "is a boundary pixel of my class within theta?" for
every class at once; per-(image, class) counts are then ``bincount``s. The disk is a union of row
segments: OR-dilations of the rows by 0..reach pixels, then one shifted OR per row offset, each
image picking its own segment width (a gather), so images of different sizes share a batch. No
host sync, no loop over images or pixels; the loops run over the <= theta pixel offsets (4 at
360 x 480) and, past 31 classes, over words of 31 classes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from segkit.constants import IGNORE_INDEX

#: theta as a fraction of the image diagonal (SegNet, sec. 3.3).
BF_THETA = 0.0075


def labelled_extent(target: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
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
        pred: (B, H, W) integer class predictions in ``0..K-1``.
        target: (B, H, W) labels in ``0..K-1`` or ``ignore_index`` (void and batch padding).
        num_classes: K.
        sizes: optional (B, 2) ``(height, width)`` of each image's true extent, anchored top-left
            (``pad_collate`` pads bottom/right); default :func:`labelled_extent` (the labelled extent).
        theta: distance tolerance as a fraction of each image's diagonal.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    b, h, w = target.shape
    k = int(num_classes)
    if not 0 < k < 2**15 - 1:
        raise ValueError(f"boundary_f1 takes 1 to 32766 classes (int16 labels), got {k}")
    if sizes is None:
        sizes = labelled_extent(target, ignore_index)
    sizes = sizes.to(target.device, torch.int64)
    outside = _outside(sizes, h, w)
    # int16 label maps (K < 2^15 classes, void 255): a quarter of the memory traffic of int64
    gt = target.to(torch.int16).masked_fill(outside, ignore_index)
    void = gt == ignore_index  # padding included
    pr = pred.to(torch.int16).masked_fill(void, ignore_index)  # void removed from the predictions
    gt_edge, pr_edge = label_boundary(gt, outside), label_boundary(pr, outside)
    diag2 = sizes.double().square().sum(1)  # (B,)
    half = _row_halves(theta * theta * diag2, max_radius(h, w, theta))
    gt_hit, pr_hit = torch.zeros_like(gt_edge), torch.zeros_like(pr_edge)
    # classes first .. first + word - 1 as bits of one integer (int16 up to 15 classes: half the
    # memory traffic of the dilation, which is most of the cost)
    word, dtype = (15, torch.int16) if k <= 15 else (WORD, torch.int32)
    for first in range(0, k, word):
        gt_bit, pr_bit = _bit(gt, first, k, word, dtype), _bit(pr, first, k, word, dtype)
        near_gt = _dilate_bits(torch.where(gt_edge, gt_bit, 0), half)
        near_pr = _dilate_bits(torch.where(pr_edge, pr_bit, 0), half)
        pr_hit |= (near_gt & pr_bit) != 0  # my class's bit: a boundary of it within theta
        gt_hit |= (near_pr & gt_bit) != 0
    has_gt, n_gt, gt_near = _per_class_counts(gt, gt_edge, gt_hit, k)
    has_pr, n_pr, pr_near = _per_class_counts(pr, pr_edge, pr_hit, k)
    precision = pr_near / n_pr.clamp(min=1)
    recall = gt_near / n_gt.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    both_empty = (n_pr == 0) & (n_gt == 0)
    f1 = torch.where(both_empty, torch.ones_like(f1), f1)  # one side empty: P or R = 0 -> F1 0
    f1 = torch.where(has_pr > 0, f1, torch.zeros_like(f1))  # class not predicted
    return torch.where(has_gt > 0, f1, torch.full_like(f1, float("nan")))


#: Classes per bit word past 15 classes (int32, sign bit unused).
WORD = 31


def label_boundary(labels: Tensor, outside: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """(B, H, W) labels -> (B, H, W) bool: the pixels of each class mask (labels other than
    ``ignore_index``) with a 4-neighbour outside their mask, i.e. of another label or void.

    ``outside`` (B, H, W) bool marks pixels beyond the image (batch padding): neighbours there,
    like those beyond the tensor's border, do not make a boundary.
    """
    edge = torch.zeros_like(outside)
    dy = (labels[:, 1:, :] != labels[:, :-1, :]) & ~(outside[:, 1:, :] | outside[:, :-1, :])
    dx = (labels[:, :, 1:] != labels[:, :, :-1]) & ~(outside[:, :, 1:] | outside[:, :, :-1])
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    return edge & (labels != ignore_index)


def _outside(sizes: Tensor, h: int, w: int) -> Tensor:
    """(B, 2) sizes -> (B, H, W) bool: the pixels beyond each image's extent."""
    rows = torch.arange(h, device=sizes.device).view(1, h, 1)
    cols = torch.arange(w, device=sizes.device).view(1, 1, w)
    return (rows >= sizes[:, 0].view(-1, 1, 1)) | (cols >= sizes[:, 1].view(-1, 1, 1))


def _row_halves(radius2: Tensor, reach: int) -> Tensor:
    """(B,) squared radii -> (B, reach + 1) int64: at row offset dy, the largest dx with
    dx^2 + dy^2 <= r^2 (-1 where none): the disk as row segments (exact integer comparisons on
    float64 squares)."""
    offsets = torch.arange(reach + 1, device=radius2.device, dtype=torch.float64)
    dist2 = offsets.view(-1, 1).square() + offsets.view(1, -1).square()  # (dy, dx)
    return (dist2.unsqueeze(0) <= radius2.view(-1, 1, 1)).sum(2) - 1


def _bit(labels: Tensor, first: int, k: int, word: int, dtype: torch.dtype) -> Tensor:
    """(B, H, W) ``1 << (label - first)`` of ``dtype`` for the classes first..first+word-1 (< K);
    0 for the other labels and void."""
    local = labels - first
    inside = (local >= 0) & (local < min(word, k - first))
    shift = local.clamp(0, word - 1).to(dtype)
    return torch.where(inside, torch.ones_like(shift).bitwise_left_shift(shift), 0)


def _dilate_bits(bits: Tensor, half: Tensor) -> Tensor:
    """OR of ``bits`` (B, H, W) over each image's disk: the union over row offsets dy of the row
    segments ``|dx| <= half[b, dy]``. Row dilations by 0..reach are built once (each one OR of
    the previous with the bits shifted by the new distance), then per dy each image takes its own
    width from the stack (index 0: an empty segment) and ORs it in shifted by +-dy."""
    b, reach = bits.shape[0], half.shape[1] - 1
    stack = bits.new_empty((reach + 2, *bits.shape))  # [1 + k]: rows dilated by k; [0]: nothing
    stack[0].zero_()
    stack[1] = bits
    for k in range(1, reach + 1):
        grown = stack[k + 1]
        grown.copy_(stack[k])
        grown[..., k:] |= bits[..., :-k]
        grown[..., :-k] |= bits[..., k:]
    image = torch.arange(b, device=bits.device)
    out = stack[half[:, 0] + 1, image]
    for dy in range(1, reach + 1):
        seg = stack[half[:, dy] + 1, image]
        out[..., dy:, :] |= seg[..., :-dy, :]
        out[..., :-dy, :] |= seg[..., dy:, :]
    return out


def _per_class_counts(
    labels: Tensor, edge: Tensor, hit: Tensor, k: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Per image and class (each (B, K) float64): its pixels, its boundary pixels, and those of
    them with ``hit``; one ``bincount`` over (image, label, state 0 inside / 1 boundary / 2
    boundary and hit). Void (255) lands in a label bin K that is dropped."""
    b = labels.shape[0]
    base = (torch.arange(b, device=labels.device, dtype=torch.int32) * (3 * (k + 1))).view(b, 1, 1)
    state = edge.to(torch.int32) + (edge & hit).to(torch.int32)
    slot = labels.clamp(max=k).to(torch.int32) * 3 + state + base
    bins = torch.bincount(slot.reshape(-1), minlength=b * 3 * (k + 1))
    per_state = bins.view(b, k + 1, 3)[:, :k].double()
    return per_state.sum(2), per_state[..., 1:].sum(2), per_state[..., 2]


__all__ = ["BF_THETA", "boundary_f1", "labelled_extent", "label_boundary", "max_radius"]
