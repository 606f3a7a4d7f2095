"""Rules for layout, reduction, normalisation and matmul ops: the table ``LAYOUT_RULES``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from segkit.analysis.geometry import (
    Dim,
    Geometry,
    UnsupportedOpError,
    axes_of,
    dim_size,
    is_spatial,
    merge,
    plain_dim,
    reshape_dims,
    spatial_dim,
    with_global,
)
from segkit.analysis.rules import GeoFn, Rule, pointwise, registrar

LAYOUT_RULES: dict[str, Rule] = {}
rule = registrar(LAYOUT_RULES)


def _norm_dims(dims: Any, ndim: int) -> list[int]:
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        return list(range(ndim))
    if isinstance(dims, int):
        dims = [dims]
    return [d % ndim for d in dims]


@rule("view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "flatten", "unflatten")
def _view(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    g = geo(args[0])
    return Geometry(reshape_dims(g.dims, out.shape), g.rf)


@rule("permute")
def _permute(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    g = geo(args[0])
    order = _norm_dims(args[1], len(g.dims))
    return Geometry(tuple(g.dims[i] for i in order), g.rf)


@rule("transpose", "t")
def _transpose(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    g = geo(args[0])
    d0, d1 = (args[1], args[2]) if len(args) > 2 else (0, 1)
    dims = list(g.dims)
    d0, d1 = d0 % len(dims), d1 % len(dims)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Geometry(tuple(dims), g.rf)


@rule("expand")
def _expand(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    g, x = geo(args[0]), args[0]
    lead = out.dim() - x.dim()
    dims = [plain_dim(out.shape[i]) for i in range(lead)]
    for i, d in enumerate(g.dims):
        # A broadcast copy of a size-1 dim carries no position.
        dims.append(d if x.shape[i] == out.shape[lead + i] else plain_dim(out.shape[lead + i]))
    return Geometry(tuple(dims), g.rf)


def _resized(dim: Dim, size: int, step: int) -> Dim:
    """A dim cut to ``size`` entries taken every ``step`` (slicing, padding, splitting)."""
    if size == dim_size(dim) and step == 1:
        return dim
    if not is_spatial(dim):
        return plain_dim(size)
    if len(dim) != 1:
        raise UnsupportedOpError(f"slicing a dim made of several spatial pieces {dim}")
    return spatial_dim(size, dim[0].axis, dim[0].jump * step)


@rule("slice")
def _slice(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    g = geo(args[0])
    d = (args[1] if len(args) > 1 else 0) % len(g.dims)
    step = args[4] if len(args) > 4 else 1
    dims = list(g.dims)
    dims[d] = _resized(dims[d], out.shape[d], step)
    return Geometry(tuple(dims), g.rf)


@rule("select")
def _select(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    g = geo(args[0])
    d = args[1] % len(g.dims)
    return Geometry(g.dims[:d] + g.dims[d + 1 :], g.rf)


@rule("split", "split_with_sizes", "unbind", "chunk")
def _split(args: tuple, out: Sequence[Tensor], geo: GeoFn) -> list[Geometry]:
    g, x = geo(args[0]), args[0]
    d = (args[2] if len(args) > 2 else 0) % x.dim()
    if out and out[0].dim() < x.dim():  # unbind drops the dim
        return [Geometry(g.dims[:d] + g.dims[d + 1 :], g.rf) for _ in out]
    results = []
    for o in out:
        dims = list(g.dims)
        dims[d] = _resized(dims[d], o.shape[d], 1)
        results.append(Geometry(tuple(dims), g.rf))
    return results


@rule("cat", "stack")
def _cat(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    tensors = [t for t in args[0] if geo(t) is not None]
    d = (args[1] if len(args) > 1 else 0) % out.dim()
    stacking = out.dim() > tensors[0].dim()
    geoms, shapes = [], []
    for t in tensors:
        g = geo(t)
        if stacking:
            g = Geometry(g.dims[:d] + ((),) + g.dims[d:], g.rf)
            shape = list(t.shape[:d]) + [1] + list(t.shape[d:])
        else:
            if is_spatial(g.dims[d]):
                raise UnsupportedOpError("concatenation along a spatial dim")
            shape = list(t.shape)
        shape[d] = out.shape[d]
        geoms.append(Geometry(g.dims[:d] + (plain_dim(out.shape[d]),) + g.dims[d + 1 :], g.rf))
        shapes.append(shape)
    return merge(geoms, shapes, out.shape)


@rule("constant_pad_nd", "reflection_pad2d", "replication_pad2d", "reflection_pad1d")
def _pad(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    g = geo(args[0])
    dims = list(g.dims)
    for d in range(len(dims)):
        if out.shape[d] != args[0].shape[d]:
            if not dims[d] and d >= len(dims) - 2:
                dims[d] = spatial_dim(out.shape[d], d - (len(dims) - 2), 0.0)
            else:
                dims[d] = _resized(dims[d], out.shape[d], 1)
    return Geometry(tuple(dims), g.rf)


def _reduce(g: Geometry, reduced: Sequence[int], keepdim: bool) -> Geometry:
    """Every output of a reduction over ``reduced`` dims sees all their positions."""
    out = with_global(g, sorted(axes_of([g.dims[d] for d in reduced])))
    dims = [
        () if d in reduced else dim for d, dim in enumerate(g.dims) if keepdim or d not in reduced
    ]
    return Geometry(tuple(dims), out.rf)


@rule("mean", "sum", "amax", "amin", "var", "std", "max", "min", "var_mean", "logsumexp")
def _reduction(args: tuple, out: Any, geo: GeoFn) -> Any:
    g, x = geo(args[0]), args[0]
    dims = _norm_dims(
        args[1] if len(args) > 1 and not isinstance(args[1], Tensor) else None, x.dim()
    )
    first = out[0] if isinstance(out, tuple) else out
    if isinstance(args[1] if len(args) > 1 else None, Tensor):
        return pointwise(args, first, geo)  # max(a, b) is elementwise
    result = _reduce(g, dims, keepdim=first.dim() == x.dim())
    return tuple(result for _ in out) if isinstance(out, tuple) else result


@rule("_softmax", "_log_softmax")
def _softmax(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    g = geo(args[0])
    return with_global(g, sorted(axes_of([g.dims[args[1] % len(g.dims)]])))


@rule("native_layer_norm")
def _layer_norm(args: tuple, out: tuple, geo: GeoFn) -> tuple:
    g = geo(args[0])
    k = len(args[1])
    return (with_global(g, sorted(axes_of(g.dims[len(g.dims) - k :]))), None, None)


@rule("native_group_norm")
def _group_norm(args: tuple, out: tuple, geo: GeoFn) -> tuple:
    g = geo(args[0])  # statistics over H x W: every output sees the whole map
    return (with_global(g, sorted(axes_of(g.dims[2:]))), None, None)


@rule("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training")
def _batch_norm(args: tuple, out: tuple, geo: GeoFn) -> tuple:
    g = geo(args[0])
    # `training` is the first bool argument (index 5, or 3 for the `no_stats` overload); the
    # `_no_training` op has none.
    training = next((a for a in args[3:6] if isinstance(a, bool)), False)
    if training:  # batch statistics mix all positions (train mode)
        g = with_global(g, sorted(axes_of(g.dims)))
    return (g,) + (None,) * (len(out) - 1)


def _operand(t: Tensor, geo: GeoFn) -> Geometry:
    g = geo(t)
    return g if g is not None else Geometry(tuple(plain_dim(s) for s in t.shape), (1.0, 1.0))


def _matmul(a: Tensor, b: Tensor, geo: GeoFn, out: Tensor) -> Geometry:
    """(..., m, k) @ (..., k, n): the contracted k dims see all their positions."""
    ga, gb = _operand(a, geo), _operand(b, geo)
    seen = axes_of([ga.dims[-1], gb.dims[-2]])
    batch_a = Geometry(ga.dims[:-2] + ((), ()), ga.rf)
    batch_b = Geometry(gb.dims[:-2] + ((), ()), gb.rf)
    shape_a, shape_b = list(a.shape[:-2]) + [1, 1], list(b.shape[:-2]) + [1, 1]
    base = merge([batch_a, batch_b], [shape_a, shape_b], list(out.shape[:-2]) + [1, 1])
    dims = base.dims[:-2] + (ga.dims[-2], gb.dims[-1])
    return with_global(Geometry(dims, base.rf), sorted(seen))


@rule("mm", "bmm")
def _mm(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    return _matmul(args[0], args[1], geo, out)


@rule("addmm", "baddbmm")
def _addmm(args: tuple, out: Tensor, geo: GeoFn) -> Geometry:
    g = _matmul(args[1], args[2], geo, out)
    if geo(args[0]) is None:
        return g
    return merge([g, geo(args[0])], [out.shape, args[0].shape], out.shape)


@rule("native_dropout")
def _dropout(args: tuple, out: tuple, geo: GeoFn) -> tuple:
    return (geo(args[0]), None)  # train-mode dropout: an elementwise mask
