"""The comparison's uncertainty: mIoU of summed matrices, the two-level paired bootstrap, and the
rule that a direction is claimed only where the interval (with seeds) supports it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.compare import load_script
from segkit.compare.stats import Bootstrap, Summary, miou, verdict, welch_interval
from segkit.evaluation.metrics import scores_from_confusion

doc = load_script("comparison_doc")
K, N = 3, 60


def images(rng: np.random.Generator, accuracy: float, n: int = N) -> np.ndarray:
    """(n, K, K) per-image matrices of a predictor right on ``accuracy`` of its pixels (per image
    accuracy jittered around it, so images differ), 100 pixels per image."""
    out = np.zeros((n, K, K), dtype=np.int64)
    for i in range(n):
        acc = np.clip(rng.normal(accuracy, 0.08), 0, 1)
        for c in range(K):
            right = rng.binomial(33, acc)
            out[i, c, c] = right
            out[i, c, (c + 1) % K] = 33 - right
    return out


def test_miou_matches_scores_from_confusion() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        cm = rng.integers(0, 50, size=(K, K))
        cm[rng.integers(0, K)] = 0  # a class absent from the ground truth
        expected = scores_from_confusion(torch.from_numpy(cm))["mIoU"]
        assert miou(cm) == pytest.approx(expected)
    assert np.isnan(miou(np.zeros((K, K))))
    assert miou(np.stack([np.eye(K), np.ones((K, K))])).tolist() == pytest.approx([1.0, 1 / 5])


def test_point_estimate_is_the_mean_over_seeds_of_the_whole_set_miou() -> None:
    rng = np.random.default_rng(1)
    a = [images(rng, 0.8) for _ in range(3)]
    b = [images(rng, 0.6) for _ in range(2)]
    iv = Bootstrap(N).difference(a, b)
    want = np.mean([miou(x.sum(0)) for x in a]) - np.mean([miou(x.sum(0)) for x in b])
    assert iv.delta == pytest.approx(want)
    assert iv.low < iv.delta < iv.high and (iv.seeds_a, iv.seeds_b) == (3, 2)


def test_a_real_difference_with_seeds_is_claimed() -> None:
    rng = np.random.default_rng(2)
    a = [images(rng, 0.85) for _ in range(3)]
    b = [images(rng, 0.65) for _ in range(3)]
    iv = Bootstrap(N).difference(a, b)
    assert iv.excludes_zero and verdict(iv) == "higher"
    assert verdict(Bootstrap(N).difference(b, a)) == "lower"
    assert doc.interval_text(iv).startswith("higher (Δ = +")


def test_same_design_different_seeds_is_not_reported_as_different() -> None:
    """Two designs that are the same network trained with other seeds: each seed's networks are
    genuinely different (here: accuracy 0.62-0.78 by seed), so an image-only bootstrap of one seed
    against another finds a 'difference'; the two-level bootstrap over 3 seeds a side does not."""
    rng = np.random.default_rng(3)
    seed_accuracy = [0.62, 0.78, 0.70, 0.66, 0.74, 0.71]
    runs = [images(rng, acc) for acc in seed_accuracy]
    one_vs_one = Bootstrap(N).difference(runs[:1], runs[1:2])
    assert one_vs_one.excludes_zero  # images alone: 'significant' ...
    assert verdict(one_vs_one) == "single-seed"  # ... but one seed a side claims nothing
    text = doc.interval_text(one_vs_one)
    assert "higher" not in text and "lower" not in text and "no direction is claimed" in text
    iv = Bootstrap(N).difference(runs[:3], runs[3:])
    assert not iv.excludes_zero and verdict(iv) == "none"
    assert doc.interval_text(iv).startswith("no measurable difference (Δ = ")


def test_contrasts_use_the_same_resamples() -> None:
    rng = np.random.default_rng(4)
    a, b = [images(rng, 0.8) for _ in range(2)], [images(rng, 0.7) for _ in range(2)]
    boot = Bootstrap(N)
    overall, again = boot.difference(a, b, keys=("A", "B")), boot.difference(a, b, keys=("A", "B"))
    zero = overall.minus(again)  # same images, same seeds drawn: identically 0
    assert zero.delta == 0 and zero.low == 0 and zero.high == 0
    assert np.array_equal(overall.samples, again.samples)


def test_joint_seed_key_pairs_the_same_networks() -> None:
    """A network and itself: with one key the seeds are drawn jointly and the difference is 0 in
    every resample; with independent keys seed noise appears."""
    rng = np.random.default_rng(5)
    runs = [images(rng, acc) for acc in (0.6, 0.8, 0.7)]
    joint = Bootstrap(N).difference(runs, runs, keys=("same", "same"))
    assert joint.low == joint.high == 0
    apart = Bootstrap(N).difference(runs, runs, keys=("x", "y"))
    assert apart.low < 0 < apart.high


def test_bootstrap_is_reproducible_and_checks_sizes() -> None:
    rng = np.random.default_rng(6)
    a, b = [images(rng, 0.8)], [images(rng, 0.7)]
    assert Bootstrap(N).difference(a, b) == Bootstrap(N).difference(a, b)
    with pytest.raises(ValueError, match="12 images, the bootstrap was drawn for 60"):
        Bootstrap(N).difference([images(rng, 0.8, n=12)], [images(rng, 0.8, n=12)])


def test_summary_and_welch() -> None:
    assert Summary.of([0.5]) == Summary(0.5, None, 1)
    s = Summary.of([0.4, 0.6, None, float("nan")])
    assert (s.mean, s.n) == (pytest.approx(0.5), 2) and s.std == pytest.approx(0.1414, abs=1e-4)
    assert Summary.of([]) is None
    assert welch_interval([1.0], [2.0, 3.0]) is None
    delta, low, high = welch_interval([10.0, 11.0, 12.0], [10.5, 11.5, 12.5])
    assert delta == pytest.approx(-0.5) and low < 0 < high
    delta, low, high = welch_interval([20.0, 20.5, 21.0], [10.0, 10.5, 11.0])
    assert low > 0


def test_block_weights_keep_each_sequence_whole_sized_and_draw_consecutive_frames() -> None:
    from segkit.compare.stats import block_weights

    sequences = ["a"] * 10 + ["b"] * 7
    w = block_weights(sequences, 4, 500, np.random.default_rng(0))
    assert w.shape == (500, 17)
    assert (w[:, :10].sum(1) == 10).all() and (w[:, 10:].sum(1) == 7).all()
    # every drawn frame of "b" is part of a run of consecutive drawn frames (blocks of 4, cut
    # to 7 frames: 4 + 3), circularly: never an isolated frame
    drawn = w[:, 10:] > 0
    isolated = drawn & ~np.roll(drawn, 1, axis=1) & ~np.roll(drawn, -1, axis=1)
    assert not isolated.any()
    # each frame is about equally likely (circular blocks): mean multiplicity ~ 1 everywhere
    assert np.allclose(w.mean(0), 1.0, atol=0.15)
    with pytest.raises(ValueError, match="block must be >= 1"):
        block_weights(sequences, 0, 5, np.random.default_rng(0))


def test_blocks_widen_the_interval_of_correlated_frames() -> None:
    """Frames of one video drift together: slow per-frame swings that a frame-level bootstrap
    treats as independent. Block resampling gives a wider interval than single frames."""
    rng = np.random.default_rng(3)
    n = 120
    drift = np.repeat(rng.normal(0, 0.15, n // 20), 20)  # 6 stretches of 20 alike frames
    a = np.zeros((n, K, K))
    b = np.zeros((n, K, K))
    for i in range(n):
        for cm, acc in ((a, 0.7 + drift[i]), (b, 0.7)):
            right = 33 * np.clip(acc, 0, 1)
            for c in range(K):
                cm[i, c, c], cm[i, c, (c + 1) % K] = right, 33 - right
    sequences = ["s1"] * 60 + ["s2"] * 60
    frames = Bootstrap(n, sequences=sequences, block=1).difference([a, a], [b, b])
    blocks = Bootstrap(n, sequences=sequences, block=20).difference([a, a], [b, b])
    assert (blocks.high - blocks.low) > 1.5 * (frames.high - frames.low)


def test_block_length_follows_the_autocorrelation() -> None:
    from segkit.compare.stats import block_length

    rng = np.random.default_rng(4)
    independent = [rng.normal(size=200), rng.normal(size=150)]
    assert block_length(independent) == 1
    smooth = [np.repeat(rng.normal(size=20), 10), np.repeat(rng.normal(size=15), 10)]
    assert 5 <= block_length(smooth) <= 10
    assert block_length([[1.0, 1.0, 1.0]]) == 1  # no variance: nothing to correlate


def test_bf_difference_resamples_the_per_image_bf(tmp_path) -> None:
    from segkit.compare.stats import ImageConfusion
    from segkit.evaluation.evaluator import EvalResult
    from segkit.tasks.evaluate import write_image_confusion

    rng = np.random.default_rng(3)
    per_class = rng.uniform(0.3, 0.9, size=(N, K))
    per_class[rng.random((N, K)) < 0.3] = np.nan  # classes absent from an image's ground truth
    per_class[5] = np.nan  # an image without a labelled pixel: no BF
    matrices = torch.from_numpy(images(rng, 0.8))
    result = EvalResult(
        confusion=matrices.sum(0), image_ids=[f"im{i}" for i in range(N)], image_miou=[0.5] * N,
        num_images=N, image_confusion=matrices, image_bf=torch.from_numpy(per_class),
    )  # fmt: skip
    write_image_confusion(result, tmp_path / "per_image_confusion.npz")
    loaded = ImageConfusion.load(tmp_path / "per_image_confusion.npz")
    assert loaded.bf.shape == (N,) and np.isnan(loaded.bf[5])
    assert np.nanmean(loaded.bf) == pytest.approx(result.scores()["BF"])
    better = np.where(np.isnan(loaded.bf), np.nan, loaded.bf + 0.1)
    boot = Bootstrap(N)
    iv = boot.difference([better, better], [loaded.bf, loaded.bf], score="BF")
    assert iv.delta == pytest.approx(0.1) and iv.low == pytest.approx(0.1)
    assert iv.high == pytest.approx(0.1)
    noisy = boot.difference([loaded.bf], [loaded.bf[::-1]], score="BF")
    assert noisy.low < noisy.delta < noisy.high and verdict(noisy) == "single-seed"
    # old files: no bf array
    np.savez(
        tmp_path / "old.npz",
        **{
            k: v
            for k, v in np.load(tmp_path / "per_image_confusion.npz").items()
            if not k.startswith("bf")
        },
    )
    assert ImageConfusion.load(tmp_path / "old.npz").bf is None


def test_block_length_of_an_ar1_series_is_where_its_autocorrelation_drops() -> None:
    from segkit.compare.stats import autocorrelation, block_length

    rng = np.random.default_rng(5)

    def ar1(phi: float, n: int) -> np.ndarray:
        x = np.zeros(n)
        for t in range(1, n):
            x[t] = phi * x[t - 1] + rng.normal()
        return x

    series = [ar1(0.8, 2000), ar1(0.8, 3000)]
    assert autocorrelation(series, 1) == pytest.approx(0.8, abs=0.05)
    # phi^k < 0.2 first at k = 8 for phi = 0.8
    assert 6 <= block_length(series) <= 10
    assert block_length([ar1(0.0, 2000)]) == 1
    assert autocorrelation([[2.0, 2.0]], 1) is None
