"""Spatial geometry carried by every tensor during a receptive-field trace.

A tensor dimension is described as a product of *atoms*, major to minor. An atom is either
non-spatial (batch, channels) or a piece of one input axis (0 = height, 1 = width) with a *jump*:
the distance, in input pixels, between two neighbouring indices of that atom. A plain feature map
``(B, C, H, W)`` at stride 16 is ``[(B,-)], [(C,-)], [(H, axis 0, 16)], [(W, axis 1, 16)]``; the
space-to-batch form of atrous convolution moves the sampling phases into the batch dimension,
``[(B,-), (r, axis 0, 16), (r, axis 1, 16)], [(C,-)], [(H/r, axis 0, 16 r)], [(W/r, axis 1, 16 r)]``,
which is why both implementations of atrous conv give the same receptive field here.

Size-1 atoms carry no position and are dropped; a size-1 spatial dim (a globally pooled map) therefore
has no atoms, and its later upsampling gets jump 0 ("unknown") until it is merged with a real map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NUM_AXES = 2  # height, width


class UnsupportedOpError(RuntimeError):
    """An operation whose effect on the receptive field has no rule (never guessed silently)."""


@dataclass(frozen=True)
class Atom:
    size: int
    axis: int | None  # None: batch/channel-like; 0: height; 1: width
    jump: float = 1.0  # input pixels between neighbouring indices; 0 = unknown (after global pool)


Dim = tuple[Atom, ...]


@dataclass(frozen=True)
class Geometry:
    """Per-tensor state: its dims as atoms and its receptive field per axis (``inf`` = global)."""

    dims: tuple[Dim, ...]
    rf: tuple[float, float]

    def axis_jump(self, axis: int) -> float | None:
        """Finest jump of ``axis`` over all dims: the tensor's real sampling step on that axis."""
        jumps = [a.jump for d in self.dims for a in d if a.axis == axis and a.jump > 0]
        return min(jumps) if jumps else None


def image_geometry(shape: Sequence[int]) -> Geometry:
    """Geometry of the network input ``(B, C, H, W)``: stride 1, receptive field 1."""
    if len(shape) != 4:
        raise ValueError(
            f"receptive-field tracing needs a (B, C, H, W) input, got shape {tuple(shape)}"
        )
    b, c, h, w = shape
    dims = (_plain(b), _plain(c), _spatial(h, 0, 1.0), _spatial(w, 1, 1.0))
    return Geometry(dims, (1.0, 1.0))


def _plain(size: int) -> Dim:
    return (Atom(size, None),) if size > 1 else ()


def _spatial(size: int, axis: int, jump: float) -> Dim:
    return (Atom(size, axis, jump),) if size > 1 else ()


def plain_dim(size: int) -> Dim:
    """A non-spatial dim (channels, batch) of ``size``."""
    return _plain(size)


def spatial_dim(size: int, axis: int, jump: float) -> Dim:
    """A dim that is one input axis sampled every ``jump`` pixels."""
    return _spatial(size, axis, jump)


def dim_size(dim: Dim) -> int:
    return math.prod(a.size for a in dim)


def is_spatial(dim: Dim) -> bool:
    return any(a.axis is not None for a in dim)


def single_axis(dim: Dim, position_axis: int) -> tuple[int, float]:
    """``(axis, jump)`` of a dim a conv/pool slides over; it must be one spatial atom.

    An empty dim (size 1) has no position: the axis is taken from the dim's position (2 -> height,
    3 -> width) and the jump is unknown (0).
    """
    if not dim:
        return position_axis, 0.0
    if len(dim) != 1 or dim[0].axis is None:
        raise UnsupportedOpError(
            f"a spatial op slides over a dim made of {dim}; only a single spatial axis is supported"
        )
    return dim[0].axis, dim[0].jump


