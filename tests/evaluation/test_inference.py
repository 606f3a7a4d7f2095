"""Inference modes: where multi-scale + flip and slide must equal whole-image inference."""

from __future__ import annotations

import pytest
import torch

from helpers.eval_models import ContextNet, Pointwise
from segkit.evaluation.inference import (
    InferenceSettings,
    infer,
    predict_multiscale,
    predict_slide,
    predict_whole,
)

X = torch.randn(2, 3, 37, 50, generator=torch.Generator().manual_seed(1))


def test_multiscale_one_scale_no_flip_is_softmax_of_whole():
    model = ContextNet().eval()
    with torch.no_grad():
        whole = predict_whole(model, X)
        ms = predict_multiscale(model, X, InferenceSettings(scales=(1.0,), flip=False))
    torch.testing.assert_close(ms, whole.softmax(1))
    assert torch.equal(ms.argmax(1), whole.argmax(1))


def test_flip_of_a_pointwise_model_changes_nothing_but_matters_with_context():
    settings = InferenceSettings(scales=(1.0,), flip=True)
    pointwise, context = Pointwise().eval(), ContextNet().eval()
    with torch.no_grad():
        torch.testing.assert_close(
            predict_multiscale(pointwise, X, settings), predict_whole(pointwise, X).softmax(1)
        )
        flipped = predict_multiscale(context, X, settings)
        whole = predict_whole(context, X).softmax(1)
    assert not torch.allclose(flipped, whole, atol=1e-4)  # the mirrored pass really ran
    expected = (whole + predict_whole(context, X.flip(-1)).softmax(1).flip(-1)) / 2
    torch.testing.assert_close(flipped, expected)


def test_multiscale_output_size_and_probabilities():
    settings = InferenceSettings(scales=(0.5, 0.75, 1.25), flip=True)
    with torch.no_grad():
        probs = infer(ContextNet().eval(), X, settings)
    assert probs.shape == (2, 4, 37, 50)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 37, 50))


def test_slide_with_window_covering_the_image_is_whole():
    model = ContextNet().eval()
    with torch.no_grad():
        torch.testing.assert_close(
            predict_slide(model, X, window=64, stride=32), predict_whole(model, X)
        )
        settings = InferenceSettings(mode="slide", window=50, stride=10)
        torch.testing.assert_close(infer(model, X, settings), predict_whole(model, X))


def test_overlapping_windows_average_and_cover_every_pixel():
    with torch.no_grad():
        # No context: each window gives the whole-image logits on its pixels, so the average does too.
        torch.testing.assert_close(
            predict_slide(Pointwise().eval(), X, window=16, stride=11),
            predict_whole(Pointwise().eval(), X),
        )
        slid = predict_slide(ContextNet().eval(), X, window=16, stride=11)
    assert slid.shape == (2, 4, 37, 50) and torch.isfinite(slid).all()
    assert not torch.allclose(slid, predict_whole(ContextNet().eval(), X), atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scales": (1.0, 0.0)}, "positive"),
        ({"scales": (-0.5,)}, "positive"),
        ({"scales": ()}, "empty"),
        ({"mode": "tiles"}, "^mode must be 'whole' or 'slide', got 'tiles'$"),
        ({"mode": "slide", "window": 64, "stride": 65}, r"^stride must be in 1\.\.window \(64\)"),
        ({"mode": "slide", "window": 64, "stride": 0}, r"^stride must be in 1\.\.window"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InferenceSettings(**kwargs)
