"""Uncertainty of a comparison: mean ± std over seeds, and a paired bootstrap of mIoU differences.

Two sources of noise decide whether design A beats design B on a validation set:

- **which validation images** were drawn (another sample of the same distribution would give other
  numbers): estimated by resampling image ids with replacement, the *same* ids for A and B (paired:
  both designs are scored on one set, so their per-image errors are correlated);
- **which training seed** (initialisation, data order, augmentation): estimated by resampling each
  design's seeds with replacement.

``Bootstrap`` does both at once (a two-level bootstrap): every resample draws one multiset of image
ids shared by all designs and, per design, a multiset of its seeds; it sums the drawn images'
per-image confusion matrices (``per_image_confusion.npz``), recomputes mIoU for every drawn seed, and
averages over the drawn seeds. The boundary F1 (``score="BF"``) is a mean over images already: a
resample averages the drawn images' BF (``bf`` in the same file) with their multiplicities. The 2.5th and 97.5th percentiles of ``mean_A - mean_B`` over the
resamples are the 95 % interval. With one seed on a side the seed level contributes nothing and the
interval covers image sampling only: :func:`verdict` then claims no direction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

#: Resamples of every interval in the generated docs (fixed seed: the doc is reproducible).
RESAMPLES = 2000
BOOTSTRAP_SEED = 0
LEVEL = 0.95


def miou(cm: np.ndarray) -> np.ndarray:
    """(..., K, K) confusion matrices (rows = ground truth) -> (...) mIoU over the classes present
    in the ground truth or the prediction of each matrix (as ``scores_from_confusion``); NaN where a
    matrix is empty."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    union = cm.sum(-1) + cm.sum(-2) - tp
    present = union > 0
    iou = np.where(present, tp / np.where(present, union, 1.0), 0.0)
    count = present.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, iou.sum(-1) / count, np.nan)


def background_floor(class_pixels: Sequence[int]) -> float | None:
    """mIoU of labelling every pixel background (class 0), from the ground-truth pixel count of each
    class (a confusion matrix's row sums): background IoU = its share of the pixels, every other
    class present in the ground truth scores 0. None when no pixel is labelled. A design whose
    mIoU is not above this has learnt nothing an all-background predictor does not know."""
    counts = [int(n) for n in class_pixels]
    total, present = sum(counts), sum(1 for n in counts if n > 0)
    return None if not total else counts[0] / total / present


@dataclass(frozen=True)
class ImageConfusion:
    """The arrays of one evaluation's ``per_image_confusion.npz`` (see docs/metrics.md)."""

    ids: tuple[str, ...]
    confusion: np.ndarray  # (N, K, K)
    widths: tuple[int, ...]
    trimap: np.ndarray  # (N, W, K, K)
    bf: np.ndarray | None = None  # (N,) boundary F1 per image, NaN = not scored; None: not written

    @classmethod
    def load(cls, path: str | Path) -> ImageConfusion:
        with np.load(path) as npz:
            return cls(
                ids=tuple(str(i) for i in npz["ids"]),
                confusion=npz["confusion"],
                widths=tuple(int(w) for w in npz["trimap_widths"]),
                trimap=npz["trimap_confusion"],
                bf=npz["bf"] if "bf" in npz.files else None,
            )

    def band(self, width: int | None) -> np.ndarray:
        """(N, K, K): the whole image (``width`` None) or the trimap band of ``width`` px."""
        if width is None:
            return self.confusion
        return self.trimap[:, self.widths.index(width)]


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (None for a single value) of per-seed figures."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary | None:
        vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        if not vals:
            return None
        std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
        return cls(float(np.mean(vals)), std, len(vals))


@dataclass(frozen=True)
class Interval:
    """A difference ``A - B`` with its bootstrap interval. ``samples``: the resampled differences
    (to form contrasts with another interval drawn by the same ``Bootstrap``)."""

    delta: float
    low: float
    high: float
    seeds_a: int
    seeds_b: int
    samples: np.ndarray = field(repr=False, compare=False)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def minus(self, other: Interval) -> Interval:
        """The contrast ``self - other`` (e.g. a gain near boundaries minus the overall gain), from
        the same resamples (both must come from one ``Bootstrap`` over the same designs)."""
        samples = self.samples - other.samples
        low, high = _percentiles(samples)
        return Interval(
            self.delta - other.delta,
            low,
            high,
            min(self.seeds_a, other.seeds_a),
            min(self.seeds_b, other.seeds_b),
            samples,
        )


