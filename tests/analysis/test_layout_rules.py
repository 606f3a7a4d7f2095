"""Layout ops met in timm-style models: channels-last blocks, attention, split, pad, slicing."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segkit.analysis import GLOBAL, rf_value, trace


def traced(module: nn.Module, size: int = 32):
    return trace(module.eval(), torch.randn(1, 4, size, size)).outputs["out"]


class ChannelsLastBlock(nn.Module):
    """ConvNeXt-style: depthwise 7x7, then LayerNorm + MLP over channels in NHWC."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 7, padding=3, groups=4)
        self.norm, self.fc = nn.LayerNorm(4), nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(self.norm(self.dw(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        return x + y


class Attention(nn.Module):
    """Self-attention over the flattened H x W tokens: every output sees every position."""

    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        weights = torch.softmax(tokens @ tokens.transpose(1, 2), dim=-1)
        return (weights @ tokens).transpose(1, 2).reshape(x.shape)


def test_channels_last_block_stays_local():
    assert rf_value(traced(ChannelsLastBlock())) == 7


def test_attention_is_global():
    assert rf_value(traced(Attention())) == GLOBAL


def test_split_pad_and_strided_slicing():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(2, 2, 3, padding=1)
            self.b = nn.Conv2d(2, 2, 5, padding=2)

        def forward(self, x):
            left, right = torch.chunk(x, 2, dim=1)
            y = torch.cat([self.a(left), self.b(right)], dim=1)  # 3 and 5: max is 5
            y = F.pad(y, (1, 1, 1, 1))[:, :, ::2, ::2]  # subsample: the jump doubles
            return nn.functional.conv2d(y, torch.ones(4, 4, 3, 3))

    out = traced(Net())
    assert out.geometry.axis_jump(0) == 2.0
    assert rf_value(out) == 5 + 2 * 2


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_unsqueeze_stack_and_resize_keep_geometry(mode):
    class Net(nn.Module):
        def forward(self, x):
            y = torch.stack([x, x * 2], dim=2).sum(dim=2)  # over a non-spatial dim: local
            return F.interpolate(y, scale_factor=0.5, mode=mode)

    out = traced(Net())
    assert out.geometry.axis_jump(0) == 2.0
    assert rf_value(out) == (1 if mode == "nearest" else 2)
