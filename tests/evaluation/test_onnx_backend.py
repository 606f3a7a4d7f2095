"""The onnxruntime backend against eager PyTorch: same logits in every inference mode for every
design, a content-keyed cache that never serves a stale graph, and one-line errors."""

from __future__ import annotations

import shutil
import sys

import pytest
import torch
from torch import Tensor, nn

from segkit.backbones import create_backbone
from segkit.evaluation.inference import InferenceSettings, infer
from segkit.evaluation.onnx_backend import (
    BackendSettings,
    OnnxRuntimeModel,
    cache_key,
    cached_onnx,
    file_sha256,
    inference_model,
    open_session,
)
from segkit.evaluation.onnx_export import OnnxExportError, export_onnx
from segkit.models import create_model

#: Same image sizes as the evaluation fixture (64..96 px), two of them in one batch.
X = torch.randint(0, 256, (2, 3, 72, 90), generator=torch.Generator().manual_seed(3)).to(
    torch.uint8
)
MODES = {
    "whole": InferenceSettings(),
    "slide": InferenceSettings(mode="slide", window=48, stride=32),
    "ms_flip": InferenceSettings(scales=(0.75, 1.25), flip=True),
}
SLIDE_MS_FLIP = InferenceSettings(mode="slide", window=64, stride=40, scales=(1.0, 1.5), flip=True)


def _tiny(name: str) -> nn.Module:
    small = {"aspp_channels": 16}
    builds = {
        "fcn8s": lambda: create_model(
            "fcn", backbone=create_backbone("mobilenetv2", output_stride=32, width_mult=0.35),
            num_classes=5, output_stride=32, fcn_variant="8s",
        ),
        "deeplabv3": lambda: create_model(
            "deeplabv3", backbone=create_backbone("mobilenetv2", width_mult=0.35), num_classes=5,
            **small,
        ),
        "deeplabv3plus_mobilenetv2": lambda: create_model(
            "deeplabv3plus", backbone=create_backbone("mobilenetv2", width_mult=0.35),
            num_classes=5, decoder_channels=16, low_level_channels=8, **small,
        ),
        "deeplabv3plus_xception65": lambda: create_model(
            "deeplabv3plus", backbone=create_backbone("xception65", middle_blocks=1),
            num_classes=5, decoder_channels=16, low_level_channels=8, **small,
        ),
    }  # fmt: skip
    torch.manual_seed(0)
    model = builds[name]()
    with torch.no_grad():  # non-trivial BN statistics: predictions vary over the image
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.running_mean.normal_(0.0, 0.2)
    return model.eval()


def _checkpoint(tmp_path, model: nn.Module, name: str = "model.ckpt"):
    """A file whose content stands for the checkpoint (the cache hashes it; nothing parses it)."""
    path = tmp_path / name
    torch.save(model.state_dict(), path)
    return path


def _backend(model, ckpt, cache, exporter="legacy") -> OnnxRuntimeModel:
    settings = BackendSettings(backend="onnxruntime", onnx_cache=str(cache), onnx_exporter=exporter)
    return inference_model(model, ckpt, device=torch.device("cpu"), settings=settings)


def _assert_same(ref: Tensor, got: Tensor) -> None:
    assert got.shape == ref.shape and got.dtype == ref.dtype
    assert float((got - ref).abs().max()) <= 1e-4
    agree = (got.argmax(1) == ref.argmax(1)).float().mean()
    assert float(agree) >= 0.9999, float(agree)


@pytest.mark.parametrize(
    "name",
    ["fcn8s", "deeplabv3", "deeplabv3plus_mobilenetv2",
     pytest.param("deeplabv3plus_xception65", marks=pytest.mark.slow)],
)  # fmt: skip
def test_logits_match_eager_in_every_mode(tmp_path, name):
    model = _tiny(name)
    onnx_model = _backend(model, _checkpoint(tmp_path, model), tmp_path / "cache")
    for settings in MODES.values():
        _assert_same(infer(model, X, settings), infer(onnx_model, X, settings))


def test_slide_with_multiscale_and_flip_and_batch_1(tmp_path):
    model = _tiny("deeplabv3")
    onnx_model = _backend(model, _checkpoint(tmp_path, model), tmp_path / "cache")
    (image,) = onnx_model.session.get_inputs()  # self-contained: uint8 in, normalised inside
    assert image.type == "tensor(uint8)"
    _assert_same(infer(model, X, SLIDE_MS_FLIP), infer(onnx_model, X, SLIDE_MS_FLIP))
    one = X[1:]  # batch 1 through the same graph (dynamic batch)
    _assert_same(infer(model, one, MODES["whole"]), infer(onnx_model, one, MODES["whole"]))


