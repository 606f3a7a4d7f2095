"""segkit.training: the LightningModule, parameter groups, poly LR schedule, callbacks, checkpoints."""

from segkit.training.callbacks import (
    DataStateCheckpoint,
    NonFiniteLossError,
    NonFiniteLossGuard,
    SyncBatchNormIfDistributed,
    ThroughputMonitor,
)
from segkit.training.checkpoint import (
    check_resume_compatible,
    checkpoint_config,
    config_differences,
    load_checkpoint,
)
from segkit.training.module import SegModule, segmentation_loss
from segkit.training.param_groups import build_param_groups, is_depthwise, split_decay
from segkit.training.schedule import PolyFactor, poly_scheduler
from segkit.training.sync_bn import DistributedBatchNorm, convert_to_distributed_bn

__all__ = [
    "DataStateCheckpoint",
    "DistributedBatchNorm",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "PolyFactor",
    "SegModule",
    "SyncBatchNormIfDistributed",
    "ThroughputMonitor",
    "build_param_groups",
    "check_resume_compatible",
    "checkpoint_config",
    "config_differences",
    "convert_to_distributed_bn",
    "is_depthwise",
    "load_checkpoint",
    "poly_scheduler",
    "segmentation_loss",
    "split_decay",
]
