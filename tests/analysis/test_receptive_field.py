"""Theoretical receptive field traced from the real data flow: nets with known answers."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segkit.analysis import GLOBAL, UnsupportedOpError, analyze_model, rf_value, trace
from segkit.nn.atrous import AtrousConv2d


def rf(model: nn.Module, size: int = 64, *, meta: bool = False) -> int | str:
    result = trace(model.eval(), torch.randn(1, 3, size, size), meta=meta)
    return rf_value(result.outputs["out"])


def conv(k: int = 3, *, s: int = 1, d: int = 1, c: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c, c, k, stride=s, padding=d * (k - 1) // 2, dilation=d)


@pytest.mark.parametrize("layers", [1, 2, 5])
def test_stacked_3x3_convs(layers):
    assert rf(nn.Sequential(*[conv() for _ in range(layers)])) == 2 * layers + 1


@pytest.mark.parametrize("rate", [1, 2, 6])
def test_one_dilated_conv(rate):
    assert rf(conv(d=rate)) == 2 * rate + 1


class Residual(nn.Module):
    """out = branch(x) + shortcut(x), with an in-place add as in torchvision's ResNet."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.branch, self.shortcut = branch, shortcut

    def forward(self, x):
        y = torch.relu(self.branch(x))
        y += self.shortcut(x)
        return y


def test_residual_block_is_the_larger_branch():
    two_convs = nn.Sequential(conv(), nn.ReLU(), conv())  # 5
    assert rf(Residual(two_convs, conv(1))) == 5
    assert rf(Residual(nn.Sequential(conv(), nn.ReLU(), conv()), conv(d=4))) == 9  # shortcut wins


def test_stride_multiplies_later_contributions():
    assert rf(nn.Sequential(conv(s=2), conv())) == 3 + 2 * 2
    assert rf(nn.Sequential(conv(s=2), conv(s=2), conv())) == 3 + 2 * 2 + 2 * 4
    # the seed-notes formula: 1 + sum_i (k_i - 1) * prod_{j<i} s_j
    layers = [(3, 2), (5, 1), (3, 2), (1, 1), (3, 1)]
    expected = 1 + sum(
        (k - 1) * math.prod(s for _, s in layers[:i]) for i, (k, _) in enumerate(layers)
    )
    assert rf(nn.Sequential(*[conv(k, s=s) for k, s in layers])) == expected


def test_pooling_concat_and_image_level_branch():
    assert rf(nn.Sequential(nn.MaxPool2d(3, 2, 1), conv())) == 3 + 2 * 2
    assert rf(nn.Sequential(nn.AvgPool2d(2), conv())) == 2 + 2 * 2

    class TwoBranches(nn.Module):
        def __init__(self, pooled: bool) -> None:
            super().__init__()
            self.a, self.b, self.pooled = conv(), conv(d=3), pooled

        def forward(self, x):
            branches = [self.a(x), self.b(x)]
            if self.pooled:  # DeepLabv3's image-level feature
                g = F.adaptive_avg_pool2d(x, 1)
                branches.append(F.interpolate(g, size=x.shape[-2:], mode="bilinear"))
            return torch.cat(branches, dim=1)

    assert rf(TwoBranches(pooled=False)) == 7
    assert rf(TwoBranches(pooled=True)) == GLOBAL


def test_upsampling_and_transposed_conv():
    # nearest copies one input pixel; bilinear mixes two neighbours one stride apart
    down = [conv(s=4)]
    assert rf(nn.Sequential(*down, nn.Upsample(scale_factor=4, mode="nearest"))) == 3
    assert rf(nn.Sequential(conv(s=4), nn.Upsample(scale_factor=4, mode="bilinear"))) == 3 + 4
    # FCN's x2 transposed conv (k=4, s=2): each output draws from 2 neighbouring inputs
    up = nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1)
    assert rf(nn.Sequential(conv(s=4), up)) == 3 + 4
    # after upsampling the finer grid: a 3x3 conv adds 2 * (4 / 2)
    assert rf(nn.Sequential(conv(s=4), up, conv())) == 3 + 4 + 2 * 2


