"""timm adapter: contract from timm's feature_info, re-dilation by rebuild, weights from a file."""

from pathlib import Path

import pytest
import timm
import torch

from segkit.backbones import timm_backbone

X = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_contract_matches_features(output_stride: int) -> None:
    model = timm_backbone(model_name="resnet18", output_stride=output_stride).eval()
    assert model.strides == [min(s, output_stride) for s in (4, 8, 16, 32)]  # stride 2 dropped
    assert model.nominal_strides == [4, 8, 16, 32]  # timm's reductions of the undilated model
    assert model.channels == [64, 128, 256, 512]
    with torch.no_grad():
        feats = model(X)
    assert [f.shape[1] for f in feats] == model.channels
    assert [64 // f.shape[-1] for f in feats] == model.strides


def test_out_indices_are_passed_through() -> None:
    model = timm_backbone(model_name="resnet18", out_indices=(0, 4), output_stride=16)
    assert model.strides == [2, 16] and model.nominal_strides == [2, 32]  # a skipped-stage contract


def test_timm_convs_refuse_space_to_batch() -> None:
    """timm's dilated convs are plain nn.Conv2d: the one atrous switch says so instead of silently
    running only the head's ASPP as space-to-batch."""
    model = timm_backbone(model_name="resnet18", output_stride=8)
    assert model.atrous_impl == "dilation"
    with pytest.raises(ValueError, match="atrous_impl='space_to_batch' cannot reach"):
        model.set_atrous_impl("space_to_batch")


def test_set_output_stride_rebuilds_with_the_same_weights() -> None:
    model = timm_backbone(model_name="resnet18", output_stride=16).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))  # not timm's init: must survive the rebuild
        at16 = model(X)[-1]
        model.set_output_stride(8)
        ref8 = timm_backbone(model_name="resnet18", output_stride=8).eval()
        ref8.body.load_state_dict(model.body.state_dict())
        assert model.strides == [4, 8, 8, 8] and not model.training
        torch.testing.assert_close(model(X)[-1], ref8(X)[-1])
        model.set_output_stride(16)
        torch.testing.assert_close(model(X)[-1], at16)


def test_weights_file_is_loaded_by_timm(tmp_path: Path) -> None:
    ref = timm.create_model("resnet18", pretrained=False).eval()
    path = tmp_path / "r18.pt"
    torch.save(ref.state_dict(), path)
    model = timm_backbone(model_name="resnet18", output_stride=32, weights=str(path)).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(X)[-1], ref.forward_features(X))


def test_errors() -> None:
    with pytest.raises(ValueError, match="timm has no model 'resnet_nope'"):
        timm_backbone(model_name="resnet_nope")
    with pytest.raises(ValueError, match="8, 16 or 32"):
        timm_backbone(model_name="resnet18", output_stride=4)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        timm_backbone(model_name="resnet18", weights="missing.pt")
    with pytest.raises(ValueError, match="names a different model"):
        timm_backbone(model_name="resnet18", weights="timm:resnet50")


def test_offline_pretrained_says_how_to_use_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import timm.models._hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args: object, **kwargs: object) -> None:
        raise LocalEntryNotFoundError("cannot find the requested files in the local cache")

    monkeypatch.setattr(timm.models._hub, "hf_hub_download", offline)
    with pytest.raises(
        FileNotFoundError, match=r"'timm:resnet18' are not in the local cache.*weights=<path>"
    ):
        timm_backbone(model_name="resnet18", weights="timm")
