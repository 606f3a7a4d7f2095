"""Human-readable rendering of an ``Analysis``: the per-stage table and the summary lines."""

from __future__ import annotations

from segkit.analysis.stages import nice
from segkit.analysis.summary import Analysis

_COLUMNS = ("name", "H x W", "stride", "dilation", "channels", "RF")


def format_table(analysis: Analysis) -> str:
    """The per-stage table as aligned plain text."""
    rows = [
        (
            s.name,
            f"{s.height} x {s.width}",
            str(nice(s.stride)),
            str(nice(s.dilation)),
            str(s.channels),
            str(s.rf),
        )
        for s in analysis.stages
    ]
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [_COLUMNS, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_summary(analysis: Analysis, *, title: str = "") -> str:
    """Summary lines: strides, receptive fields, cost."""
    a = analysis
    lat = (
        "skipped"
        if a.latency_ms is None
        else f"{a.latency_ms:.1f} ms (median of {a.extra.get('latency_runs')} run(s), "
        f"{a.extra.get('threads')} threads)"
    )
    lines = [
        title,
        f"input {a.input_size} x {a.input_size}   output stride {a.output_stride}   "
        f"logits stride {nice(a.logits_stride)}",
        f"receptive field: backbone output {a.backbone_rf}   logits {a.model_rf}",
        f"params {a.params / 1e6:.2f} M (backbone {_m(a.backbone_params)})   "
        f"multiply-adds {a.macs / 1e9:.2f} G (backbone {_g(a.backbone_macs)})",
        f"CPU latency {lat}   peak memory {a.peak_mem_mb:.1f} MB",
    ]
    for label, erf in (("ERF", a.erf), ("ERF at init", a.erf_init)):
        if erf is not None:
            lines.append(
                f"{label} (input {a.extra.get('erf_input_size')}): radius holding 50/90/99 % of "
                f"the gradient: {erf.r50:.1f} / {erf.r90:.1f} / {erf.r99:.1f} px"
            )
    return "\n".join(line for line in lines if line)


def _m(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} M"


def _g(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e9:.2f} G"