@pytest.mark.parametrize("rate", [2, 3])
def test_space_to_batch_atrous_equals_dilated_kernel(rate):
    """Both atrous implementations (segkit.nn.atrous) give the same receptive field and stride."""
    results = []
    for impl in ("dilation", "space_to_batch"):
        torch.manual_seed(0)
        net = nn.Sequential(conv(s=2), AtrousConv2d(3, 3, 3, dilation=rate, impl=impl), conv())
        results.append(trace(net.eval(), torch.randn(1, 3, 48, 48)))
    (a, b) = results
    assert rf_value(a.outputs["out"]) == rf_value(b.outputs["out"]) == 3 + 2 * 2 * rate + 2 * 2
    assert [c.dilation for c in a.convs] == [c.dilation for c in b.convs] == [1, rate, 1]


def test_global_reductions_and_norms():
    class Mean(nn.Module):
        def forward(self, x):
            return x * x.mean(dim=(2, 3), keepdim=True)  # squeeze-excitation style gating

    assert rf(nn.Sequential(conv(), Mean())) == GLOBAL
    assert rf(nn.Sequential(conv(), nn.GroupNorm(1, 3))) == GLOBAL  # statistics over H x W
    assert rf(nn.Sequential(conv(), nn.BatchNorm2d(3), nn.ReLU6(), nn.Hardswish())) == 3  # eval BN


def test_meta_trace_matches_real_trace():
    net = nn.Sequential(
        conv(s=2), nn.ReLU(), conv(d=2), nn.Upsample(scale_factor=2, mode="bilinear")
    )
    real = trace(net.eval(), torch.randn(1, 3, 32, 32))
    meta = trace(net, torch.randn(1, 3, 32, 32), meta=True)
    assert real.outputs["out"].geometry == meta.outputs["out"].geometry
    assert real.macs == meta.macs
    assert real.peak_activation_bytes == meta.peak_activation_bytes


def test_unknown_op_raises_instead_of_guessing():
    class Rolled(nn.Module):
        def forward(self, x):
            return torch.roll(x, shifts=3, dims=-1)

    with pytest.raises(UnsupportedOpError, match="roll"):
        rf(nn.Sequential(conv(), Rolled()))


def test_input_must_be_an_image_batch():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        trace(nn.Identity(), torch.randn(3, 8, 8))


def test_train_mode_batch_norm_mixes_all_positions():
    net = nn.Sequential(conv(), nn.BatchNorm2d(3)).train()
    assert rf_value(trace(net, torch.randn(2, 3, 16, 16)).outputs["out"]) == GLOBAL
    dropout = nn.Sequential(conv(), nn.Dropout(0.5)).train()  # elementwise mask: stays local
    assert rf_value(trace(dropout, torch.randn(2, 3, 16, 16)).outputs["out"]) == 3


class ValueDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = conv()

    def forward(self, x):
        return self.conv(x) if x.abs().sum().item() > 0 else x  # reads a value: no meta trace


def test_value_dependent_forward_traces_for_real_and_says_so_on_meta():
    assert rf(ValueDependent()) == 3
    with pytest.raises(RuntimeError, match="pass trace_meta=False"):
        analyze_model(ValueDependent(), input_size=16, latency_runs=0, erf=False)
    result = analyze_model(
        ValueDependent(), input_size=16, latency_runs=0, erf=False, trace_meta=False
    )
    assert result.model_rf == 3 and result.logits_stride == 1


def test_trace_unaffected_by_deterministic_mode():
    """Trainer(deterministic=True) switches torch to index-based interpolation; tracing must not
    depend on that global switch (and must restore it)."""

    class Up(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Up())
    x = torch.randn(1, 3, 16, 16)
    expected = trace(net, x, meta=True).outputs["out"].geometry
    torch.use_deterministic_algorithms(True)
    try:
        got = trace(net, x, meta=True).outputs["out"].geometry
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    assert got == expected


def test_trace_leaves_torch_deterministic_switch_alone_when_off(monkeypatch):
    """torch.use_deterministic_algorithms imports torch._inductor (seconds of start-up): the trace
    calls it only to switch an enabled deterministic mode off and back on."""
    calls = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *a, **k: calls.append(a))
    trace(nn.Sequential(conv()), torch.randn(1, 3, 8, 8), meta=True)
    assert calls == []
