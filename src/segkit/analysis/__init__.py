"""segkit.analysis: graph-aware receptive field, effective receptive field, cost.

``analyze_model(model, input_size=513)`` returns an ``Analysis`` (per-stage table, strides,
theoretical RF of backbone output and logits, params, multiply-adds, CPU latency, peak memory, ERF);
``trace`` is the underlying instrumented forward pass that works on any ``nn.Module``.

Names are imported on first use (PEP 562): importing one submodule does not import the others.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "cost": (
            "MacCounter",
            "count_params",
            "latency_samples",
            "latency_summary",
            "op_kind",
            "op_macs",
        ),
        "erf": (
            "ERF",
            "PixelGradients",
            "effective_receptive_field",
            "erf_from_gradient",
            "mass_radii",
            "save_heatmap",
        ),
        "geometry": ("UnsupportedOpError",),
        "pixel_rf": ("OutputGrid", "PixelRF", "output_grid", "pixel_receptive_field"),
        "report": ("Analysis", "analyze_model"),
        "stages": ("GLOBAL", "Stage", "rf_value", "stage_table", "watch_points"),
        "summary": ("format_summary", "format_table"),
        "tracer": ("TraceResult", "trace"),
    },
)
