"""How each aten operation changes receptive field, stride and layout (see ``geometry.py``).

This module holds the elementwise and sliding-window (conv, pool, resize) rules in ``RULES``;
``rules_layout.LAYOUT_RULES`` holds the layout, reduction and matmul rules. The tracer looks ops up
in both tables by name (``find_rule(func, tables)``): no table is filled by importing a module.

Every rule gets the op's positional arguments (schema defaults filled in) and its output; it asks
``geo(t)`` for a tensor's geometry (``None`` for tensors that do not depend on the input, e.g.
weights) and returns the geometry of each output (``None`` for outputs it leaves untracked). Operations with no rule raise ``UnsupportedOpError`` -- a
wrong receptive field is worse than none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from segkit.analysis.geometry import (
    Geometry,
    UnsupportedOpError,
    is_spatial,
    merge,
    plain_dim,
    single_axis,
    spatial_dim,
)

GeoFn = Callable[[Tensor], "Geometry | None"]
Rule = Callable[[tuple, Any, GeoFn], Any]
RULES: dict[str, Rule] = {}

# Elementwise ops missing torch's "pointwise" tag.
_EXTRA_POINTWISE = {"hardswish", "hardswish_", "_prelu_kernel", "where", "clone", "_to_copy"}
_IDENTITY = {"detach", "alias", "lift_fresh", "contiguous", "dropout"}
# Outputs that do not depend on the values (or positions) of the input.
_CONSTANT = {"empty_like", "zeros_like", "ones_like", "full_like", "new_empty", "new_zeros"}


def registrar(table: dict[str, Rule]) -> Callable[..., Callable[[Rule], Rule]]:
    """A ``@rule("op", ...)`` decorator that files a rule under those aten op names in ``table``."""

    def rule(*names: str) -> Callable[[Rule], Rule]:
        def register(fn: Rule) -> Rule:
            for n in names:
                table[n] = fn
            return fn

        return register

    return rule


rule = registrar(RULES)


def find_rule(func: torch._ops.OpOverload, tables: Sequence[Mapping[str, Rule]]) -> Rule | None:
    """The rule for ``func`` from the first of ``tables`` naming it, else the generic ones
    (identity, constant, torch's pointwise tag); ``None`` if the op has none."""
    name = func.overloadpacket.__name__
    for table in tables:
        if name in table:
            return table[name]
    if name in _IDENTITY:
        return _identity
    if name in _CONSTANT:
        return _constant
    if torch.Tag.pointwise in func.tags or name in _EXTRA_POINTWISE:
        return pointwise
    return None


def tensors_in(args: Any) -> list[Tensor]:
    """All tensors in a (nested) argument list."""
    if isinstance(args, Tensor):
        return [args]
    if isinstance(args, list | tuple):
        return [t for a in args for t in tensors_in(a)]
    return []


def _identity(args: tuple, out: Any, geo: GeoFn) -> Geometry | None:
    return geo(args[0])


def _constant(args: tuple, out: Any, geo: GeoFn) -> None:
    return None


def pointwise(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    """Elementwise/broadcast result: every output sees what its inputs at that position saw."""
    tracked = [t for t in tensors_in(args) if geo(t) is not None]
    return merge([geo(t) for t in tracked], [t.shape for t in tracked], out.shape)


def _pair(v: int | Sequence[int], default: Sequence[int] | None = None) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if len(v) == 0 and default is not None:
        return _pair(default)
    return (int(v[0]), int(v[-1]))


def _check_4d(t: Tensor, what: str) -> None:
    if t.dim() != 4:
        raise UnsupportedOpError(f"{what} on a {t.dim()}-D tensor; only (B, C, H, W) is supported")


def _sliding(
    g: Geometry, out: Tensor, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> Geometry:
    """Conv/pool over dims 2, 3: RF grows by (k - 1) * d * jump, the jump multiplies by s."""
    if is_spatial(g.dims[1]):
        raise UnsupportedOpError("a conv/pool mixes a channel dim that holds spatial positions")
    rf, dims = list(g.rf), [g.dims[0], plain_dim(out.shape[1])]
    for i in range(2):
        axis, jump = single_axis(g.dims[2 + i], i)
        rf[axis] += (kernel[i] - 1) * dilation[i] * jump
        dims.append(spatial_dim(out.shape[2 + i], axis, jump * stride[i]))
    return Geometry(tuple(dims), (rf[0], rf[1]))


@rule("convolution")
def _convolution(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    x, w, _, stride, _, dilation, transposed = args[:7]
    _check_4d(x, "convolution")
    g = geo(x)
    if g is None:
        raise UnsupportedOpError("a convolution whose input is constant but whose weight is not")
    kernel = tuple(w.shape[2:])
    if not transposed:
        return _sliding(g, out, kernel, _pair(stride), _pair(dilation))
    return _transposed(g, out, kernel, _pair(stride), _pair(dilation))


def _transposed(
    g: Geometry, out: Tensor, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> Geometry:
    """Transposed conv: an output sees input taps of one residue class mod s; the jump divides."""
    rf, dims = list(g.rf), [g.dims[0], plain_dim(out.shape[1])]
    for i in range(2):
        axis, jump = single_axis(g.dims[2 + i], i)
        k, s, d = kernel[i], stride[i], dilation[i]
        m = s // math.gcd(d, s)  # taps t and t + m hit input positions one index apart
        span = ((k - 1) // m) * m * d // s  # widest input-index span one output draws from
        rf[axis] += span * jump
        dims.append(spatial_dim(out.shape[2 + i], axis, jump / s))
    return Geometry(tuple(dims), (rf[0], rf[1]))


@rule("max_pool2d_with_indices", "max_pool2d")
def _max_pool(args: tuple, out: Any, geo: GeoFn) -> Any:
    x, kernel = args[0], _pair(args[1])
    stride = _pair(args[2], kernel) if len(args) > 2 else kernel
    dilation = _pair(args[4]) if len(args) > 4 else (1, 1)
    _check_4d(x, "max pooling")
    o = out[0] if isinstance(out, tuple) else out
    g = _sliding(geo(x), o, kernel, stride, dilation)
    return (g, None) if isinstance(out, tuple) else g


@rule("avg_pool2d")
def _avg_pool(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    kernel = _pair(args[1])
    stride = _pair(args[2], kernel) if len(args) > 2 else kernel
    _check_4d(args[0], "average pooling")
    return _sliding(geo(args[0]), out, kernel, stride, (1, 1))


def _resampled(
    g: Geometry, x: Tensor, o: Tensor, grow: Callable[[int, int, float], float]
) -> Geometry:
    """A map resampled from ``n`` to ``m`` positions per axis (adaptive pooling, resizing): the
    jump scales by n / m and the receptive field grows by ``grow(n, m, jump)`` input pixels."""
    rf, dims = list(g.rf), [g.dims[0], g.dims[1]]
    for i in range(2):
        axis, jump = single_axis(g.dims[2 + i], i)
        n, m = x.shape[2 + i], o.shape[2 + i]
        rf[axis] += grow(n, m, jump)
        dims.append(spatial_dim(m, axis, jump * n / m))
    return Geometry(tuple(dims), (rf[0], rf[1]))


def _bins_growth(n: int, m: int, jump: float) -> float:
    if m == 1 and n > 1:
        return math.inf  # one bin holds the whole map: image-level context
    if m == n:
        return 0.0
    # PyTorch bins: [floor(i n / m), ceil((i + 1) n / m))
    widest = max(-(-(j + 1) * n // m) - (j * n // m) for j in range(m))
    return (widest - 1) * jump


@rule("_adaptive_avg_pool2d", "adaptive_max_pool2d")
def _adaptive_pool(args: tuple, out: Any, geo: GeoFn) -> Any:
    x, o = args[0], out[0] if isinstance(out, tuple) else out
    _check_4d(x, "adaptive pooling")
    g_out = _resampled(geo(x), x, o, _bins_growth)
    return (g_out, None) if isinstance(out, tuple) else g_out


_INTERP_TAPS = {"nearest": 1, "bilinear": 2, "bicubic": 4}


def _upsample(taps: int) -> Rule:
    def grow(n: int, m: int, jump: float) -> float:
        # same size: each output copies one input (align_corners or not)
        return 0.0 if n == m else (min(taps, n) - 1) * jump

    def fn(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
        _check_4d(args[0], "interpolation")
        return _resampled(geo(args[0]), args[0], out, grow)

    return fn


for _name in ("upsample_nearest2d", "_upsample_nearest_exact2d"):
    RULES[_name] = _upsample(_INTERP_TAPS["nearest"])
# (antialiased resizing has a scale-dependent support: no rule, so it raises.)
RULES["upsample_bilinear2d"] = _upsample(_INTERP_TAPS["bilinear"])
RULES["upsample_bicubic2d"] = _upsample(_INTERP_TAPS["bicubic"])
