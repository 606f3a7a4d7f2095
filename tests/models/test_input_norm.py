"""The Segmentor normalises its own uint8 input with its backbone's mean / std."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from helpers.fake_backbone import FakeBackbone
from segkit.constants import IMAGENET_MEAN, IMAGENET_STD
from segkit.models import Segmentor, deeplabv3plus

SMALL_PLUS = {"aspp_channels": 16, "decoder_channels": 16, "low_level_channels": 8}


def _model(**kw) -> Segmentor:
    torch.manual_seed(0)
    return deeplabv3plus(backbone=FakeBackbone, num_classes=4, aux=True, **SMALL_PLUS, **kw)


def _image(*size: int) -> torch.Tensor:
    return torch.randint(0, 256, (2, 3, *size), generator=torch.Generator().manual_seed(1)).to(
        torch.uint8
    )


def _old_forward(model: Segmentor, image: torch.Tensor) -> torch.Tensor:
    """What segkit did before: ``segkit.data.normalize`` on the batch, then the network."""
    shape = (1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN).mul_(255).view(shape)
    std = torch.tensor(IMAGENET_STD).mul_(255).view(shape)
    x = (image.float() - mean) / std
    return F.interpolate(
        model.head(model.backbone(x)), size=x.shape[-2:], mode="bilinear", align_corners=False
    )


def test_buffers_are_not_in_the_state_dict_and_follow_the_backbone():
    model = _model()
    assert model.input_mean == IMAGENET_MEAN and model.input_std == IMAGENET_STD
    assert {"pixel_mean", "pixel_std"} <= {n for n, _ in model.named_buffers()}
    assert not any("pixel_" in k for k in model.state_dict())
    assert model.pixel_mean.flatten().tolist() == pytest.approx([255 * m for m in IMAGENET_MEAN])


def test_a_state_dict_of_the_old_code_loads_and_predicts_the_same():
    """Checkpoints of before hold the same keys; uint8 in = old normalise-then-forward."""
    old = _model().eval()
    buffer = io.BytesIO()
    torch.save(old.state_dict(), buffer)
    torch.manual_seed(123)  # other initial weights: the loaded state must replace all of them
    new = deeplabv3plus(backbone=FakeBackbone, num_classes=4, aux=True, **SMALL_PLUS).eval()
    buffer.seek(0)
    new.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    image = _image(48, 64)
    with torch.no_grad():
        got = new(image)["out"]
        want = _old_forward(old, image)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_float_pixels_equal_uint8_and_other_dtypes_are_refused():
    model = _model().eval()
    image = _image(32, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(image)["out"], model(image.float())["out"])
        with pytest.raises(TypeError, match="uint8 or floating"):
            model(image.long())


def test_bf16_autocast_normalises_in_float32():
    """The normalised image is float32 under autocast; the logits stay near the float32 ones."""
    model = _model().eval()
    seen = {}
    model.backbone.register_forward_pre_hook(lambda _m, args: seen.update(dtype=args[0].dtype))
    image = _image(64, 64)
    with torch.no_grad():
        ref = model(image)["out"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(image)["out"].float()
    assert seen["dtype"] == torch.float32
    assert (low - ref).abs().max() < 0.05 * ref.abs().max()


def test_channels_last_input_and_model():
    model = _model().eval()
    image = _image(64, 64)
    with torch.no_grad():
        ref = model(image)["out"]
        model.to(memory_format=torch.channels_last)
        got = model(image.contiguous(memory_format=torch.channels_last))["out"]
        assert model.normalize(image.contiguous(memory_format=torch.channels_last)).is_contiguous(
            memory_format=torch.channels_last
        )
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_mean_std_come_from_the_backbone_and_move_with_the_model():
    class HalfBackbone(FakeBackbone):
        input_mean = (0.5, 0.5, 0.5)
        input_std = (0.5, 0.5, 0.5)

    model = Segmentor(
        HalfBackbone(), deeplabv3plus(backbone=FakeBackbone, num_classes=3, **SMALL_PLUS).head
    )
    assert model.input_mean == (0.5, 0.5, 0.5)
    white = torch.full((1, 3, 4, 4), 255, dtype=torch.uint8)
    assert model.normalize(white).unique().tolist() == [1.0]
    model.set_input_norm(IMAGENET_MEAN, IMAGENET_STD)
    assert model.input_std == IMAGENET_STD and not any("pixel_" in k for k in model.state_dict())
    model.to(torch.device("meta"))
    assert model.pixel_mean.device.type == "meta"
    model.set_input_norm((0.1, 0.2, 0.3), (1, 1, 1))  # stays where the model is
    assert model.pixel_std.device.type == "meta"
    with pytest.raises(ValueError, match="3 values"):
        model.set_input_norm((0.5, 0.5), (1, 1, 1))
