"""Backbone blocks against their formulas: MobileNetV2's table (paper table 2) and the parameter /
multiply-add counts of an inverted residual and an (aligned) Xception block."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segkit.backbones import mobilenetv2
from segkit.backbones.mobilenetv2 import InvertedResidual
from segkit.backbones.xception import XceptionBlock
from segkit.backbones.xception65 import XceptionModule

# Sandler et al. 2018, table 2 (input 224): input side, t, c, n, s of each bottleneck row.
TABLE2 = [(112, 1, 16, 1, 1), (112, 6, 24, 2, 2), (56, 6, 32, 3, 2), (28, 6, 64, 4, 2),
          (14, 6, 96, 3, 1), (14, 6, 160, 3, 2), (7, 6, 320, 1, 1)]  # fmt: skip


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def madds(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of the convs in one forward (FlopCounterMode counts 2 FLOPs per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


def test_mobilenetv2_follows_table_2_at_224() -> None:
    model = mobilenetv2(output_stride=32, final_conv=True).eval()
    shapes: list[tuple[int, int, int, int]] = []  # (in side, hidden, out channels, out side)
    for block in model.features[1:-1]:
        block.register_forward_hook(
            lambda m, a, y: shapes.append(
                (a[0].shape[-1], m.depthwise.in_channels, y.shape[1], y.shape[-1])
            )
        )
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))[-1]
    assert model.features[0](torch.zeros(1, 3, 224, 224)).shape[1:] == (32, 112, 112)
    rows = iter(shapes)
    c_in = 32
    for side, t, c, n, s in TABLE2:
        for i in range(n):
            in_side, hidden, c_out, out_side = next(rows)
            assert (in_side, hidden, c_out) == (side if i == 0 else side // s, c_in * t, c)
            assert out_side == side // s
            c_in = c
    assert next(rows, None) is None
    assert out.shape[1:] == (1280, 7, 7)  # conv2d 1x1 -> 1280


@pytest.mark.parametrize(
    ("c_in", "c_out", "t", "stride"), [(16, 16, 6, 1), (8, 12, 1, 2), (8, 24, 6, 2)]
)
def test_inverted_residual_params_and_madds(c_in: int, c_out: int, t: int, stride: int) -> None:
    block = InvertedResidual(c_in, c_out, stride=stride, expand_ratio=t)
    h, side = c_in * t, 12
    expand = c_in * h if t != 1 else 0
    assert n_params(block) == expand + 2 * h * (t != 1) + 9 * h + 2 * h + h * c_out + 2 * c_out
    out_side = side // stride
    expected = expand * side**2 + (9 * h + h * c_out) * out_side**2
    assert madds(block, torch.randn(1, c_in, side, side)) == expected
    assert block.use_residual == (stride == 1 and c_in == c_out)


def separable_params(c_in: int, c_out: int, norm_depthwise: bool) -> int:
    """Depthwise 3x3 (+ BN) + pointwise 1x1 + BN."""
    return 9 * c_in + 2 * c_in * norm_depthwise + c_in * c_out + 2 * c_out


def test_xception_blocks_params_and_madds() -> None:
    side = 8
    # Chollet: 2 separable convs 8 -> 16 -> 16, 3x3/2 max-pool, 1x1/2 conv + BN shortcut.
    block = XceptionBlock(8, 16, reps=2, stride=2)
    sep = separable_params(8, 16, False) + separable_params(16, 16, False)
    assert n_params(block) == sep + 8 * 16 + 2 * 16
    per_pixel = 9 * 8 + 8 * 16 + 9 * 16 + 16 * 16
    x = torch.randn(1, 8, side, side)
    assert madds(block, x) == per_pixel * side**2 + 8 * 16 * (side // 2) ** 2
    # Aligned: 3 separable convs with BN after the depthwise, the third strided.
    module = XceptionModule(8, (16, 16, 24), stride=2)
    sep = sum(separable_params(a, b, True) for a, b in [(8, 16), (16, 16), (16, 24)])
    assert n_params(module) == sep + 8 * 24 + 2 * 24
    full = (9 * 8 + 8 * 16 + 9 * 16 + 16 * 16) * side**2
    strided = (9 * 16 + 16 * 24 + 8 * 24) * (side // 2) ** 2  # third conv + shortcut at stride 2
    assert madds(module, x) == full + strided


def test_relu_destroys_a_low_dimensional_embedding_only() -> None:
    """Why ``linear_bottleneck`` exists (MobileNetV2 sec. 3.2, fig. 1): embed a 2-D spiral x by a
    random T (n x 2), apply ReLU. x is recoverable from ReLU(Tx) exactly where at least two rows of
    T are active (solve on them); at n = 2 most of the manifold is lost, at n = 30 none of it."""
    gen = torch.Generator().manual_seed(0)
    t = torch.linspace(0.5, 4 * torch.pi, 400, dtype=torch.float64)
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)  # (N, 2)

    def recoverable_fraction(n: int) -> float:
        fractions = []
        for _ in range(10):
            T = torch.randn(n, 2, generator=gen, dtype=torch.float64)
            y = torch.relu(x @ T.T)
            ok = (y > 0).sum(dim=1) >= 2  # Gaussian rows: two active rows span R^2 a.s.
            for i in ok.nonzero()[:5, 0]:  # recovered exactly from the active rows alone
                rows = y[i] > 0
                sol = torch.linalg.lstsq(T[rows], y[i, rows].unsqueeze(1)).solution
                torch.testing.assert_close(sol.squeeze(1), x[i])
            fractions.append(ok.double().mean().item())
        return sum(fractions) / len(fractions)

    low, high = recoverable_fraction(2), recoverable_fraction(30)
    assert low < 0.5 < 0.99 < high
