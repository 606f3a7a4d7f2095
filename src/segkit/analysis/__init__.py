"""segkit.analysis: graph-aware receptive field, effective receptive field, cost.

``analyze_model(model, input_size=513)`` returns an ``Analysis`` (per-stage table, strides,
theoretical RF of backbone output and logits, params, multiply-adds, CPU latency, peak memory, ERF);
``trace`` is the underlying instrumented forward pass that works on any ``nn.Module``.

Names are imported on first use (PEP 562): importing one submodule does not import the others.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "count_params": "cost",
    "latency_samples": "cost",
    "measure_latency": "cost",
    "op_macs": "cost",
    "ERF": "erf",
    "effective_receptive_field": "erf",
    "mass_radii": "erf",
    "save_heatmap": "erf",
    "UnsupportedOpError": "geometry",
    "format_summary": "report",
    "format_table": "report",
    "GLOBAL": "stages",
    "Stage": "stages",
    "rf_value": "stages",
    "stage_table": "stages",
    "watch_points": "stages",
    "Analysis": "summary",
    "analyze_model": "summary",
    "TraceResult": "tracer",
    "trace": "tracer",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