@pytest.mark.slow  # the dynamo exporter takes ~20 s even for a tiny model
def test_dynamo_export_matches_eager_at_output_stride_8(tmp_path):
    model = _tiny("deeplabv3plus_mobilenetv2")
    model.set_output_stride(8)
    onnx_model = _backend(model, _checkpoint(tmp_path, model), tmp_path / "c", exporter="dynamo")
    assert onnx_model.output_stride == 8
    for settings in (*MODES.values(), SLIDE_MS_FLIP):
        _assert_same(infer(model, X, settings), infer(onnx_model, X, settings))


def test_output_stride_is_applied_before_export_and_keys_the_cache(tmp_path):
    model = _tiny("deeplabv3")
    ckpt = _checkpoint(tmp_path, model)
    os16 = _backend(model, ckpt, tmp_path / "cache")
    model.set_output_stride(8)
    os8 = _backend(model, ckpt, tmp_path / "cache")
    assert os8.path != os16.path and (os16.output_stride, os8.output_stride) == (16, 8)
    ref8 = infer(model, X, MODES["whole"])
    _assert_same(ref8, infer(os8, X, MODES["whole"]))
    assert float((infer(os16, X, MODES["whole"]) - ref8).abs().max()) > 1e-3  # OS 16 graph differs


def test_cache_is_reused_and_a_changed_checkpoint_is_never_served_the_old_graph(tmp_path):
    model = _tiny("fcn8s")
    ckpt = _checkpoint(tmp_path, model)
    first = _backend(model, ckpt, tmp_path / "cache")
    stamp = first.path.stat().st_mtime_ns
    again = _backend(model, ckpt, tmp_path / "cache")
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp  # not re-exported
    with torch.no_grad():  # "retrain": new weights written to the same checkpoint path
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    _checkpoint(tmp_path, model)
    changed = _backend(model, ckpt, tmp_path / "cache")
    assert changed.path != first.path
    _assert_same(infer(model, X, MODES["whole"]), infer(changed, X, MODES["whole"]))
    cache = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cache) == 2 and all(n.startswith("model-") and n.endswith(".onnx") for n in cache)


def test_default_cache_sits_next_to_the_checkpoint_in_one_self_contained_file(tmp_path):
    model = _tiny("fcn8s")
    (tmp_path / "run").mkdir()
    ckpt = _checkpoint(tmp_path / "run", model)
    settings = BackendSettings(backend="onnxruntime", onnx_exporter="legacy")
    onnx_model = inference_model(model, ckpt, device=torch.device("cpu"), settings=settings)
    assert onnx_model.path.parent == tmp_path / "run" / "onnx_cache"
    assert [p.name for p in onnx_model.path.parent.iterdir()] == [onnx_model.path.name]


def test_a_cached_model_that_does_not_match_is_refused(tmp_path):
    a, b = _tiny("fcn8s"), _tiny("deeplabv3")
    ckpt_a, ckpt_b = _checkpoint(tmp_path, a, "a.ckpt"), _checkpoint(tmp_path, b, "b.ckpt")
    path_a = _backend(a, ckpt_a, tmp_path / "cache").path
    path_b = _backend(b, ckpt_b, tmp_path / "cache").path
    shutil.copyfile(path_b, path_a)  # someone copies another model over a cache entry
    with pytest.raises(ValueError, match=r"a-\w+\.onnx was not exported from this checkpoint"):
        _backend(a, ckpt_a, tmp_path / "cache")
    path_a.write_bytes(b"\x00garbage")  # or a corrupt file
    with pytest.raises(ValueError, match=r"a-\w+\.onnx is unreadable or corrupt.*delete it"):
        _backend(a, ckpt_a, tmp_path / "cache")


def test_a_failing_check_or_a_checkpoint_changed_while_loading_leaves_no_cache_entry(
    tmp_path, monkeypatch
):
    model = _tiny("fcn8s")
    ckpt = _checkpoint(tmp_path, model)
    settings = BackendSettings(backend="onnxruntime", onnx_cache=str(tmp_path / "c"),
                               onnx_exporter="legacy")  # fmt: skip
    with pytest.raises(ValueError, match="changed while it was being loaded"):
        cached_onnx(model, ckpt, settings, loaded_sha256="0" * 64)

    def fails(*args, **kwargs):
        raise ValueError("ONNX differs from PyTorch")

    monkeypatch.setattr("segkit.evaluation.onnx_backend.check_onnx", fails)
    with pytest.raises(ValueError, match="differs"):
        cached_onnx(model, ckpt, settings)
    assert list((tmp_path / "c").iterdir()) == []  # neither a final nor a partial file


class CumMax(nn.Module):
    """Segmentor call shape with an operator ONNX has no conversion for (aten::cummax)."""

    output_stride = 32

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"out": torch.cummax(self.conv(x.float()), dim=1).values}  # uint8 in


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_an_export_that_fails_names_the_operator(tmp_path, exporter):
    with pytest.raises(OnnxExportError, match=r"cannot convert this model: operator aten::cummax"):
        export_onnx(CumMax().eval(), tmp_path / "m.onnx", exporter=exporter)
    model = CumMax().eval()
    settings = BackendSettings(backend="onnxruntime", onnx_cache=str(tmp_path / "c"),
                               onnx_exporter=exporter)  # fmt: skip
    with pytest.raises(OnnxExportError, match=r"aten::cummax.*use backend='torch'") as err:
        inference_model(model, _checkpoint(tmp_path, model), device=torch.device("cpu"),
                        settings=settings)  # fmt: skip
    assert err.value.op == "aten::cummax" and "\n" not in str(err.value)
    assert not list(tmp_path.glob("*.onnx")) and not list((tmp_path / "c").iterdir())


