"""Receptive field of the real backbones as a function of output stride.

Seed notes: "in the last stages ordinary strided convs are replaced by dilated convs, so that
resolution is not reduced further and the receptive field stays the same". With the timm rule (the
striding block keeps the old rate, later blocks multiply it) this holds *exactly*: a 3x3 conv that
used to run on a map of stride 2s now runs at stride s with rate 2, i.e. (3 - 1) * 2 * s pixels
either way. What changes is resolution and cost, not the theoretical RF.
"""

import math

import pytest
import torch

from segkit.analysis import rf_value, trace
from segkit.backbones import create_backbone

# The MobileNetV2 table of the seed notes (t, c, n, s), after the 3x3 stride-2 stem.
MOBILENETV2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1)]  # fmt: skip


def mobilenetv2_rf_from_table() -> int:
    """1 + sum (k - 1) * jump over the stem and every bottleneck's 3x3 depthwise conv."""
    rf, jump = 1 + 2 * 1, 2  # stem: 3x3, stride 2
    for _t, _c, n, s in MOBILENETV2:
        for i in range(n):
            rf += 2 * jump  # depthwise 3x3 runs at the current jump, then strides
            jump *= s if i == 0 else 1
    return rf  # 1x1 expansions/projections and the final 1x1 conv add nothing


def backbone_rfs(name: str, size: int = 64) -> dict[int, tuple[list, list]]:
    out = {}
    for os_ in (32, 16, 8):
        bb = create_backbone(name, output_stride=os_).eval()
        result = trace(bb, torch.zeros(1, 3, size, size), meta=True)
        feats = sorted(result.outputs.values(), key=lambda r: int(r.name.split(".")[-1]))
        out[os_] = ([rf_value(r) for r in feats], [r.geometry.axis_jump(0) for r in feats])
        assert out[os_][1] == [float(s) for s in bb.strides]  # traced strides = the contract's
    return out


def test_mobilenetv2_rf_matches_seed_table_at_every_output_stride():
    rfs = backbone_rfs("mobilenetv2")
    assert mobilenetv2_rf_from_table() == 491
    for os_ in (32, 16, 8):
        assert rfs[os_][0][-1] == 491
        assert rfs[os_][0] == rfs[32][0]  # every stage, not only the last
    assert rfs[8][1] == [4, 8, 8, 8]


@pytest.mark.parametrize("name", ["xception", "xception65"])
def test_xception_rf_independent_of_output_stride(name):
    rfs = backbone_rfs(name)
    assert rfs[16][0] == rfs[32][0] == rfs[8][0]
    assert rfs[8][1][-1] == 8 and rfs[16][1][-1] == 16 and rfs[32][1][-1] == 32


def test_timm_adapter_is_traced_too():
    """The same code runs on a timm model (residual adds, max-pool stem, in-place ReLUs)."""
    rfs = {}
    for os_ in (32, 8):
        bb = create_backbone("timm", output_stride=os_, model_name="resnet18").eval()
        result = trace(bb, torch.zeros(1, 3, 64, 64), meta=True)
        rfs[os_] = [rf_value(r) for r in result.outputs.values()]
    # ResNet-18: stem 7x7/2 (7), max-pool 3x3/2 (+4 = 11), 4 3x3 convs at jump 4; each later
    # stage: its striding 3x3 runs at the previous jump, the other three at the new one
    expected_last = 11 + 4 * 2 * 4 + sum(2 * j // 2 + 3 * 2 * j for j in (8, 16, 32))
    assert rfs[32][-1] == rfs[8][-1] == expected_last == 435
    assert not math.isinf(rfs[8][-1])


def test_space_to_batch_backbone_has_the_same_rf_and_rates():
    """The real MobileNetV2 at OS 8 with both atrous implementations (seed notes: same output)."""
    seen = {}
    for impl in ("dilation", "space_to_batch"):
        bb = create_backbone("mobilenetv2", output_stride=8, atrous_impl=impl).eval()
        result = trace(bb, torch.zeros(1, 3, 64, 64), meta=True)
        seen[impl] = (
            [rf_value(r) for r in result.outputs.values()],
            [c.dilation for c in result.convs],
        )
    assert seen["dilation"] == seen["space_to_batch"]
    assert seen["dilation"][0][-1] == 491 and max(seen["dilation"][1]) == 4
