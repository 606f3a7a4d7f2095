"""A training step's hot path reads nothing back to the host and builds no tensor from Python
values: the DataModule's device hook, the model's own normalisation, loss, backward.

The former ``segkit.data.normalize`` built its mean / std with ``torch.tensor(..., device=...)``
every batch: on CUDA a host-to-device copy per step. The Segmentor's buffers replace it.
"""

from __future__ import annotations

import pytest
import torch

from segkit.backbones import create_backbone
from segkit.data.datamodule import SegDataModule
from segkit.models import create_model
from segkit.training.module import SegModule, segmentation_loss

K = 3


def _module(device: str) -> SegModule:
    torch.manual_seed(0)
    model = create_model(
        "deeplabv3plus", backbone=create_backbone("mobilenetv2", width_mult=0.35), num_classes=K,
        aspp_channels=16, decoder_channels=16, low_level_channels=8, aux=True,
    )  # fmt: skip
    return SegModule(model, num_classes=K).to(device).train()


def _batch(device: str) -> dict:
    gen = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (2, 3, 64, 64), generator=gen, dtype=torch.uint8)
    mask = torch.randint(0, K, (2, 64, 64), generator=gen, dtype=torch.uint8)
    mask[:, :4] = 255
    return {"image": image.to(device), "mask": mask.to(device), "id": ["a", "b"]}


def _step(module: SegModule, batch: dict) -> torch.Tensor:
    """What Lightning runs per training batch, less its own logging (tested in test_module)."""
    batch = SegDataModule.on_after_batch_transfer(None, batch, 0)  # type: ignore[arg-type]
    loss, _ = segmentation_loss(module(batch["image"]), batch["mask"], aux_weight=0.4)
    loss.backward()
    return loss.detach()


def test_a_step_on_the_cpu_reads_nothing_back_and_builds_no_constant(monkeypatch):
    module, batch = _module("cpu"), _batch("cpu")
    _step(module, dict(batch))  # warm-up
    calls: dict[str, int] = {}

    def counted(owner, name):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for name in ("item", "cpu", "tolist", "numpy", "__float__", "__int__", "__bool__"):
        counted(torch.Tensor, name)
    counted(torch, "tensor")
    for _ in range(3):
        _step(module, dict(batch))
    assert calls == {}, f"per-step host reads / Python-built tensors in 3 steps: {calls}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_step_on_cuda_never_synchronises():
    module, batch = _module("cuda"), _batch("cuda")
    _step(module, dict(batch))  # warm-up: cuDNN plans, allocator
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            _step(module, dict(batch))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
