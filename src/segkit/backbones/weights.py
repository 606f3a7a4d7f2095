"""Pretrained weights for our backbones: a torchvision/timm name or a local state-dict file.

``weights`` forms:

* ``"torchvision:<ENUM>"`` (mobilenetv2 only), e.g. ``"torchvision:IMAGENET1K_V2"``: fetched by
  torchvision (``MobileNet_V2_Weights.<ENUM>``, needs internet at first use, then its cache).
* ``"timm:<model>[.<tag>]"``, e.g. ``"timm:xception65.tf_in1k"``, ``"timm:legacy_xception.tf_in1k"``:
  fetched by ``timm.create_model(..., pretrained=True)``.
* a path to a ``torch.save``-d state dict of the reference model: torchvision ``mobilenet_v2``,
  timm ``xception65`` or timm ``legacy_xception`` (classifier keys are ignored).

Reference keys are renamed to ours (``map_reference_keys``) and loaded strictly: any missing,
unexpected or wrongly shaped key raises a ValueError naming the first ones and the source. A library
name that is unknown raises a ValueError listing the valid ones; one that is not cached and cannot be
downloaded (offline) raises a FileNotFoundError saying how to pass a local file instead.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

StateDict = dict[str, Tensor]

REFERENCE_MODELS: dict[str, str] = {
    "mobilenetv2": "torchvision mobilenet_v2",
    "xception": "timm legacy_xception",
    "xception65": "timm xception65",
}


def _map_mobilenetv2(key: str) -> str | None:
    # Our module tree mirrors torchvision's; only the classifier goes.
    return None if key.startswith("classifier.") else key


_LEGACY_STEM = {"conv1": "stem.0.0", "bn1": "stem.0.1", "conv2": "stem.1.0", "bn2": "stem.1.1"}
_LEGACY_EXIT = {"conv3": "exit.0", "bn3": "exit.0.norm", "conv4": "exit.1", "bn4": "exit.1.norm"}
_SEP_PARTS = {"conv1": "depthwise", "pointwise": "pointwise"}


def _map_xception(key: str) -> str | None:
    head, _, rest = key.partition(".")
    if head == "fc":
        return None
    if head in _LEGACY_STEM:
        return f"{_LEGACY_STEM[head]}.{rest}"
    if head in _LEGACY_EXIT:
        part, _, tail = rest.partition(".")
        if head.startswith("conv"):
            return f"{_LEGACY_EXIT[head]}.{_SEP_PARTS.get(part, part)}.{tail}"
        return f"{_LEGACY_EXIT[head]}.{rest}"
    m = re.fullmatch(r"block(\d+)\.(skip|skipbn|rep\.(\d+))\.(.+)", key)
    if m is None:
        return key
    block = f"blocks.{int(m[1]) - 1}"
    if m[2] == "skip":
        return f"{block}.skip.0.{m[4]}"
    if m[2] == "skipbn":
        return f"{block}.skip.1.{m[4]}"
    # rep = [ReLU, SepConv, BN] * reps (minus the first ReLU in block 1): index // 3 is the conv.
    conv = f"{block}.convs.{int(m[3]) // 3}"
    part, _, tail = m[4].partition(".")
    if part in _SEP_PARTS:
        return f"{conv}.{_SEP_PARTS[part]}.{tail}"
    return f"{conv}.norm.{m[4]}"


_ALIGNED_PARTS = {
    "conv_dw": "depthwise",
    "bn_dw": "norm_dw",
    "conv_pw": "pointwise",
    "bn_pw": "norm",
}


def _map_xception65(key: str) -> str | None:
    if key.startswith("head."):
        return None
    key = re.sub(r"^(stem\.\d+|blocks\.\d+\.shortcut)\.conv\.", r"\1.0.", key)
    key = re.sub(r"^(stem\.\d+|blocks\.\d+\.shortcut)\.bn\.", r"\1.1.", key)
    m = re.fullmatch(r"(blocks\.\d+)\.stack\.conv(\d)\.(\w+)\.(.+)", key)
    if m is None:
        return key
    part = _ALIGNED_PARTS.get(m[3], m[3])
    return f"{m[1]}.convs.{int(m[2]) - 1}.{part}.{m[4]}"


KEY_MAPS: dict[str, Callable[[str], str | None]] = {
    "mobilenetv2": _map_mobilenetv2,
    "xception": _map_xception,
    "xception65": _map_xception65,
}


def map_reference_keys(state_dict: Mapping[str, Tensor], arch: str) -> StateDict:
    """Rename a reference model's state-dict keys to ours; classifier keys are dropped."""
    mapper = KEY_MAPS[arch]
    out: StateDict = {}
    for key, value in state_dict.items():
        new = mapper(key)
        if new is not None:
            out[new] = value
    return out


