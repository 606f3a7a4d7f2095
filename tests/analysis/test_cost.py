"""Multiply-adds against the formulas, against torch's FlopCounterMode, and activation memory."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segkit.analysis import cost, count_params, latency_samples, latency_summary, trace
from segkit.models import create_model


@pytest.mark.parametrize(("groups", "stride", "k"), [(1, 1, 3), (4, 2, 3), (8, 1, 1), (1, 2, 5)])
def test_conv_macs_formula(groups, stride, k):
    c_in, n, size = 8, 16, 20
    conv = nn.Conv2d(c_in, n, k, stride=stride, padding=k // 2, groups=groups, bias=False)
    result = trace(conv, torch.randn(2, c_in, size, size))
    h_out = (size + 2 * (k // 2) - k) // stride + 1
    # seed notes: N kernels of K x K x C_in / g, one per output position
    assert result.macs == 2 * n * k * k * (c_in // groups) * h_out * h_out
    assert count_params(conv) == n * k * k * c_in // groups


def test_transposed_conv_and_linear_macs():
    up = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, bias=False)
    assert trace(up, torch.randn(1, 6, 8, 8)).macs == 6 * 8 * 8 * 4 * 4 * 4

    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 10)

        def forward(self, x):
            return self.fc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    result = trace(Tokens(), torch.randn(1, 6, 5, 5))
    assert result.macs == 5 * 5 * 6 * 10
    assert result.outputs["out"].geometry.rf == (1.0, 1.0)  # a per-pixel linear layer


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("deeplabv3plus", {}),
        ("fcn", {"output_stride": 32}),  # transposed convs
        ("deeplabv3", {"output_stride": 8}),  # space-to-batch below: convs on r*r phase batches
    ],
)
def test_model_macs_agree_with_torch_flop_counter(name, options):
    """The project's count rides the receptive-field trace's dispatch pass (FlopCounterMode would
    import torch._dynamo on first use: seconds per analyze process); it must agree to the unit,
    in total and for the backbone."""
    torch.manual_seed(0)
    model = create_model(name, backbone="mobilenetv2", num_classes=5, **options).eval()
    if name == "deeplabv3":
        model.set_atrous_impl("space_to_batch")
    x = torch.randn(1, 3, 64, 64)
    result = trace(model, x)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert result.macs == counter.get_total_flops() // 2
    backbone = sum(counter.get_flop_counts()["Segmentor.backbone"].values()) // 2
    assert 0 < result.macs_under("backbone") == backbone < result.macs


@pytest.mark.parametrize(
    ("layer", "kind"),
    [
        (nn.Conv2d(8, 16, 3, padding=1), "conv dense"),
        (nn.Conv2d(8, 8, 3, padding=1, groups=8), "conv depthwise"),
        (nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), "conv dense"),
    ],
)
def test_mac_counter_counts_a_training_step(layer, kind):
    """Backward = the forward's count for the input gradient + once for the weight gradient; none
    for the input gradient of a first layer. Dense convs agree with FlopCounterMode."""
    x = torch.randn(2, 8, 12, 12)
    forward = trace(layer, x).macs
    for needs_input_grad, times in ((True, 3), (False, 2)):
        xi = x.clone().requires_grad_(needs_input_grad)
        with cost.MacCounter() as counter:
            layer(xi).sum().backward()
        assert counter.macs == {kind: times * forward}
        if kind == "conv dense":
            with FlopCounterMode(display=False) as flops:
                layer(x.clone().requires_grad_(needs_input_grad)).sum().backward()
            assert counter.total == flops.get_total_flops() // 2


def test_peak_activation_memory_of_a_known_net():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 4, 1))
    result = trace(net.eval(), torch.randn(1, 3, 32, 32))
    act = 8 * 32 * 32 * 4  # the 8-channel map (the in-place ReLU reuses it)
    out = 4 * 32 * 32 * 4
    assert result.peak_activation_bytes == act + out + 3 * 32 * 32 * 4  # + the traced input copy


def test_latency_is_positive_and_runs_checked():
    times = latency_samples(nn.Conv2d(3, 3, 3), torch.randn(1, 3, 16, 16), runs=2)
    assert len(times) == 2 and min(times) > 0
    with pytest.raises(ValueError, match="latency_runs"):
        latency_samples(nn.Identity(), torch.randn(1), runs=0)


@pytest.mark.parametrize(
    ("times", "runs", "spread", "warning"),
    [
        ([], None, None, None),
        ([10.0], 1, None, "only 1 timed run(s): spread not measured"),
        ([10.0, 11.0], 2, 0.095, "only 2 timed run(s): spread not measured"),
        ([10.0, 10.5, 11.0], 3, 0.095, None),
        (
            [10.0, 30.0, 11.0, 10.5],
            4,
            1.860,
            "4 timed runs spread 186% of the median: loaded machine?",
        ),
    ],
)
def test_latency_summary_flags_few_runs_and_a_large_spread(times, runs, spread, warning):
    """A latency from one run, or from runs that disagree, is flagged."""
    summary = latency_summary(times)
    assert (summary["latency_runs"], summary["latency_warning"]) == (runs, warning)
    assert summary["latency_spread"] == (
        None if spread is None else pytest.approx(spread, abs=1e-3)
    )


def test_latency_budget_caps_the_timed_runs(monkeypatch):
    """A budget stops timing once the runs total more than it; at least one run is timed.
    A fake clock: every forward takes exactly 20 ms."""
    clock = [0.0]
    monkeypatch.setattr(cost.time, "perf_counter", lambda: clock[0])

    class Slow(nn.Module):
        calls = 0

        def forward(self, x):
            Slow.calls += 1
            clock[0] += 0.020
            return x

    x = torch.zeros(1)
    assert latency_samples(Slow(), x, runs=4, warmup=0) == pytest.approx([20.0] * 4)
    Slow.calls = 0
    times = latency_samples(Slow(), x, runs=10, warmup=1, budget_s=0.03)
    assert len(times) == 2 and Slow.calls == 3  # 20 ms <= 30 ms: one more; 40 ms > 30 ms: stop
    assert len(latency_samples(Slow(), x, runs=3, warmup=0, budget_s=1e-9)) == 1
    assert len(latency_samples(Slow(), x, runs=3, warmup=0, budget_s=10.0)) == 3  # runs caps
    with pytest.raises(ValueError, match="latency_budget_s"):
        latency_samples(Slow(), x, budget_s=0)
