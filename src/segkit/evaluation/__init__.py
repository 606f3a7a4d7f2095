"""segkit.evaluation: confusion-matrix metrics, trimap bands, inference modes and the evaluation loop.

Plots and the metrics.json writer live in ``segkit.evaluation.report`` (imports matplotlib), label
map pictures in ``segkit.evaluation.overlay``. Names are imported on first use (PEP 562), so
``predict`` (inference only) does not pay for importing torchmetrics.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "eval_loader": "batching",
    "image_sizes": "batching",
    "indexed_collate": "batching",
    "shard": "batching",
    "size_sorted_batches": "batching",
    "joint_counts": "counting",
    "miou_of_matrices": "counting",
    "EvalResult": "evaluator",
    "Evaluator": "evaluator",
    "best_and_worst": "evaluator",
    "InferenceSettings": "inference",
    "infer": "inference",
    "predict_multiscale": "inference",
    "predict_slide": "inference",
    "predict_whole": "inference",
    "Confusion": "metrics",
    "SegConfusion": "metrics",
    "confusion_matrix": "metrics",
    "scores_from_confusion": "metrics",
    "bottom_right_padding": "trimap",
    "boundary_map": "trimap",
    "trimap_levels": "trimap",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
