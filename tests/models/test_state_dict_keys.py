"""The weight names (state_dict keys) and shapes of every model builder stay as checkpoints hold them.

Checkpoints trained before a refactoring must still load: this pins, for each builder and head
option that changes the structure (aux head included), the count and a digest of the model's
``name (shape)`` rows. The digests were made by the code before the heads took the backbone's
``feature_info`` (three parallel lists until then). A change that renames or reshapes a weight
fails here; one that means to must say so and update the table (old checkpoints then stop loading).
Built on the meta device: no weights are allocated, so even Xception-65 builds in a moment.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from segkit.models import MODELS

#: name -> (builder, output stride, head options); every model built with aux=True, 11 classes.
CONFIGS = {
    "fcn-32s": ("fcn", 32, {"fcn_variant": "32s"}),
    "fcn-16s": ("fcn", 32, {"fcn_variant": "16s"}),
    "fcn-8s": ("fcn", 32, {"fcn_variant": "8s"}),
    "fcn-8s-os8": ("fcn", 8, {"fcn_variant": "8s"}),
    "deeplabv3": ("deeplabv3", 16, {}),
    "deeplabv3-separable": ("deeplabv3", 16, {"separable": True}),
    "deeplabv3plus": ("deeplabv3plus", 16, {}),
    "deeplabv3plus-separable": ("deeplabv3plus", 16, {"separable": True}),
    "deeplabv3plus-pyramid_pooling": ("deeplabv3plus", 16, {"context": "pyramid_pooling"}),
    "deeplabv3plus-none": ("deeplabv3plus", 16, {"context": "none"}),
}

#: "<backbone>/<config>" -> (number of state_dict entries, sha256 of its rows, first 16 hex digits).
KEYS = {
    "mobilenetv2/fcn-32s": (316, "8499f2104f4a7446"),
    "mobilenetv2/fcn-16s": (319, "bda3bc47798ee604"),
    "mobilenetv2/fcn-8s": (322, "b2de9d6da893efd3"),
    "mobilenetv2/fcn-8s-os8": (322, "b2de9d6da893efd3"),
    "mobilenetv2/deeplabv3": (348, "54822b7cc47161d2"),
    "mobilenetv2/deeplabv3-separable": (366, "a52cdd7fabaddd2a"),
    "mobilenetv2/deeplabv3plus": (366, "8690890200d80a33"),
    "mobilenetv2/deeplabv3plus-separable": (396, "552fd8a9dc5e18c8"),
    "mobilenetv2/deeplabv3plus-pyramid_pooling": (346, "dc1b76c89e886e1f"),
    "mobilenetv2/deeplabv3plus-none": (340, "b218bd686a20be97"),
    "xception65/fcn-32s": (802, "020027f07435b210"),
    "xception65/fcn-16s": (805, "625b85705bc33cdb"),
    "xception65/fcn-8s": (808, "0f186e46defc479c"),
    "xception65/fcn-8s-os8": (808, "0f186e46defc479c"),
    "xception65/deeplabv3": (834, "ae1d4f68a0791994"),
    "xception65/deeplabv3-separable": (852, "6c13099de8574423"),
    "xception65/deeplabv3plus": (852, "b5c885b78248392a"),
    "xception65/deeplabv3plus-separable": (882, "a487d5c7a35a8b45"),
    "xception65/deeplabv3plus-pyramid_pooling": (832, "7162ed4dd3de3449"),
    "xception65/deeplabv3plus-none": (826, "10094c40dbd5b92c"),
}


def state_dict_rows(backbone: str, config: str) -> list[str]:
    model, output_stride, options = CONFIGS[config]
    with torch.device("meta"):
        built = MODELS[model](backbone=backbone, num_classes=11, output_stride=output_stride,
                              aux=True, **options)  # fmt: skip
    return [f"{name} {tuple(t.shape)}" for name, t in built.state_dict().items()]


@pytest.mark.parametrize("name", sorted(KEYS))
def test_state_dict_keys_are_unchanged(name):
    backbone, config = name.split("/")
    rows = state_dict_rows(backbone, config)
    digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
    heads = [r for r in rows if not r.startswith("backbone.")]
    assert (len(rows), digest) == KEYS[name], f"the heads' rows now: {heads}"
