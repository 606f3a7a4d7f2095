"""segkit.training: the LightningModule, parameter groups, LR schedule, callbacks, checkpoints,
synchronised batch norm.

Names are imported on first use (PEP 562), so tools that only read checkpoints
(``segkit.training.checkpoint_file.read_checkpoint``: evaluate, analyze, export) do not pay for
importing Lightning.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "callbacks": ("ImageRateMonitor", "NonFiniteLossError", "NonFiniteLossGuard"),
        "atomic_io": ("AtomicCheckpointIO", "CheckpointWriteError", "atomic_torch_save"),
        "checkpoint_callback": ("SegModelCheckpoint",),
        "csv_log": ("ContinuingCSVLogger",),
        "checkpoint_file": (
            "FORMAT",
            "NonFiniteWeightsError",
            "checkpoint_config",
            "non_finite_counts",
            "read_checkpoint",
        ),
        "resume": (
            "check_resume_compatible",
            "check_resume_settings",
            "check_steps_left",
            "config_differences",
        ),
        "module": ("SegModule", "segmentation_loss"),
        "param_groups": ("build_param_groups", "is_depthwise"),
        "progress": ("SegProgressBar",),
        "schedule": ("poly_lr",),
        "sync_bn": (
            "DistributedBatchNorm",
            "DistributedBatchNormSync",
            "convert_to_distributed_bn",
        ),
    },
)
