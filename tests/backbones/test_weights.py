"""Weight import: reference state dicts (random init, no network) load into our backbones and the
last feature equals the reference's final feature map; wrong files give one clear error."""

from pathlib import Path

import pytest
import timm
import torch
import torchvision

from helpers.backbones import randomize_norms
from segkit.backbones import mobilenetv2, xception, xception65
from segkit.backbones.weights import load_backbone_weights

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def save_reference(model: torch.nn.Module, path: Path) -> Path:
    randomize_norms(model).eval()
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_mobilenetv2_matches_torchvision(tmp_path: Path, width: float) -> None:
    ref = torchvision.models.mobilenet_v2(width_mult=width)
    path = save_reference(ref, tmp_path / "mnv2.pt")
    ours = mobilenetv2(
        output_stride=32, weights=str(path), width_mult=width, final_conv=True
    ).eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(X)[-1], ref.features(X), atol=1e-4, rtol=1e-4)


def test_mobilenetv2_without_final_conv_loads_torchvision_and_skips_it(tmp_path: Path) -> None:
    ref = torchvision.models.mobilenet_v2(width_mult=0.5)
    path = save_reference(ref, tmp_path / "mnv2.pt")
    ours = mobilenetv2(output_stride=32, weights=str(path), width_mult=0.5, final_conv=False).eval()
    assert ours.channels[-1] == 160  # the 320-channel bottleneck at width 0.5
    with torch.no_grad():
        torch.testing.assert_close(ours(X)[-1], ref.features[:-1](X), atol=1e-4, rtol=1e-4)


def test_xception_matches_timm_legacy_xception(tmp_path: Path) -> None:
    ref = timm.create_model("legacy_xception", pretrained=False)
    path = save_reference(ref, tmp_path / "xception.pt")
    ours = xception(output_stride=32, weights=str(path)).eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(X)[-1], ref.forward_features(X), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("output_stride", [32, 16, 8])
def test_xception65_matches_timm_at_every_output_stride(tmp_path: Path, output_stride: int) -> None:
    ref = timm.create_model("xception65", pretrained=False, output_stride=output_stride)
    path = save_reference(ref, tmp_path / "x65.pt")
    ours = xception65(output_stride=output_stride, weights=str(path)).eval()
    with torch.no_grad():
        feats = ours(X)
        torch.testing.assert_close(feats[-1], ref.forward_features(X), atol=1e-4, rtol=1e-4)
        # The intermediate taps are DeepLab's (= timm's forward_intermediates, minus stride 2).
        taps = ref.forward_intermediates(X, intermediates_only=True)[1:]
    for ours_f, ref_f in zip(feats, taps, strict=True):
        torch.testing.assert_close(ours_f, ref_f, atol=1e-4, rtol=1e-4)


def test_xception65_with_8_middle_blocks_is_timm_xception41(tmp_path: Path) -> None:
    ref = timm.create_model("xception41", pretrained=False)
    path = save_reference(ref, tmp_path / "x41.pt")
    ours = xception65(output_stride=32, weights=str(path), middle_blocks=8).eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(X)[-1], ref.forward_features(X), atol=1e-4, rtol=1e-4)


def test_wrong_keys_name_the_first_missing_and_unexpected(tmp_path: Path) -> None:
    path = tmp_path / "mnv2.pt"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), path)
    with pytest.raises(ValueError) as err:
        xception(weights=str(path))
    msg = str(err.value)
    assert str(path) in msg and "'xception'" in msg and "timm legacy_xception" in msg
    assert "missing (first: stem.0.0.weight" in msg
    assert "unexpected (first: features.0.0.weight" in msg


def test_wrong_shapes_name_the_first_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "mnv2.pt"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), path)
    with pytest.raises(
        ValueError, match=r"shape mismatch \(first: features.0.0.weight: file \(32, 3"
    ):
        mobilenetv2(weights=str(path), width_mult=0.5)


