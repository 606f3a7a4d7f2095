"""segkit.evaluation: confusion-matrix metrics, trimap bands, inference modes and the evaluation loop.

Plots and the metrics.json writer live in ``segkit.evaluation.report`` (imports matplotlib), label
map pictures in ``segkit.evaluation.overlay``.
"""

from segkit.evaluation.batching import eval_loader, image_sizes, size_sorted_batches
from segkit.evaluation.counting import joint_counts, miou_of_matrices
from segkit.evaluation.evaluator import EvalResult, Evaluator, best_and_worst, per_image_miou
from segkit.evaluation.inference import (
    InferenceSettings,
    infer,
    predict_multiscale,
    predict_slide,
    predict_whole,
    settings_from,
)
from segkit.evaluation.metrics import ConfusionMatrix, confusion_matrix, scores_from_confusion
from segkit.evaluation.trimap import (
    TrimapMeter,
    bottom_right_padding,
    boundary_map,
    trimap_bands,
    trimap_levels,
)

__all__ = [
    "ConfusionMatrix",
    "EvalResult",
    "Evaluator",
    "InferenceSettings",
    "TrimapMeter",
    "best_and_worst",
    "boundary_map",
    "bottom_right_padding",
    "confusion_matrix",
    "eval_loader",
    "image_sizes",
    "infer",
    "joint_counts",
    "miou_of_matrices",
    "per_image_miou",
    "predict_multiscale",
    "predict_slide",
    "predict_whole",
    "scores_from_confusion",
    "settings_from",
    "size_sorted_batches",
    "trimap_bands",
    "trimap_levels",
]
