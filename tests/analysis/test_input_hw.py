"""``analyze`` at a non-square input (CamVid frames are 360 x 480): an int N or an [H, W] pair for
``input_size`` / ``erf_input_size``, exact multiply-adds at H x W, the same figures for N and [N, N]."""

from __future__ import annotations

import math

import pytest
import torch
from test_analyze_task import _cfg
from torch import nn

from segkit.analysis import analyze_model, effective_receptive_field, format_summary
from segkit.models import create_model
from segkit.nn.context import ASPPPooling
from segkit.tasks.analyze import analyze

#: The figures of a run that depend on the clock, not on the model and its input.
TIMING = {"seconds", "latency_ms", "latency_runs", "latency_spread", "latency_warning", "threads"}


def _out(size: int, k: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def _macs(model: nn.Module, size) -> int:
    return analyze_model(model, input_size=size, latency_runs=0, erf=False).macs


def test_conv_stack_macs_are_the_per_layer_formula_at_h_by_w():
    """K_h * K_w * C_in * C_out * H_out * W_out summed over the layers, with each layer's own
    output height and width (odd sizes: the floor of a stride-2 conv differs per axis)."""
    layers = [(3, 8, 3, 2, 1, 1), (8, 16, 3, 1, 2, 2), (16, 4, 1, 1, 0, 1)]
    model = nn.Sequential(*(nn.Conv2d(i, o, k, s, p, d, bias=False) for i, o, k, s, p, d in layers))
    h, w = 37, 50
    expected = 0
    for c_in, c_out, k, s, p, d in layers:
        h, w = _out(h, k, s, p, d), _out(w, k, s, p, d)
        expected += k * k * c_in * c_out * h * w
    analysis = analyze_model(model, input_size=[37, 50], latency_runs=0, erf=False)
    assert analysis.macs == expected
    assert analysis.input_size == (37, 50)
    assert (analysis.stages[-1].height, analysis.stages[-1].width) == (h, w) == (19, 25)


def test_macs_scale_as_h_times_w_up_to_the_global_pooling():
    """FCN (no global pooling): exactly proportional to H * W at sizes the strides divide.
    DeepLabv3+: alpha * H * W + the image-pooling branch's 1x1 conv, whose cost is one pixel's."""
    torch.manual_seed(0)
    fcn = create_model("fcn", backbone="mobilenetv2", num_classes=5, output_stride=32)
    base = _macs(fcn, 64)
    assert _macs(fcn, [64, 128]) == _macs(fcn, [128, 64]) == 2 * base
    assert _macs(fcn, [96, 160]) * 64 * 64 == base * 96 * 160
    dl = create_model("deeplabv3plus", backbone="mobilenetv2", num_classes=5, output_stride=16)
    pooling = sum(
        m.weight.shape[0] * m.weight.shape[1]
        for p in dl.modules() if isinstance(p, ASPPPooling)
        for m in p.modules() if isinstance(m, nn.Conv2d)
    )  # fmt: skip
    assert pooling > 0
    for size in ([64, 64], [64, 128], [96, 160]):
        scaled = _macs(dl, size) - pooling
        assert scaled * 64 * 64 == (_macs(dl, 64) - pooling) * size[0] * size[1], size


def test_erf_on_a_non_square_input_is_centred_on_its_middle_pixel():
    conv = nn.Conv2d(1, 1, 5, padding=2, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    model = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False), conv)
    nn.init.constant_(model[0].weight, 1.0)
    erf = effective_receptive_field(model, input_size=[15, 31], samples=1)
    assert erf.grad.shape == (15, 31) and erf.centre == (7, 15)
    support = (erf.grad > 0).nonzero()
    assert support[:, 0].tolist() and {*support[:, 0].tolist()} == set(range(5, 10))
    assert {*support[:, 1].tolist()} == set(range(13, 18))
    assert erf.r99 <= math.hypot(2, 2) + 1e-9


@pytest.mark.parametrize("bad", [[360], [360, 480, 3], [0, 480], [360, 4], "x", 4.5, True])
def test_bad_sizes_are_refused_naming_the_argument(bad):
    model = nn.Conv2d(3, 2, 3)
    with pytest.raises(ValueError, match=r"^input_size must be >= 8 px: .*input_size=\[360,480\]"):
        analyze_model(model, input_size=bad, latency_runs=0, erf=False)


def test_an_int_gives_the_figures_of_the_square_pair(tmp_path):
    fixed = ["analyze.latency_runs=0", "model.output_stride=16"]
    torch.manual_seed(0)  # the same fresh weights: the ERF depends on them
    as_int = analyze(_cfg(tmp_path / "a", *fixed, "analyze.input_size=64"))
    torch.manual_seed(0)
    as_pair = analyze(
        _cfg(tmp_path / "b", *fixed, "analyze.input_size=[64,64]", "analyze.erf_input_size=[33,33]")
    )
    assert as_int["input_size"] == as_pair["input_size"] == [64, 64]
    assert as_int["erf_input_size"] == [33, 33]
    assert {k: v for k, v in as_int.items() if k not in TIMING} == {
        k: v for k, v in as_pair.items() if k not in TIMING
    }


def test_the_task_at_h_by_w_records_h_w_and_prints_it(tmp_path, capsys):
    result = analyze(
        _cfg(
            tmp_path, "model.output_stride=16", "analyze.input_size=[48,80]",
            "analyze.erf_input_size=[33,49]",
        )
    )  # fmt: skip
    assert result["input_size"] == [48, 80] and result["erf_input_size"] == [33, 49]
    out = [s for s in result["stages"] if s["name"] == "out"][-1]
    assert (out["height"], out["width"]) == (48, 80)
    features = [s for s in result["stages"] if s["name"].startswith("backbone.")]
    assert (features[-1]["height"], features[-1]["width"]) == (3, 5)  # 48 / 16, 80 / 16
    printed = capsys.readouterr().out
    assert "input 48 x 80" in printed and "ERF (input 33 x 49)" in printed


def test_summary_names_height_then_width():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    analysis = analyze_model(model, input_size=(16, 24), latency_runs=0, erf=False)
    assert "input 16 x 24" in format_summary(analysis)
    assert analysis.to_json()["input_size"] == [16, 24]
