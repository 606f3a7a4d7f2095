"""segkit.training: the LightningModule, parameter groups, poly LR schedule, callbacks, checkpoints.

Names are imported on first use (PEP 562), so tools that only read checkpoints
(``segkit.training.checkpoint``: evaluate, analyze, export) do not pay for importing Lightning.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "NonFiniteLossError": "callbacks",
    "NonFiniteLossGuard": "callbacks",
    "SyncBatchNormIfDistributed": "callbacks",
    "ThroughputMonitor": "callbacks",
    "AtomicCheckpointIO": "checkpointing",
    "SegModelCheckpoint": "checkpointing",
    "atomic_torch_save": "checkpointing",
    "NonFiniteWeightsError": "checkpoint",
    "non_finite_counts": "checkpoint",
    "check_resume_compatible": "checkpoint",
    "checkpoint_config": "checkpoint",
    "config_differences": "checkpoint",
    "load_checkpoint": "checkpoint",
    "SegModule": "module",
    "segmentation_loss": "module",
    "build_param_groups": "param_groups",
    "is_depthwise": "param_groups",
    "split_decay": "param_groups",
    "SegProgressBar": "progress",
    "PolyFactor": "schedule",
    "poly_scheduler": "schedule",
    "DistributedBatchNorm": "sync_bn",
    "convert_to_distributed_bn": "sync_bn",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
