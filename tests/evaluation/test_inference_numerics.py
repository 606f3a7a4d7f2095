"""Inference numerics (eval.precision / predict.precision, channels_last): bf16 autocast in the
network only, float32 scores out; ``32`` + contiguous is the exact float32 path; ``auto`` follows
the device (torch's own bf16 check is the oracle); onnxruntime refuses ``bf16``."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from helpers.eval_models import ContextNet
from segkit.cli.configs import compose_config
from segkit.evaluation.inference import InferenceSettings, infer, resolved_precision
from segkit.tasks.checkpoints import inference_settings

X = torch.randn(2, 3, 40, 52, generator=torch.Generator().manual_seed(3))
CPU = torch.device("cpu")
NATIVE = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


class Recorder(nn.Module):
    """ContextNet with a hook noting (dtype, NHWC) of what its first conv computes."""

    def __init__(self) -> None:
        super().__init__()
        self.net = ContextNet()
        self.seen: list[tuple[torch.dtype, bool]] = []
        conv = next(m for m in self.net.modules() if isinstance(m, nn.Conv2d))
        conv.register_forward_hook(
            lambda m, a, out: self.seen.append(
                (out.dtype, out.is_contiguous(memory_format=torch.channels_last))
            )
        )

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize(
    "settings",
    [InferenceSettings(), InferenceSettings(scales=(0.75, 1.0), flip=True)],
    ids=["single", "multiscale-flip"],
)
def test_bf16_runs_the_network_in_bf16_and_returns_float32(settings) -> None:
    model = Recorder().eval()
    with torch.no_grad():
        exact = infer(model, X, settings)
    assert model.seen and all(s == (torch.float32, False) for s in model.seen)
    model.seen.clear()
    fast = InferenceSettings(settings.mode, settings.scales, settings.flip, precision="bf16",
                             channels_last=True)  # fmt: skip
    scores = infer(model, X, fast)
    assert model.seen and all(s == (torch.bfloat16, True) for s in model.seen)
    assert scores.dtype == torch.float32 and scores.shape == exact.shape
    agree = (scores.argmax(1) == exact.argmax(1)).float().mean()
    assert agree > 0.9, agree


def test_exact_path_is_todays_forward_and_channels_last_keeps_autograd() -> None:
    model = ContextNet().eval()
    with torch.no_grad():
        plain = model(X)["out"]
    assert torch.equal(infer(model, X, InferenceSettings(precision="32")), plain)
    infer(model, X, InferenceSettings(precision="32", channels_last=True))
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    model(X.requires_grad_())["out"].sum().backward()  # weights converted outside inference mode
    assert conv.weight.grad is not None


def test_auto_follows_the_device_and_onnxruntime_refuses_bf16() -> None:
    model = ContextNet()
    assert resolved_precision(model, CPU, InferenceSettings(precision="auto")) == (
        "bf16" if NATIVE else "32"
    )
    assert resolved_precision(model, CPU, InferenceSettings(precision="32")) == "32"

    def onnx_like(x):
        return model(x)

    assert resolved_precision(onnx_like, CPU, InferenceSettings(precision="auto")) == "32"
    with pytest.raises(ValueError, match="^precision='bf16' needs the torch backend"):
        infer(onnx_like, X, InferenceSettings(precision="bf16"))
    with pytest.raises(ValueError, match="^precision must be one of auto, bf16, 32"):
        InferenceSettings(precision="fp16")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["evaluate", "predict"])
def test_task_configs_default_to_the_checkpoints_numerics(name: str) -> None:
    cfg = compose_config(
        name, ["ckpt_path=x.ckpt", "input=x.jpg"] if name == "predict" else ["ckpt_path=x"]
    )
    node = cfg.eval if name == "evaluate" else cfg.predict
    cpu_run = compose_config("train", ["experiment=quickstart"])  # trainer=cpu: as this CPU has
    trained = {"trainer": {"precision": cpu_run.trainer.precision},
               "module": {"channels_last": cpu_run.module.channels_last}}  # fmt: skip
    settings = inference_settings(node, trained=trained)
    bf16 = str(cpu_run.trainer.precision).startswith("bf16")
    assert (settings.precision, settings.channels_last) == ("auto" if bf16 else "32", True)
    exact = inference_settings(OmegaConf.create({"precision": "32", "channels_last": False}))
    assert (exact.precision, exact.channels_last) == ("32", False)
    assert inference_settings(OmegaConf.create({})).precision == "32"  # library callers: exact


def test_auto_numerics_follow_the_checkpoints_training():
    """evaluate / predict defaults (precision=auto, channels_last=null) repeat the numerics the
    run trained and validated with, so their mIoU is the run's val/mIoU."""
    from omegaconf import OmegaConf

    from segkit.tasks.checkpoints import inference_settings

    opts = OmegaConf.create({"precision": "auto", "channels_last": None})
    bf16_run = {"trainer": {"precision": "bf16-mixed"}, "module": {"channels_last": True}}
    fp32_run = {"trainer": {"precision": "32-true"}, "module": {"channels_last": False}}
    one = inference_settings(opts, trained=bf16_run)
    assert (one.precision, one.channels_last) == ("auto", True)  # bf16 where native
    two = inference_settings(opts, trained=fp32_run)
    assert (two.precision, two.channels_last) == ("32", False)
    asked = OmegaConf.create({"precision": "bf16", "channels_last": True})
    three = inference_settings(asked, trained=fp32_run)  # an explicit choice wins
    assert (three.precision, three.channels_last) == ("bf16", True)
    four = inference_settings(opts)  # no checkpoint config: auto stays bf16-where-native
    assert (four.precision, four.channels_last) == ("auto", False)