def normalize_dim(atoms: Sequence[Atom]) -> Dim:
    """Drop size-1 atoms and merge neighbours that form one contiguous index range."""
    out: list[Atom] = []
    for a in atoms:
        if a.size == 1:
            continue
        if out:
            hi = out[-1]
            if hi.axis is None and a.axis is None:
                out[-1] = Atom(hi.size * a.size, None)
                continue
            # hi index * (lo size) + lo index is one contiguous range when the jumps line up.
            if hi.axis == a.axis and hi.axis is not None and _close(hi.jump, a.jump * a.size):
                out[-1] = Atom(hi.size * a.size, a.axis, a.jump)
                continue
        out.append(a)
    return tuple(out)


def _close(x: float, y: float) -> bool:
    return abs(x - y) <= 1e-6 * max(1.0, abs(x), abs(y))


def reshape_dims(dims: Sequence[Dim], shape: Sequence[int]) -> tuple[Dim, ...]:
    """Atoms of a tensor viewed as ``shape`` (row-major regrouping, splitting atoms if needed)."""
    queue = [a for d in dims for a in d]
    out: list[Dim] = []
    for size in shape:
        need, taken = int(size), []
        while need > 1:
            if not queue:
                raise UnsupportedOpError(f"cannot regroup dims {dims} into shape {tuple(shape)}")
            atom = queue.pop(0)
            if need % atom.size == 0:
                taken.append(atom)
                need //= atom.size
            elif atom.size % need == 0:
                minor = atom.size // need
                taken.append(Atom(need, atom.axis, atom.jump * minor))
                queue.insert(0, Atom(minor, atom.axis, atom.jump))
                need = 1
            else:
                raise UnsupportedOpError(f"cannot regroup dims {dims} into shape {tuple(shape)}")
        out.append(normalize_dim(taken))
    if queue:
        raise UnsupportedOpError(f"cannot regroup dims {dims} into shape {tuple(shape)}")
    return tuple(out)


def merge(
    geoms: Sequence[Geometry], shapes: Sequence[Sequence[int]], out_shape: Sequence[int]
) -> Geometry:
    """Geometry of an elementwise/broadcast result: receptive field = max over inputs."""
    rf = tuple(max(g.rf[a] for g in geoms) for a in range(NUM_AXES))
    n = len(out_shape)
    dims: list[Dim] = []
    for i, size in enumerate(out_shape):
        candidates = []
        for g, shape in zip(geoms, shapes, strict=True):
            j = i - (n - len(shape))  # broadcasting aligns dims from the right
            if j >= 0 and shape[j] == size and g.dims[j]:
                candidates.append(g.dims[j])
        dims.append(_merge_dim(candidates, size))
    return Geometry(tuple(dims), rf)  # type: ignore[arg-type]


def _merge_dim(candidates: Sequence[Dim], size: int) -> Dim:
    spatial = [d for d in candidates if is_spatial(d)]
    if not spatial:
        return _plain(size)
    layout = [(a.size, a.axis) for a in spatial[0]]
    for d in spatial[1:]:
        if [(a.size, a.axis) for a in d] != layout:
            raise UnsupportedOpError(f"combining tensors with different spatial layouts {spatial}")
    # Grids may differ slightly: a map bilinearly resized *to* another's size (DeepLabv3+ decoder:
    # 33 -> 129 gives jump 16 * 33 / 129 = 4.09 next to the real stride-4 map). The result lives on
    # the finer, real grid, so keep the smallest known jump (0 = unknown is ignored). Later layers
    # then grow the RF by that jump: an underestimate of at most (k - 1) * d * 0.09 px per layer
    # for the resized branch.
    return tuple(
        Atom(s, ax, min((d[k].jump for d in spatial if d[k].jump > 0), default=0.0))
        for k, (s, ax) in enumerate(layout)
    )


def with_global(geom: Geometry, axes: Sequence[int]) -> Geometry:
    """The same tensor layout after every output unit has seen the whole of ``axes``."""
    rf = tuple(math.inf if a in axes else geom.rf[a] for a in range(NUM_AXES))
    return Geometry(geom.dims, rf)  # type: ignore[arg-type]


def axes_of(dims: Sequence[Dim]) -> set[int]:
    return {a.axis for d in dims for a in d if a.axis is not None}
