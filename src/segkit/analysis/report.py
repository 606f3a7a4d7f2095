"""``analyze_model``: everything segkit reports about one network, as one ``Analysis`` object."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from segkit.analysis.cost import count_params, latency_samples, latency_summary, state_bytes
from segkit.analysis.erf import ERF, effective_receptive_field
from segkit.analysis.geometry import UnsupportedOpError
from segkit.analysis.stages import Stage, nice, rf_value, stage_table, stride_of, watch_points
from segkit.analysis.tracer import TraceResult, trace
from segkit.checks import check_image_size
from segkit.nn.context import ASPP

MB = 2**20
#: How the figures were measured, added to the JSON by ``analyze_model``: torch threads of the
#: latency, timed latency runs actually made, their spread ((max - min) / median) and a warning
#: when the latency figure is not to be trusted (too few runs, large spread; ``None`` otherwise;
#: ``segkit.analysis.cost.latency_summary``), whether the trace ran on the meta device, the ERF
#: input size ([H, W]) and sample count (``None`` without ERF), and the wall seconds of each phase
#: (``trace``, which includes the latency warm-up forward when the trace ran on real tensors;
#: ``latency``; ``erf``).
EXTRA_KEYS: tuple[str, ...] = (
    "threads",
    "latency_runs",
    "latency_spread",
    "latency_warning",
    "trace_meta",
    "erf_input_size",
    "erf_samples",
    "seconds",
)


@dataclass
class Analysis:
    """Figures for one model at one input size (see ``to_json`` for the JSON schema)."""

    input_size: tuple[int, int]  # (H, W)
    output_stride: int | None
    logits_stride: float
    backbone_rf: int | str | None
    model_rf: int | str
    params: int
    backbone_params: int | None
    macs: int
    backbone_macs: int | None
    latency_ms: float | None
    peak_mem_mb: float
    stages: list[Stage]
    aspp_rates: list[int] | None = None  # the actual rates of the model's ASPP, if it has one
    erf: ERF | None = None
    erf_init: ERF | None = None  # the freshly initialised model, when ``erf`` is a checkpoint's
    extra: dict = field(default_factory=dict)  # EXTRA_KEYS

    def to_json(self) -> dict:
        """The analysis JSON (``analyze.json=PATH``); ``compare`` reads these keys.

        Keys: ``input_size`` ([H, W] px), ``output_stride`` (the backbone's), ``logits_stride``,
        ``backbone_rf`` and ``model_rf`` (px, or ``"global"``), ``params``, ``backbone_params``,
        ``macs``, ``backbone_macs``, ``latency_ms`` (median; ``None`` when skipped),
        ``peak_mem_mb``, ``stages`` (``Stage.as_dict``), ``aspp_rates`` (the dilation rates the
        model's ASPP really runs at this output stride, e.g. ``[12, 24, 36]`` at OS 8; ``None``
        without ASPP: read them here rather than rescaling a config), ``erf`` (``{"r50", "r90", "r99"}`` px or
        ``None``), ``erf_init`` (only for a checkpoint's fresh twin), and ``EXTRA_KEYS``: how the
        figures were measured.
        """
        out = {
            "input_size": list(self.input_size),
            "output_stride": self.output_stride,
            "logits_stride": nice(self.logits_stride),
            "backbone_rf": self.backbone_rf,
            "model_rf": self.model_rf,
            "params": self.params,
            "backbone_params": self.backbone_params,
            "macs": self.macs,
            "backbone_macs": self.backbone_macs,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "peak_mem_mb": round(self.peak_mem_mb, 2),
            "stages": [s.as_dict() for s in self.stages],
            "aspp_rates": self.aspp_rates,
            "erf": _erf_json(self.erf),
        }
        if self.erf_init is not None:
            out["erf_init"] = _erf_json(self.erf_init)
        return {**out, **self.extra}


def _erf_json(erf: ERF | None) -> dict | None:
    return None if erf is None else {k: round(v, 2) for k, v in erf.radii().items()}


def analyze_model(
    model: nn.Module,
    *,
    input_size: int | Sequence[int],
    latency_runs: int = 3,
    latency_budget_s: float | None = None,
    erf: bool = True,
    erf_input_size: int | Sequence[int] = 257,
    erf_samples: int = 2,
    seed: int = 0,
    trace_meta: bool | None = None,
    erf_calibrate_bn: bool = False,
) -> Analysis:
    """Trace, cost and (optionally) ERF of ``model`` on a (1, 3, H, W) input.

    ``input_size`` and ``erf_input_size``: a side N (N x N) or an (H, W) pair in pixels (CamVid
    frames: (360, 480)); the figures of N are those of (N, N).

    ``latency_runs=0`` skips the latency measurement; ``latency_budget_s`` stops the timed runs
    once they total more than that (at least one; see ``cost.latency_samples``).
    ``trace_meta``: True runs the tracing pass on the meta device (shapes only; its first call in
    a process imports torch._dynamo, ~1 s, through torch's Python meta kernels), False on the real
    input, ``None`` (default) picks: real when latency is measured -- that traced forward runs
    the same kernels on the same input and is the latency's warm-up, so it costs no extra forward --
    meta otherwise. Models whose forward reads tensor values need False.
    ``erf_calibrate_bn``: in the ERF pass, BN layers normalise with the ERF batch's own statistics
    (for freshly initialised models, see ``segkit.analysis.erf.batch_calibrated_bn``).
    Peak memory = parameter + buffer bytes + the peak live bytes of tensors allocated during one
    batch-1 no-grad forward (tracked op by op by the tracer; allocator overhead and kernels'
    internal scratch space are not included).
    """
    input_size = check_image_size(input_size, "input_size", minimum=8)
    if latency_runs < 0:
        raise ValueError(f"latency_runs must be >= 0 (0 = skip), got {latency_runs}")
    if erf_samples < 1:
        raise ValueError(f"erf_samples must be >= 1, got {erf_samples}")
    erf_input_size = check_image_size(erf_input_size, "erf_input_size", minimum=3)
    model.eval()
    x = _example_input(model, input_size, seed)
    seconds: dict[str, float] = {}
    meta = latency_runs == 0 if trace_meta is None else trace_meta
    with _timer(seconds, "trace"):
        result = _trace(model, x, meta)
    with _timer(seconds, "latency"):
        times = (
            latency_samples(
                model, x, runs=latency_runs, warmup=1 if meta else 0, budget_s=latency_budget_s
            )
            if latency_runs > 0
            else []
        )
    latency = latency_summary(times)
    with _timer(seconds, "erf"):
        erf_result = _erf(model, erf, erf_input_size, erf_samples, seed, erf_calibrate_bn)
    analysis = _from_trace(model, result, input_size)
    analysis.latency_ms, analysis.erf = latency.pop("latency_ms"), erf_result
    analysis.extra = {
        "threads": torch.get_num_threads(),
        **latency,
        "trace_meta": meta,
        "erf_input_size": list(erf_input_size) if erf else None,
        "erf_samples": erf_samples if erf else None,
        "seconds": seconds,  # wall time of each phase of this analysis
    }
    return analysis


def _trace(model: nn.Module, x: torch.Tensor, meta: bool) -> TraceResult:
    try:
        return trace(model, x, watch=watch_points(model), meta=meta)
    except (RuntimeError, NotImplementedError) as err:
        if not meta or isinstance(err, UnsupportedOpError):
            raise
        raise RuntimeError(
            f"tracing {type(model).__name__} on the meta device failed ({err}); its forward "
            "probably reads tensor values: pass trace_meta=False"
        ) from err


@contextmanager
def _timer(store: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    store[key] = round(time.perf_counter() - start, 3)


def _from_trace(model: nn.Module, result: TraceResult, input_size: tuple[int, int]) -> Analysis:
    backbone = getattr(model, "backbone", None)
    names = [f.module for f in getattr(backbone, "feature_info", [])] or None
    return Analysis(
        input_size=input_size,
        output_stride=getattr(backbone, "output_stride", None),
        logits_stride=_logits_stride(result),
        backbone_rf=_backbone_rf(result),
        model_rf=rf_value(_main_output(result)),
        params=count_params(model),
        backbone_params=count_params(backbone) if isinstance(backbone, nn.Module) else None,
        macs=result.macs,
        backbone_macs=result.macs_under("backbone") if backbone is not None else None,
        latency_ms=None,
        peak_mem_mb=(state_bytes(model) + result.peak_activation_bytes) / MB,
        stages=stage_table(result, names),
        aspp_rates=next((list(m.rates) for m in model.modules() if isinstance(m, ASPP)), None),
    )


def _erf(
    model: nn.Module,
    enabled: bool,
    size: tuple[int, int],
    samples: int,
    seed: int,
    calibrate: bool,
) -> ERF | None:
    if not enabled:
        return None
    return effective_receptive_field(
        model, input_size=size, samples=samples, seed=seed, calibrate_bn=calibrate
    )


def _main_output(result: TraceResult):  # noqa: ANN202
    return result.outputs.get("out") or next(iter(result.outputs.values()))


def _logits_stride(result: TraceResult) -> float:
    """Stride of the head's logits before the final resize; the output's own stride otherwise."""
    logits = [r for r in result.records if r.name == "logits"]
    return stride_of(logits[-1] if logits else _main_output(result))


def _backbone_rf(result: TraceResult) -> int | str | None:
    feats = [r for r in result.records if r.name.startswith("backbone.")]
    return rf_value(feats[-1]) if feats else None


def _example_input(model: nn.Module, size: tuple[int, int], seed: int) -> Tensor:
    """(1, 3, H, W): a random uint8 image for a model that normalises its own input (a
    Segmentor: what inference feeds it, so latency includes that step), N(0, 1) for any other."""
    gen = torch.Generator().manual_seed(seed)
    if getattr(model, "pixel_mean", None) is not None:
        return torch.randint(0, 256, (1, 3, *size), generator=gen, dtype=torch.uint8)
    return torch.randn(1, 3, *size, generator=gen)
