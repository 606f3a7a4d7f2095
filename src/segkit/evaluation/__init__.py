"""segkit.evaluation: confusion-matrix metrics, trimap bands, inference modes and the evaluation loop.

Plots and the metrics.json writer live in ``segkit.evaluation.report`` (imports matplotlib), label
map pictures in ``segkit.evaluation.overlay``. Names are imported on first use (PEP 562), so
``predict`` (inference only) does not pay for importing torchmetrics.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "batching": (
            "eval_loader",
            "image_sizes",
            "indexed_collate",
            "same_size_batches",
            "shard",
        ),
        "boundary": ("BF_THETA", "boundary_f1"),
        "counting": ("joint_counts", "miou_of_matrices"),
        "evaluator": ("EvalResult", "Evaluator", "best_and_worst"),
        "inference": (
            "InferenceSettings",
            "infer",
            "predict_multiscale",
            "predict_slide",
            "predict_whole",
        ),
        "metrics": ("Confusion", "SegConfusion", "confusion_matrix", "scores_from_confusion"),
        "trimap": ("bottom_right_padding", "boundary_map", "trimap_levels"),
    },
)