def test_missing_file_and_non_state_dict(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt' not found.*torchvision mobilenet_v2"):
        mobilenetv2(weights=str(tmp_path / "nope.pt"))
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        xception65(weights=str(path), middle_blocks=1)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot be read as a tensor state dict"):
        mobilenetv2(weights=str(garbage))


def test_torchvision_name_goes_through_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = torchvision.models.mobilenet_v2().state_dict()
    calls = []

    class FakeWeights:
        def get_state_dict(self, progress: bool) -> dict:
            return reference

    def fake_get_weight(name: str) -> FakeWeights:
        calls.append(name)
        return FakeWeights()

    monkeypatch.setattr(torchvision.models, "get_weight", fake_get_weight)
    model = mobilenetv2(weights="torchvision:IMAGENET1K_V2")
    assert calls == ["MobileNet_V2_Weights.IMAGENET1K_V2"]
    torch.testing.assert_close(model.features[0][0].weight, reference["features.0.0.weight"])


def test_timm_name_goes_through_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_create = timm.create_model

    def fake_create(name: str, pretrained: bool = False, **kw: object) -> torch.nn.Module:
        calls.append((name, pretrained))
        return real_create(name.split(".")[0], pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", fake_create)
    xception(weights="timm:legacy_xception.tf_in1k")
    assert calls == [("legacy_xception.tf_in1k", True)]


def test_torchvision_name_for_xception_is_rejected() -> None:
    model = xception(middle_blocks=1)
    with pytest.raises(ValueError, match="torchvision weights exist here only for mobilenetv2"):
        load_backbone_weights(model, "torchvision:IMAGENET1K_V1", arch="xception")


def test_unknown_library_names_list_the_choices() -> None:
    # Both are rejected by the libraries before any download is attempted.
    with pytest.raises(
        ValueError, match=r"no MobileNet_V2_Weights.IMAGENET_V9.*torchvision:IMAGENET1K_V2"
    ):
        mobilenetv2(weights="torchvision:IMAGENET_V9")
    with pytest.raises(ValueError, match=r"Invalid pretrained tag.*'timm:xception65.tf_in1k'"):
        xception65(weights="timm:xception65.no_such_tag", middle_blocks=1)


def offline(*args: object, **kwargs: object) -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    raise LocalEntryNotFoundError("cannot find the requested files in the local cache")


def test_offline_torchvision_name_says_how_to_use_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.error import URLError

    def no_network(url: str, **kwargs: object) -> None:
        raise URLError("[Errno -2] Name or service not known")

    # The real torchvision path down to its download call, which fails as it does offline.
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    with pytest.raises(FileNotFoundError) as err:
        mobilenetv2(weights="torchvision:IMAGENET1K_V2")
    msg = str(err.value)
    assert "'torchvision:IMAGENET1K_V2' are not in the local cache" in msg
    assert "checkpoints" in msg and "needs internet" in msg and "weights=<path>" in msg


def test_offline_timm_name_says_how_to_use_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import timm.models._hub

    monkeypatch.setattr(timm.models._hub, "hf_hub_download", offline)
    with pytest.raises(FileNotFoundError, match=r"'timm:xception65.tf_in1k' are not in the local"):
        xception65(weights="timm:xception65.tf_in1k", middle_blocks=1)


@pytest.mark.parametrize(
    ("build", "reference"),
    [
        (lambda: mobilenetv2(output_stride=32), None),
        (lambda: xception(output_stride=32, middle_blocks=1), "legacy_xception.tf_in1k"),
        (lambda: xception65(output_stride=32, middle_blocks=1), "xception65.tf_in1k"),
    ],
)
def test_backbone_publishes_the_normalisation_of_its_reference_weights(build, reference) -> None:
    """The Segmentor normalises with the backbone's input_mean / input_std: they must be the ones
    the reference weights were trained with (torchvision's ImageNet statistics for MobileNetV2,
    the TF ports' [-1, 1] scaling for the Xceptions), read from the references' own configs."""
    backbone = build()
    if reference is None:
        transforms = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V2.transforms()
        mean, std = transforms.mean, transforms.std
    else:
        cfg = timm.models.get_pretrained_cfg(reference)
        mean, std = cfg.mean, cfg.std
    assert tuple(backbone.input_mean) == pytest.approx(tuple(mean))
    assert tuple(backbone.input_std) == pytest.approx(tuple(std))