def load_backbone_weights(model: nn.Module, weights: str | None, *, arch: str) -> None:
    """Load ``weights`` (see module docstring) into ``model`` built as ``arch``; no-op for None."""
    if weights is None:
        return
    if arch not in KEY_MAPS:
        raise ValueError(f"no weight import for backbone {arch!r}; known: {sorted(KEY_MAPS)}")
    state_dict = map_reference_keys(fetch_state_dict(weights, arch=arch), arch)
    # Layers a switch left out (e.g. MobileNetV2 final_conv=False) are skipped, not reported.
    skip = tuple(getattr(model, "unused_reference_prefixes", ()))
    if skip:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(skip)}
    load_mapped_state_dict(model, state_dict, source=weights, arch=arch)


def fetch_state_dict(weights: str, *, arch: str) -> Mapping[str, Tensor]:
    """Get the reference state dict named by ``weights`` (library name or file path)."""
    if weights.startswith("torchvision:"):
        if arch != "mobilenetv2":
            raise ValueError(
                f"weights={weights!r}: torchvision weights exist here only for mobilenetv2; "
                f"for {arch} use 'timm:<name>' or a local file"
            )
        return _fetch_torchvision(weights)
    if weights.startswith("timm:"):
        return _fetch_timm(weights, arch)
    return _read_file(Path(weights), arch)


#: Where timm (through huggingface_hub) caches pretrained weights, as the offline error names it.
HF_CACHE = "the Hugging Face cache, HF_HOME"


def download_error(weights: str, cache: str, err: Exception) -> FileNotFoundError:
    """The error for pretrained weights that are not cached and cannot be downloaded (offline)."""
    return FileNotFoundError(
        f"pretrained weights {weights!r} are not in the local cache ({cache}) and could not be "
        f"downloaded ({type(err).__name__}: {err}). The first use needs internet; offline, save the "
        "reference model's state dict on a machine with internet (torch.save(model.state_dict(), "
        "path)) and pass the file as weights=<path>, or use weights=None"
    )


def _fetch_torchvision(weights: str) -> Mapping[str, Tensor]:
    import torchvision

    enum_name = weights.split(":", 1)[1]
    try:
        entry = torchvision.models.get_weight(f"MobileNet_V2_Weights.{enum_name}")
    except (KeyError, ValueError) as err:
        choices = [f"torchvision:{w.name}" for w in torchvision.models.MobileNet_V2_Weights]
        raise ValueError(
            f"weights={weights!r}: torchvision has no MobileNet_V2_Weights.{enum_name}; "
            f"choose one of {choices}"
        ) from err
    try:
        return entry.get_state_dict(progress=False)
    except OSError as err:  # urllib's URLError when offline
        cache = f"{torch.hub.get_dir()}/checkpoints"
        raise download_error(weights, cache, err) from err


def _fetch_timm(weights: str, arch: str) -> Mapping[str, Tensor]:
    import timm

    name = weights.split(":", 1)[1]
    try:
        model = timm.create_model(name, pretrained=True)
    except RuntimeError as err:  # timm: "Unknown model (...)" / "Invalid pretrained tag (...)"
        reference = REFERENCE_MODELS[arch].split()[-1]
        choices = [f"timm:{n}" for n in timm.list_pretrained(f"{reference}.*")]
        raise ValueError(
            f"weights={weights!r}: {str(err).rstrip('.')}; timm's pretrained weights for "
            f"{reference}: {choices}"
        ) from err
    except OSError as err:  # huggingface_hub's LocalEntryNotFoundError / HTTP errors when offline
        raise download_error(weights, HF_CACHE, err) from err
    return model.state_dict()


def _read_file(path: Path, arch: str) -> Mapping[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {str(path)!r} not found; pass a path to a {REFERENCE_MODELS[arch]} "
            "state dict, 'torchvision:<ENUM>' or 'timm:<model>', or weights=None"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ValueError(
            f"weights file {str(path)!r} cannot be read as a tensor state dict "
            f"(torch.load weights_only=True): {err}"
        ) from err
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(
            f"weights file {str(path)!r} does not hold a state dict (a mapping of names to tensors); "
            f"save one with torch.save(model.state_dict(), path) from a {REFERENCE_MODELS[arch]}"
        )
    return obj


def load_mapped_state_dict(
    model: nn.Module, state_dict: Mapping[str, Tensor], *, source: str, arch: str
) -> None:
    """Strict load with one message naming the first missing / unexpected / mismatched keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and state_dict[k].shape != own[k].shape
    ]
    problems = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatch", mismatched),
    ):
        if items:
            problems.append(f"{len(items)} {label} (first: {', '.join(items[:3])})")
    if problems:
        raise ValueError(
            f"weights {source!r} do not fit backbone {arch!r}: {'; '.join(problems)}. Expected a "
            f"{REFERENCE_MODELS[arch]} state dict at default width/depth."
        )
    model.load_state_dict(state_dict, strict=True)