def _percentiles(samples: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def verdict(iv: Interval) -> str:
    """``higher`` / ``lower`` only when the interval excludes 0 *and* both sides have at least two
    seeds (otherwise seed-to-seed variation is not in the interval); else ``none``
    (no measurable difference) or ``single-seed``."""
    if min(iv.seeds_a, iv.seeds_b) < 2:
        return "single-seed"
    if not iv.excludes_zero:
        return "none"
    return "higher" if iv.delta > 0 else "lower"


class Bootstrap:
    """Two-level paired bootstrap over the images of one validation set (see the module doc).

    Args:
        num_images: N, the images every compared evaluation holds (same ids, same order).
        resamples: number of resamples.
        seed: of the random generator; the image draws are made once here, so every interval from
            this object uses the same image multisets (contrasts between intervals are valid).
    """

    def __init__(
        self,
        num_images: int,
        *,
        resamples: int = RESAMPLES,
        seed: int = BOOTSTRAP_SEED,
        sequences: Sequence[str] | None = None,
        block: int = 1,
    ):
        if num_images < 1:
            raise ValueError("a bootstrap needs at least one image")
        self.rng = np.random.default_rng(seed)
        self.resamples = resamples
        # (R, N) multiplicities: image n appears weights[r, n] times in resample r.
        if sequences is None:
            if block != 1:
                raise ValueError("block resampling needs the images' sequences")
            self.weights = self.rng.multinomial(
                num_images, np.full(num_images, 1.0 / num_images), size=resamples
            ).astype(np.float64)
        else:
            if len(sequences) != num_images:
                raise ValueError(f"{len(sequences)} sequence labels for {num_images} images")
            self.weights = block_weights(sequences, block, resamples, self.rng)
        self.block = block
        self._seed_draws: dict[tuple[int, str], np.ndarray] = {}

    def _seed_index(self, num_seeds: int, key: str) -> np.ndarray:
        """(R, S) seed indices of design ``key``: drawn once per design, so all its intervals
        (overall, each band) resample the same seeds."""
        if (num_seeds, key) not in self._seed_draws:
            self._seed_draws[num_seeds, key] = self.rng.integers(
                0, num_seeds, size=(self.resamples, num_seeds)
            )
        return self._seed_draws[num_seeds, key]

    def resampled_miou(self, stacks: Sequence[np.ndarray], key: str) -> np.ndarray:
        """(R,) mean over resampled seeds of the mIoU on resampled images; ``stacks``: one (N, K, K)
        per seed."""
        per_seed = np.stack([np.asarray(s, dtype=np.float64) for s in stacks])  # (S, N, K, K)
        s, n, k, _ = per_seed.shape
        if n != self.weights.shape[1]:
            raise ValueError(
                f"{key}: {n} images, the bootstrap was drawn for {self.weights.shape[1]}"
            )
        sums = np.matmul(self.weights, per_seed.reshape(s, n, k * k))  # (S, R, K*K)
        scores = miou(sums.reshape(s, self.resamples, k, k)).T  # (R, S)
        drawn = np.take_along_axis(scores, self._seed_index(s, key), axis=1)
        return np.nanmean(drawn, axis=1)

    def resampled_mean(self, stacks: Sequence[np.ndarray], key: str) -> np.ndarray:
        """(R,) mean over resampled seeds of the mean per-image score (e.g. BF) of the resampled
        images, NaN images left out; ``stacks``: one (N,) array per seed."""
        per_seed = np.stack([np.asarray(s, dtype=np.float64) for s in stacks])  # (S, N)
        if per_seed.shape[1] != self.weights.shape[1]:
            raise ValueError(
                f"{key}: {per_seed.shape[1]} images, the bootstrap was drawn for "
                f"{self.weights.shape[1]}"
            )
        scored = ~np.isnan(per_seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = (self.weights @ np.where(scored, per_seed, 0.0).T) / (
                self.weights @ scored.T.astype(np.float64)
            )  # (R, S)
        drawn = np.take_along_axis(scores, self._seed_index(len(per_seed), key), axis=1)
        return np.nanmean(drawn, axis=1)

    def difference(
        self,
        a: Sequence[np.ndarray],
        b: Sequence[np.ndarray],
        *,
        keys: tuple[str, str] = ("a", "b"),
        score: Literal["mIoU", "BF"] = "mIoU",
    ) -> Interval:
        """score(A) - score(B), means over seeds, with the bootstrap interval. ``a`` and ``b``: per
        seed one (N, K, K) per-image stack (mIoU) or one (N,) per-image BF array (``score="BF"``,
        ``ImageConfusion.bf``), images in the same order. Give both sides the same key to resample
        their seeds jointly (the same trained networks, e.g. one evaluated at another output
        stride)."""
        if score == "BF":
            point = float(np.mean([np.nanmean(x) for x in a]) - np.mean([np.nanmean(x) for x in b]))
            samples = self.resampled_mean(a, keys[0]) - self.resampled_mean(b, keys[1])
            low, high = _percentiles(samples)
            return Interval(point, low, high, len(a), len(b), samples)
        point = float(np.nanmean(miou(np.stack([x.sum(0) for x in a])))) - float(
            np.nanmean(miou(np.stack([x.sum(0) for x in b])))
        )
        samples = self.resampled_miou(a, keys[0]) - self.resampled_miou(b, keys[1])
        low, high = _percentiles(samples)
        return Interval(point, low, high, len(a), len(b), samples)


def block_weights(
    sequences: Sequence[str], block: int, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """(R, N) multiplicities of a moving-block bootstrap within each video sequence.

    Consecutive frames of a video are correlated, so resampling single frames as if independent
    makes intervals too narrow. Here the images of each sequence (``sequences[n]``: image n's
    sequence; images of a sequence in frame order) are covered by ``ceil(L / block)`` blocks of
    ``block`` consecutive frames, each starting at a uniformly drawn frame (circularly wrapped, so
    every frame is equally likely to be drawn), and cut to the sequence's length ``L``: every
    resample holds each sequence with its own length. ``block=1`` resamples single frames within
    each sequence.
    """
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    labels = list(sequences)
    weights = np.zeros((resamples, len(labels)))
    for name in dict.fromkeys(labels):
        members = np.array([i for i, label in enumerate(labels) if label == name])
        length = len(members)
        size = min(block, length)
        count = -(-length // size)
        starts = rng.integers(0, length, size=(resamples, count))  # (R, B)
        frames = (starts[..., None] + np.arange(size)).reshape(resamples, -1) % length
        frames = frames[:, :length]  # (R, L) frame positions inside the sequence
        for r in range(resamples):
            np.add.at(weights[r], members[frames[r]], 1.0)
    return weights


def block_length(series: Sequence[Sequence[float]], *, threshold: float = 0.2) -> int:
    """A block length for :func:`block_weights`: the smallest lag at which the autocorrelation of
    a per-frame score (e.g. each frame's mIoU), pooled over the sequences in ``series`` (each in
    frame order), falls below ``threshold``; frames that far apart are treated as independent.
    At least 1, at most half the shortest sequence."""
    parts = [x for x in series if len(x) > 1]
    if not parts or autocorrelation(parts, 1) is None:
        return 1
    limit = max(1, min(len(x) for x in parts) // 2)
    for lag in range(1, limit + 1):
        if autocorrelation(parts, lag) < threshold:
            return lag
    return limit


def autocorrelation(series: Sequence[Sequence[float]], lag: int) -> float | None:
    """The autocorrelation at ``lag`` of a per-frame score pooled over ``series`` (each one
    sequence in frame order, centred on its own mean); None when the scores do not vary."""
    centred = [np.asarray(x, dtype=np.float64) for x in series if len(x) > 1]
    centred = [c - c.mean() for c in centred]
    variance = sum(float((c**2).sum()) for c in centred)
    if variance == 0:
        return None
    return sum(float((c[:-lag] * c[lag:]).sum()) for c in centred if len(c) > lag) / variance


def welch_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float] | None:
    """mean(a) - mean(b) with a 95 % Welch t interval over seeds (per-seed scalars such as an ERF
    radius, which have no per-image decomposition); None with fewer than two values a side."""
    from scipy import stats  # scipy is a dependency; imported here so `segkit.compare` stays light

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    delta = float(a.mean() - b.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return delta, delta, delta
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) * se
    return delta, delta - half, delta + half


__all__ = [
    "autocorrelation",
    "background_floor",
    "block_length",
    "block_weights",
    "BOOTSTRAP_SEED",
    "LEVEL",
    "RESAMPLES",
    "Bootstrap",
    "ImageConfusion",
    "Interval",
    "Summary",
    "miou",
    "verdict",
    "welch_interval",
]
