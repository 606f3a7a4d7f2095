"""module.class_weight in SegModule: a buffer in the loss, refused values, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_module import K, TinySeg

from segkit.cli.configs import compose_config
from segkit.cli.preflight import preflight
from segkit.constants import IGNORE_INDEX
from segkit.training import SegModule, segmentation_loss

WEIGHTS = [0.5, 1.0, 4.0]


def test_weighted_loss_through_a_buffer():
    module = SegModule(TinySeg(aux=True), num_classes=K, class_weight=WEIGHTS)
    assert "class_weight" in dict(module.named_buffers())
    assert module.state_dict()["class_weight"].tolist() == WEIGHTS
    module = module.to(torch.float64)  # buffers follow .to() as parameters do (a device too)
    assert module.class_weight.dtype == torch.float64
    logits = torch.randn(2, K, 8, 8, dtype=torch.float64)
    mask = torch.randint(0, K, (2, 8, 8))
    mask[0, 0] = IGNORE_INDEX
    total, main = segmentation_loss(
        {"out": logits, "aux": logits}, mask, aux_weight=0.4, class_weight=module.class_weight
    )
    expected = F.cross_entropy(
        logits, mask, weight=torch.tensor(WEIGHTS, dtype=torch.float64), ignore_index=IGNORE_INDEX
    )
    assert torch.allclose(main, expected) and torch.allclose(total, 1.4 * expected)
    plain = SegModule(TinySeg(), num_classes=K)
    assert plain.class_weight is None and "class_weight" not in plain.state_dict()


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([1.0, 2.0], r"^class_weight has 2 values but the dataset has 3 classes"),
        ([1.0, float("nan"), 1.0], r"^class_weight\[1\] is nan: .* finite and >= 0"),
        ([1.0, -0.5, 1.0], r"^class_weight\[1\] is -0.5"),
        ([0, 0, 0], r"^class_weight is all zeros"),
        ("inverse", r"^class_weight must be None, 'median_frequency', or a list of 3 weights"),
    ],
)
def test_bad_weights_are_one_clear_error(value, match):
    with pytest.raises(ValueError, match=match):
        SegModule(TinySeg(), num_classes=K, class_weight=value)


def test_median_frequency_is_the_train_tasks_to_resolve():
    with pytest.raises(ValueError, match=r"class_weight=median_frequency is resolved by the train"):
        SegModule(TinySeg(), num_classes=K, class_weight="median_frequency")


def test_preflight_refuses_before_torch_work(tmp_path):
    base = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}",
            "data=synthetic"]  # fmt: skip
    for value, match in (
        ("[1,2]", "has 2 values but the dataset has 7"),
        ("[1,2,3,4,5,6,nan]", r"\[6\] is nan"),
    ):
        cfg = compose_config("train", [*base, f"module.class_weight={value}"])
        with pytest.raises(ValueError, match=match):
            preflight("train", cfg)
    preflight("train", compose_config("train", [*base, "module.class_weight=median_frequency"]))


def test_checkpoint_keeps_the_weights_and_a_resume_takes_them(caplog):
    trained = SegModule(TinySeg(), num_classes=K, class_weight=WEIGHTS)
    checkpoint = {"state_dict": trained.state_dict()}
    trained.on_save_checkpoint(checkpoint)
    assert checkpoint["segkit"]["class_weight"] == WEIGHTS
    resumed = SegModule(TinySeg(), num_classes=K)  # a config without weights
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.class_weights() == WEIGHTS and "trained with [0.5, 1.0, 4.0]" in caplog.text
    resumed.load_state_dict(checkpoint["state_dict"])  # strict: the keys fit
    unweighted = SegModule(TinySeg(), num_classes=K)
    reweighted = SegModule(TinySeg(), num_classes=K, class_weight=WEIGHTS)
    plain_ckpt = {"state_dict": unweighted.state_dict()}
    reweighted.on_load_checkpoint(plain_ckpt)
    assert reweighted.class_weight is None
    reweighted.load_state_dict(plain_ckpt["state_dict"])
