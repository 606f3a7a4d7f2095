"""One instrumented forward pass: receptive field, strides, multiply-adds and activation memory.

``trace(model, x)`` runs ``model(x)`` under a ``TorchDispatchMode`` that sees every aten op the
model really executes -- whatever its Python code (residual adds, concatenation, pooling branches,
space-to-batch atrous reshapes, timm internals) -- and propagates a ``Geometry`` (see
``geometry.py``) from the input to every tensor derived from it. Nothing is read from a per-model
table. The same pass counts multiply-adds (``cost.op_macs``) and the live bytes of tensors the
forward allocates (peak activation memory).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakTensorKeyDictionary

from segkit.analysis.cost import op_macs
from segkit.analysis.geometry import Geometry, UnsupportedOpError, image_geometry
from segkit.analysis.rules import RULES, find_rule, tensors_in
from segkit.analysis.rules_layout import LAYOUT_RULES

#: Where the tracer looks an op up: the spatial/elementwise rules, then the layout rules.
RULE_TABLES = (RULES, LAYOUT_RULES)


@dataclass(frozen=True)
class ConvEvent:
    """One executed convolution: where, and its dilation measured on the input's real grid."""

    index: int  # op counter when it ran
    module: str
    out_channels: int
    dilation: float  # kernel tap spacing / the input's finest stride; 2 for space-to-batch r=2
    transposed: bool
    stride: float | None  # jump of its output (height axis)


@dataclass(frozen=True)
class WatchedTensor:
    """A watched tensor (module output or model output)."""

    name: str
    shape: tuple[int, ...]
    geometry: Geometry
    index: int  # op counter when the tensor was produced


@dataclass
class TraceResult:
    outputs: dict[str, WatchedTensor]
    records: list[WatchedTensor]
    convs: list[ConvEvent]
    macs_by_module: dict[str, int]
    peak_activation_bytes: int
    macs: int = field(init=False)

    def __post_init__(self) -> None:
        self.macs = sum(self.macs_by_module.values())

    def macs_under(self, prefix: str) -> int:
        """Multiply-adds of ops run inside module ``prefix`` (a dotted module path)."""
        return sum(
            v for k, v in self.macs_by_module.items() if k == prefix or k.startswith(prefix + ".")
        )


class _Memory:
    """Live bytes of storages created during the forward; views share their base's storage."""

    def __init__(self) -> None:
        self.live: dict[int, list[int]] = {}  # storage ptr -> [bytes, references]
        self.current = 0
        self.peak = 0

    def on_op(self, args: Any, out: Any) -> None:
        seen = {_storage_key(t) for t in tensors_in(args)}
        for t in tensors_in(out):
            key = _storage_key(t)
            if key not in self.live:
                if key in seen:
                    continue  # a view or in-place result of a tensor made elsewhere
                self.live[key] = [t.untyped_storage().nbytes(), 0]
                self.current += self.live[key][0]
                self.peak = max(self.peak, self.current)
            self.live[key][1] += 1
            weakref.finalize(t, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]


def _storage_key(t: Tensor) -> int:
    # The StorageImpl address: shared by views, and defined on the meta device too (data_ptr is 0).
    return t.untyped_storage()._cdata


