"""Synchronised batch norm on the CPU, and the Lightning ``LayerSync`` plugin that swaps it in.

On GPUs segkit uses Lightning's own ``Trainer(sync_batchnorm=True)`` (``nn.SyncBatchNorm``, a plain
batch norm at world size 1). That module raises on CPU tensors once a process group exists, and a
DDP run on CPUs (tests, CPU clusters) still needs the same maths, so :class:`DistributedBatchNorm`
computes the batch statistics over all ranks with one differentiable all-reduce of per-channel
(sum, sum of squares, count). Gradients flow through the reduction, as in ``nn.SyncBatchNorm``.
:class:`DistributedBatchNormSync` is the ``trainer.plugins`` entry that converts to it
(``configs/trainer/ddp_cpu.yaml``); Lightning applies it when fitting under a DDP strategy and
reverts it at teardown.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from pytorch_lightning.plugins import LayerSync
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over all ranks: every rank's output is the sum, so the gradient of each
    input is the sum of the ranks' output gradients. (torch's ``torch.distributed.nn.functional.
    all_reduce`` did this and is deprecated; the functional collectives it points to have no
    autograd for all-reduce.)"""

    @staticmethod
    def forward(ctx: object, x: Tensor) -> Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:
        return _AllReduceSum.apply(grad)


class DistributedBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, ...) whose training statistics span all DDP ranks.

    Outside training, or with a single process, it is a plain batch norm. ``original`` is the
    batch-norm class it replaced (what :func:`revert_distributed_bn` gives back).
    """

    original: type[_BatchNorm] = nn.BatchNorm2d

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (N, C, ...), got {input.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and _world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xd = x.double()  # E[x^2] - E[x]^2 in float64 avoids cancellation
        count = torch.full((1,), x.numel() / channels, dtype=torch.float64, device=x.device)
        total = _AllReduceSum.apply(torch.cat([xd.sum(dims), (xd * xd).sum(dims), count]))
        n = total[-1]
        mean = total[:channels] / n
        var = (total[channels : 2 * channels] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach() * n / (n - 1).clamp_min(1))
        shape = (1, channels) + (1,) * (x.dim() - 2)
        y = (xd - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        y = y.to(x.dtype)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        self.num_batches_tracked.add_(1)
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), momentum)


def _copy_norm(module: _BatchNorm, cls: type[_BatchNorm]) -> _BatchNorm:
    new = cls(
        module.num_features,
        eps=module.eps,
        momentum=module.momentum,
        affine=module.affine,
        track_running_stats=module.track_running_stats,
    )
    new.load_state_dict(module.state_dict())
    new.train(module.training)
    if module.affine:
        new.weight.requires_grad_(module.weight.requires_grad)
        new.bias.requires_grad_(module.bias.requires_grad)
    return new


def convert_to_distributed_bn(module: nn.Module) -> nn.Module:
    """Replace every batch norm in ``module`` by :class:`DistributedBatchNorm` (same parameters,
    buffers and state-dict keys). Returns the converted module (a new one if ``module`` itself is a
    batch norm)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, DistributedBatchNorm):
        new = _copy_norm(module, DistributedBatchNorm)
        new.original = type(module)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_to_distributed_bn(child))
    return module


def revert_distributed_bn(module: nn.Module) -> nn.Module:
    """Undo :func:`convert_to_distributed_bn`: each :class:`DistributedBatchNorm` becomes the
    batch-norm class it replaced, with its current parameters and statistics."""
    if isinstance(module, DistributedBatchNorm):
        return _copy_norm(module, module.original)
    for name, child in module.named_children():
        module.add_module(name, revert_distributed_bn(child))
    return module


class DistributedBatchNormSync(LayerSync):
    """Lightning ``LayerSync`` plugin: batch norms synchronised across DDP ranks on any device
    (:class:`DistributedBatchNorm`). Use it for DDP on CPUs (gloo) in ``trainer.plugins``; on GPUs
    ``trainer.sync_batchnorm=true`` (torch's fused ``nn.SyncBatchNorm``) is faster."""

    def apply(self, model: nn.Module) -> nn.Module:
        converted = convert_to_distributed_bn(model)
        count = sum(isinstance(m, DistributedBatchNorm) for m in converted.modules())
        rank_zero_info(f"DistributedBatchNormSync: {count} batch norms synchronised across ranks")
        return converted

    def revert(self, model: nn.Module) -> nn.Module:
        return revert_distributed_bn(model)
