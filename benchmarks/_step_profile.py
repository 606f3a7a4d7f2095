"""Where a training step's time goes: ``torch.profiler`` over one step, each op's own (self) CPU
time put in one category by the outermost op of its call chain that names one:

- ``conv dense`` / ``conv depthwise``: ``aten::convolution`` and ``aten::convolution_backward``
  (and what they call, autocast's weight casts included), depthwise when the weight has one input
  channel per group (the shapes the profiler records), as ``segkit.analysis.cost.op_kind`` decides;
- ``batch norm``, ``upsample`` (bilinear, forward and backward), ``activation`` (ReLU / ReLU6 and
  their gradients), ``loss`` (log-softmax + NLL), ``optimizer`` (AdamW's step and zero_grad);
- ``other``: the rest (additions of the skip paths, concatenation, pooling, casts outside the
  convolutions, autograd's bookkeeping).

With the multiply-adds of each kind (``MacCounter``) it gives the GFLOP/s each kind achieves.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.profiler import ProfilerActivity, profile

CATEGORIES = ("conv dense", "conv depthwise", "batch norm", "upsample", "activation", "loss",
              "optimizer", "other")  # fmt: skip
_BY_NAME = (  # (substring of the op or autograd-node name, category), first match wins
    ("Optimizer.", "optimizer"),
    ("batch_norm", "batch norm"),
    ("BatchNorm", "batch norm"),
    ("upsample", "upsample"),
    ("Upsample", "upsample"),
    ("hardtanh", "activation"),
    ("Hardtanh", "activation"),
    ("relu", "activation"),
    ("Relu", "activation"),
    ("threshold_backward", "activation"),
    ("cross_entropy", "loss"),
    ("nll_loss", "loss"),
    ("NllLoss", "loss"),
    ("log_softmax", "loss"),
    ("LogSoftmax", "loss"),
)


def _conv_category(event) -> str | None:  # noqa: ANN001
    """Dense or depthwise for a convolution event with recorded shapes, else None."""
    name = event.name
    if name in ("aten::conv2d", "aten::convolution", "aten::_convolution"):
        x, w = event.input_shapes[0], event.input_shapes[1]
    elif name == "aten::convolution_backward":
        x, w = event.input_shapes[1], event.input_shapes[2]
    else:
        return None
    if len(x) != 4 or len(w) != 4:
        return None
    return "conv depthwise" if w[1] == 1 and x[1] > 1 else "conv dense"


def category(event) -> str | None:  # noqa: ANN001
    """The category an event names itself, or None (then its caller's, else ``other``)."""
    conv = _conv_category(event)
    if conv is not None:
        return conv
    return next((cat for key, cat in _BY_NAME if key in event.name), None)


def breakdown(events) -> dict[str, float]:  # noqa: ANN001
    """Seconds of self CPU time per category over ``events`` (a profiler's ``events()``)."""
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    for event in events:
        found, node = None, event
        while node is not None:  # the outermost named category wins
            found = category(node) or found
            node = node.cpu_parent
        seconds[found or "other"] += event.self_cpu_time_total / 1e6
    return seconds


def profile_step(step: Callable[[], float]) -> dict[str, object]:
    """One call of ``step`` under the profiler: ``seconds`` per category, their sum
    (``profiled_total``, the profiler's own overhead included: read shares, not times) and the
    step's wall time while profiled (``profiled_wall``)."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        wall = step()
    seconds = breakdown(prof.events())
    return {"seconds": seconds, "profiled_total": sum(seconds.values()), "profiled_wall": wall}


__all__ = ["CATEGORIES", "breakdown", "category", "profile_step"]
