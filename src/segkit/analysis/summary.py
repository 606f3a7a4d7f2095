"""Human-readable rendering of an ``Analysis``: the per-stage table and the summary lines."""

from __future__ import annotations

from segkit.analysis.report import Analysis
from segkit.analysis.stages import nice

_COLUMNS = ("name", "H x W", "stride", "dilation", "channels", "RF")
#: Under the table when a stride was rounded (the JSON keeps the exact sampling step).
ROUNDED_NOTE = (
    "~N: rounded. A map resized to a size that is not an integer multiple of its own samples the "
    "input every (old stride x old size / new size) px: 4 x 129 / 513 = 1.006 for logits resized "
    "to a 513 px input, 16 x 33 / 129 = 4.09 for a decoder's upsampling"
)


def stride_text(stride: float) -> str:
    """A stride as an integer; ``~N`` when ``stride`` is not one (see ``ROUNDED_NOTE``)."""
    value = nice(stride)
    return str(value) if isinstance(value, int) else f"~{max(1, round(stride))}"


def format_table(analysis: Analysis) -> str:
    """The per-stage table as aligned plain text (strides as integers, see ``ROUNDED_NOTE``)."""
    rows = [
        (
            s.name,
            f"{s.height} x {s.width}",
            stride_text(s.stride),
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
    if any(row[2].startswith("~") for row in rows):
        lines.append(ROUNDED_NOTE)
    return "\n".join(lines)


def format_summary(analysis: Analysis, *, title: str = "") -> str:
    """Summary lines: strides, receptive fields, cost."""
    a = analysis
    lat = "skipped" if a.latency_ms is None else _latency(a)
    lines = [
        title,
        f"input {a.input_size[0]} x {a.input_size[1]}   output stride {a.output_stride}   "
        f"logits stride {stride_text(a.logits_stride)}",
        f"receptive field: backbone output {a.backbone_rf}   logits {a.model_rf}",
        f"params {a.params / 1e6:.2f} M (backbone {_m(a.backbone_params)})   "
        f"multiply-adds {a.macs / 1e9:.2f} G (backbone {_g(a.backbone_macs)})",
        f"CPU latency {lat}   peak memory {a.peak_mem_mb:.1f} MB",
    ]
    if a.extra.get("latency_warning"):
        lines.append(f"[!] latency not to be trusted: {a.extra['latency_warning']}")
    for label, erf in (("ERF", a.erf), ("ERF at init", a.erf_init)):
        if erf is not None:
            lines.append(
                f"{label} (input {_size(a.extra.get('erf_input_size'))}): radius holding 50/90/99 % of "
                f"the gradient: {erf.r50:.1f} / {erf.r90:.1f} / {erf.r99:.1f} px"
            )
    return "\n".join(line for line in lines if line)


def _latency(a: Analysis) -> str:
    runs, spread = a.extra.get("latency_runs"), a.extra.get("latency_spread")
    spread_text = "" if spread is None else f", spread {spread:.0%}"
    return (
        f"{a.latency_ms:.1f} ms (median of {runs} run(s){spread_text}, "
        f"{a.extra.get('threads')} threads)"
    )


def _size(size: list[int] | None) -> str:
    return "-" if size is None else f"{size[0]} x {size[1]}"


def _m(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} M"


def _g(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e9:.2f} G"