class _TraceMode(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # TorchDispatchMode otherwise wraps __torch_dispatch__ in torch._disable_dynamo, whose
        # first call imports torch._dynamo (+ inductor): seconds of start-up for a mode that
        # never compiles anything.
        return False

    def __init__(self) -> None:
        super().__init__()
        self.geo: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        self.made_at: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        self.index = 0
        self.stack: list[str] = [""]
        self.convs: list[ConvEvent] = []
        self.macs: dict[str, int] = {}
        self.memory = _Memory()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        args = _positional(func, args, kwargs or {})
        self.index += 1
        module = self.stack[-1]
        macs = op_macs(func, args, out)
        if macs:
            self.macs[module] = self.macs.get(module, 0) + macs
        self.memory.on_op(args, out)
        # Ops returning no tensor (e.g. `.item()`) carry no geometry onward.
        if tensors_in(out) and any(t in self.geo for t in tensors_in(args)):
            self._propagate(func, args, out, module)
        return out

    def _propagate(self, func: Any, args: tuple, out: Any, module: str) -> None:
        fn = find_rule(func, RULE_TABLES)
        if fn is None:
            raise UnsupportedOpError(
                f"no receptive-field rule for {func} (called in module {module or '<root>'}); "
                "add one to segkit/analysis/rules*.py"
            )
        result = fn(args, out, self.geo.get)
        outs = tensors_in(out)
        results = result if isinstance(result, list | tuple) else [result]
        for t, g in zip(outs, results, strict=False):
            if g is not None:
                self.geo[t] = g
                self.made_at[t] = self.index
        if func.overloadpacket.__name__ == "convolution":
            self._conv_event(args, out, module)

    def _conv_event(self, args: tuple, out: Tensor, module: str) -> None:
        g_in, g_out = self.geo[args[0]], self.geo.get(out)
        dil = args[5][0] if isinstance(args[5], list | tuple) else args[5]
        finest = g_in.axis_jump(0)
        slide = g_in.dims[2][0].jump if g_in.dims[2] else None
        eff = dil * slide / finest if finest and slide else float(dil)
        stride = g_out.axis_jump(0) if g_out is not None else None
        self.convs.append(ConvEvent(self.index, module, out.shape[1], eff, bool(args[6]), stride))


def _positional(func: Any, args: tuple, kwargs: dict) -> tuple:
    """Arguments as one positional tuple (schema defaults filled in) so rules index them."""
    if not kwargs:
        return tuple(args)
    full = list(args)
    for arg in func._schema.arguments[len(args) :]:
        full.append(kwargs.get(arg.name, arg.default_value))
    return tuple(full)


def trace(
    model: nn.Module,
    x: Tensor,
    *,
    watch: Mapping[str, nn.Module] | None = None,
    meta: bool = False,
) -> TraceResult:
    """Run ``model(x)`` once (no grad) and trace geometry, multiply-adds and activation memory.

    Args:
        model: any module taking one ``(B, C, H, W)`` tensor; its output may be a tensor, a
            list/tuple or a dict of tensors (e.g. ``Segmentor``'s ``{"out": ...}``).
        x: the input ``(B, C, H, W)``.
        watch: modules whose outputs to record, by name (a list output ``feats`` gives
            ``name.0``, ``name.1``, ...; a dict output ``name.key``).
        meta: run on the ``meta`` device (shapes only, no arithmetic: milliseconds instead of a
            real forward; but the first meta call in a process imports torch._dynamo, ~1 s,
            through torch's Python meta kernels). The model's own parameters are untouched
            (``functional_call`` with meta copies); only models whose control flow reads tensor
            *values* need ``False``.

    Raises:
        UnsupportedOpError: the model runs an op with no receptive-field rule.
    """
    mode = _TraceMode()
    records: list[WatchedTensor] = []
    handles = _install_hooks(model, mode, dict(watch or {}), records)
    # Deterministic mode (e.g. a Trainer(deterministic=True) earlier in the process) makes torch
    # decompose interpolation into index ops that carry no geometry; geometry needs none of it.
    # Only toggled when on: torch.use_deterministic_algorithms imports torch._inductor (seconds).
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if deterministic:
            torch.use_deterministic_algorithms(False)
        state = _meta_state(model) if meta else None
        with torch.no_grad(), mode:
            # a tensor created inside the mode carries the input geometry
            x = torch.empty(x.shape, device="meta") if meta else x.clone()
            mode.geo[x] = image_geometry(x.shape)
            out = model(x) if state is None else functional_call(model, state, (x,))
    finally:
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=warn_only)
        for h in handles:
            h.remove()
    outputs = {r.name: r for r in _records("", out, mode)}
    records.sort(key=lambda r: r.index)
    return TraceResult(outputs, records, mode.convs, mode.macs, mode.memory.peak)


def _meta_state(model: nn.Module) -> dict[str, Tensor]:
    named = [*model.named_parameters(), *model.named_buffers()]
    return {name: torch.empty_like(t, device="meta") for name, t in named}


def _install_hooks(
    model: nn.Module, mode: _TraceMode, watch: dict[str, nn.Module], records: list[WatchedTensor]
) -> list[Any]:
    """Module-path stack for attributing ops, plus output records for watched modules."""
    handles = []
    watched = {id(m): n for n, m in watch.items()}
    for path, module in model.named_modules():

        def pre(_m: nn.Module, _a: Any, path: str = path) -> None:
            mode.stack.append(path)

        def post(m: nn.Module, _a: Any, out: Any) -> None:
            mode.stack.pop()
            if id(m) in watched:
                records.extend(_records(watched[id(m)], out, mode))

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    return handles


def _records(name: str, out: Any, mode: _TraceMode) -> list[WatchedTensor]:
    if isinstance(out, Tensor):
        g = mode.geo.get(out)
        index = mode.made_at.get(out, 0)
        return [] if g is None else [WatchedTensor(name or "out", tuple(out.shape), g, index)]
    if isinstance(out, Mapping):
        items = out.items()
    elif isinstance(out, list | tuple):
        items = enumerate(out)
    else:
        return []
    sep = "." if name else ""
    return [r for k, v in items for r in _records(f"{name}{sep}{k}", v, mode)]
