"""One switch selects the implementation of every atrous conv of a model.

``backbone.atrous_impl=space_to_batch`` must reach the heads' ASPP too: at output stride 8 its
rates are 12, 24, 36, the most dilated convolutions of the model. Checked on what really runs:
every aten convolution of one forward, recorded with its dilation argument.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
from test_model_configs import build
from torch.utils._python_dispatch import TorchDispatchMode

from segkit.backbones import mobilenetv2
from segkit.models import deeplabv3, deeplabv3plus, fcn
from segkit.nn.atrous import AtrousConv2d

SMALL = {"aspp_channels": 8}
SMALL_PLUS = {"aspp_channels": 8, "decoder_channels": 8, "low_level_channels": 8}


class _Dilations(TorchDispatchMode):
    """Collects the dilation argument of every convolution that runs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func.overloadpacket.__name__ == "convolution":
            self.seen.append(max(args[5]))
        return func(*args, **(kwargs or {}))


def kernel_dilations(model: torch.nn.Module, size: int = 64) -> list[int]:
    mode = _Dilations()
    with torch.no_grad(), mode:
        model.eval()(torch.randn(1, 3, size, size))
    return mode.seen


@pytest.mark.parametrize(
    ("builder", "extra"),
    [(deeplabv3, SMALL), (deeplabv3plus, SMALL_PLUS), (fcn, {})],
    ids=["deeplabv3", "deeplabv3plus", "fcn"],
)
def test_space_to_batch_reaches_every_atrous_conv(builder, extra):
    backbone = partial(mobilenetv2, width_mult=0.35, atrous_impl="space_to_batch")
    model = builder(backbone=backbone, num_classes=3, output_stride=8, **extra)
    assert max(kernel_dilations(model)) == 1  # no conv ran as a dilated kernel
    impls = {m.impl for m in model.modules() if isinstance(m, AtrousConv2d) and m.dilation[0] > 1}
    assert impls == {"space_to_batch"}
    # ...and the same model with the default implementation does run dilated kernels
    model = builder(backbone=partial(mobilenetv2, width_mult=0.35), num_classes=3,
                    output_stride=8, **extra)  # fmt: skip
    assert max(kernel_dilations(model)) > 1


def test_the_config_switch_reaches_the_aspp_and_survives_set_output_stride():
    model = build("deeplabv3plus", "mobilenetv2", 16, "backbone.atrous_impl=space_to_batch",
                  "model.aspp_channels=8", "model.decoder_channels=8")  # fmt: skip
    assert model.atrous_impl == "space_to_batch"
    model.set_output_stride(8)
    assert max(kernel_dilations(model)) == 1
    assert model.head.context.rates == (12, 24, 36)


def test_a_built_model_switches_in_place_with_the_same_output():
    torch.manual_seed(0)
    model = deeplabv3(backbone=partial(mobilenetv2, width_mult=0.35), num_classes=3,
                      output_stride=8, **SMALL).eval()  # fmt: skip
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)["out"]
        model.set_atrous_impl("space_to_batch")
        after = model(x)["out"]
    assert model.atrous_impl == "space_to_batch" and max(kernel_dilations(model)) == 1
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
