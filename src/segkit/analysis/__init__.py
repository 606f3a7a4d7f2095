"""segkit.analysis: graph-aware receptive field, effective receptive field, cost.

``analyze_model(model, input_size=513)`` returns an ``Analysis`` (per-stage table, strides,
theoretical RF of backbone output and logits, params, multiply-adds, CPU latency, peak memory, ERF);
``trace`` is the underlying instrumented forward pass that works on any ``nn.Module``.
"""

from segkit.analysis.cost import count_params, latency_samples, measure_latency, op_macs
from segkit.analysis.erf import ERF, effective_receptive_field, mass_radii, save_heatmap
from segkit.analysis.geometry import UnsupportedOpError
from segkit.analysis.report import format_summary, format_table
from segkit.analysis.stages import GLOBAL, Stage, rf_value, stage_table, watch_points
from segkit.analysis.summary import Analysis, analyze_model
from segkit.analysis.tracer import TraceResult, trace

__all__ = [
    "ERF",
    "GLOBAL",
    "Analysis",
    "Stage",
    "TraceResult",
    "UnsupportedOpError",
    "analyze_model",
    "count_params",
    "effective_receptive_field",
    "format_summary",
    "format_table",
    "latency_samples",
    "mass_radii",
    "measure_latency",
    "op_macs",
    "rf_value",
    "save_heatmap",
    "stage_table",
    "trace",
    "watch_points",
]