def test_onnxruntime_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    model = _tiny("fcn8s")
    settings = BackendSettings(backend="onnxruntime")
    with pytest.raises(ValueError) as err:
        inference_model(model, _checkpoint(tmp_path, model), device=torch.device("cpu"),
                        settings=settings)  # fmt: skip
    assert str(err.value) == (
        "backend='onnxruntime' needs onnxruntime, which is not installed: "
        "pip install 'segkit[onnx]'"
    )
    assert not (tmp_path / "onnx_cache").exists()  # checked before exporting anything


@pytest.mark.parametrize(("exporter", "module"), [("legacy", "onnx"), ("dynamo", "onnxscript")])
def test_export_without_the_onnx_extra_is_one_line(tmp_path, monkeypatch, exporter, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ValueError) as err:
        export_onnx(_tiny("fcn8s"), tmp_path / "m.onnx", exporter=exporter)
    assert str(err.value).endswith(
        f"needs {module}, which is not installed: pip install 'segkit[onnx]'"
    )
    assert not list(tmp_path.iterdir())  # checked before writing anything


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider':UserWarning")
def test_cuda_without_the_cuda_provider_says_so_and_does_not_fall_back(tmp_path, monkeypatch):
    import onnxruntime as ort

    model = _tiny("fcn8s")
    path = _backend(model, _checkpoint(tmp_path, model), tmp_path / "c").path
    key = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map["segkit.cache_key"]
    cuda = torch.device("cuda")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ValueError, match="needs onnxruntime's CUDA provider.*onnxruntime-gpu"):
            open_session(path, key=key, device=cuda, threads=1)
        # A provider that is listed but cannot start: onnxruntime itself would quietly use the CPU.
        monkeypatch.setattr(ort, "get_available_providers",
                            lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])  # fmt: skip
        with pytest.raises(ValueError, match="could not start its CUDA provider"):
            open_session(path, key=key, device=cuda, threads=1)
    elif torch.cuda.is_available():  # a CUDA machine with onnxruntime-gpu: device-to-device run
        session = open_session(path, key=key, device=cuda, threads=1)
        net = OnnxRuntimeModel(session, device=cuda, path=path, output_stride=32, num_classes=5)
        _assert_same(infer(model.cuda(), X.cuda(), MODES["whole"]).cpu(),
                     infer(net, X.cuda(), MODES["whole"]).cpu())  # fmt: skip


def test_threads_follow_the_setting(tmp_path):
    before = torch.get_num_threads()
    model = _tiny("fcn8s")
    try:
        settings = BackendSettings(backend="onnxruntime", threads=1, onnx_cache=str(tmp_path),
                                   onnx_exporter="legacy")  # fmt: skip
        net = inference_model(model, _checkpoint(tmp_path, model), device=torch.device("cpu"),
                              settings=settings)  # fmt: skip
        assert torch.get_num_threads() == 1
        assert net.session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)


def test_small_inputs_and_bad_settings_are_named(tmp_path):
    model = _tiny("fcn8s")
    net = _backend(model, _checkpoint(tmp_path, model), tmp_path / "c")
    with pytest.raises(ValueError, match=r"H, W >= 32 px.*larger scales, or backend='torch'"):
        net(torch.zeros(1, 3, 16, 64, dtype=torch.uint8))
    with pytest.raises(TypeError, match="takes uint8"):
        net(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"^backend must be one of"):
        BackendSettings(backend="tensorrt")
    with pytest.raises(ValueError, match=r"^onnx_exporter must be one of .*, got 'jit'"):
        BackendSettings(onnx_exporter="jit")
    with pytest.raises(ValueError, match=r"^threads must be >= 1"):
        BackendSettings(threads=0)


def test_cache_key_covers_content_and_settings(tmp_path, monkeypatch):
    base = cache_key("a" * 64, output_stride=16, exporter="dynamo")
    assert base != cache_key("b" * 64, output_stride=16, exporter="dynamo")
    assert base != cache_key("a" * 64, output_stride=8, exporter="dynamo")
    assert base != cache_key("a" * 64, output_stride=16, exporter="legacy")
    # Entries of before the graph took uint8 (version 1: normalised float32 input) never match.
    monkeypatch.setattr("segkit.evaluation.onnx_backend.CACHE_VERSION", 1)
    assert base != cache_key("a" * 64, output_stride=16, exporter="dynamo")
    (tmp_path / "f").write_bytes(b"abc")
    assert file_sha256(tmp_path / "f") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
