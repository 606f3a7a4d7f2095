"""Effective receptive field: gradient support, mass radii, heatmap."""

import math

import pytest
import torch
from torch import nn

from segkit.analysis import effective_receptive_field, mass_radii, save_heatmap
from segkit.analysis.erf import batch_calibrated_bn


def ones_conv(k: int, d: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(3, 3, k, padding=d * (k - 1) // 2, dilation=d, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    return conv


def test_gradient_support_is_the_theoretical_rf():
    erf = effective_receptive_field(nn.Sequential(ones_conv(3), ones_conv(3)), input_size=15)
    support = erf.grad > 0
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    assert erf.centre == (7, 7)
    assert (rows.min().item(), rows.max().item()) == (5, 9)  # 5 = 2 * 2 + 1 pixels
    assert (cols.min().item(), cols.max().item()) == (5, 9)
    assert math.isclose(erf.grad.sum().item(), 1.0, rel_tol=1e-5)
    # with all-ones weights the gradient is the 2D triangle kernel: its peak is the centre
    assert erf.grad[7, 7] == erf.grad.max()
    assert erf.r99 <= math.sqrt(8) + 1e-6


def test_dilation_spreads_the_erf():
    small = effective_receptive_field(ones_conv(3), input_size=21)
    wide = effective_receptive_field(ones_conv(3, d=4), input_size=21)
    assert math.isclose(small.r50, 1.0) and math.isclose(wide.r50, 4.0)  # the 8 taps, 1 or 4 away


def test_mass_radii_known_distributions():
    point = torch.zeros(11, 11)
    point[5, 5] = 1
    assert mass_radii(point, (5, 5), (0.5, 0.99)) == (0.0, 0.0)
    ring = torch.zeros(11, 11)
    ring[5, 5], ring[5, 8] = 1, 1  # half the mass at distance 3
    assert mass_radii(ring, (5, 5), (0.5, 0.9)) == (0.0, 3.0)


def test_heatmap_png(tmp_path):
    erf = effective_receptive_field(ones_conv(3, d=2), input_size=17, samples=1)
    path = save_heatmap(erf, tmp_path / "sub" / "erf.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments():
    """The messages name this function's own arguments (no config keys in the library)."""
    with pytest.raises(ValueError, match="^samples must be >= 1"):
        effective_receptive_field(ones_conv(3), input_size=9, samples=0)
    with pytest.raises(ValueError, match="^input_size must be >= 3"):
        effective_receptive_field(ones_conv(3), input_size=2)


def test_bn_calibration_uses_the_batch_statistics_and_leaves_the_model_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    buffers = (net[1].running_mean, net[1].running_var)
    batch = torch.randn(2, 3, 16, 16)
    feats = net[0](batch).detach()
    mean, var = feats.mean(dim=(0, 2, 3)), feats.var(dim=(0, 2, 3))  # unbiased, as BN stores it
    with batch_calibrated_bn(net):
        out = net(batch)
        assert torch.allclose(net[1].running_mean, mean, atol=1e-5)
        assert torch.allclose(net[1].running_var, var, atol=1e-4)
    expected = torch.relu((feats - mean.view(1, -1, 1, 1)) / (var.view(1, -1, 1, 1) + 1e-5).sqrt())
    assert torch.allclose(out, expected, atol=1e-4)
    assert (net[1].running_mean, net[1].running_var) == buffers  # the very same tensors back
    effective_receptive_field(net, input_size=15, calibrate_bn=True)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


class ImagePool(nn.Module):
    """A local branch plus an image-level branch whose BN sees one value per image and channel;
    ``norm`` is called twice (shared statistics must not break the backward pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.local, self.proj = nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 1)
        self.norm = nn.BatchNorm2d(3)

    def forward(self, x):
        pooled = self.norm(self.proj(x.mean(dim=(2, 3), keepdim=True)))
        return self.norm(self.local(x)) + pooled.expand_as(x)


def test_bn_calibration_with_one_sample_and_an_image_pooling_branch():
    """One requested sample still forwards two images: an image-level BN needs two values."""
    torch.manual_seed(0)
    erf = effective_receptive_field(ImagePool(), input_size=15, samples=1, calibrate_bn=True)
    assert torch.isfinite(erf.grad).all() and math.isclose(erf.grad.sum().item(), 1.0, rel_tol=1e-5)
    assert erf.grad.count_nonzero() == 15 * 15  # the pooled branch reaches every input pixel


def test_bn_calibration_revives_the_deep_path_of_a_fresh_model():
    """A deep fresh stack in eval mode shrinks the signal; calibrated BN keeps it (see erf.py)."""
    torch.manual_seed(0)
    layers = []
    for _ in range(12):
        layers += [nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU()]
    deep = nn.Sequential(*layers)

    class TwoPaths(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.deep, self.skip = deep, nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return self.deep(x) + self.skip(x)

    raw = effective_receptive_field(TwoPaths(), input_size=41)
    calibrated = effective_receptive_field(TwoPaths(), input_size=41, calibrate_bn=True)
    assert calibrated.r90 > raw.r90
