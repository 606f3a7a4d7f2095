"""Python arguments -> config keys, for the one-line message of a user error.

The library (``segkit.models``, ``segkit.backbones``, ``segkit.analysis``, ``segkit.checks``) names
the Python arguments its caller passed: ``fcn_variant=32s predicts at stride 32 ...; use
fcn_variant=8s or output_stride=32``. A command-line user set config keys instead, so
``tasks.cli.run_task`` rewrites each argument the message names (``name=`` or ``name must``) into
its key (``model.fcn_variant=8s``), and ``None`` / ``True`` / ``False`` after it into YAML's
``null`` / ``true`` / ``false``. Standard library only: the command line imports this module
before it knows whether torch is needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Builder argument -> config key (``configs/model/*.yaml``, ``configs/backbone/*.yaml``,
#: ``configs/analyze.yaml``: each key is the argument of the builder or function that reads it).
KEYS: dict[str, str] = {
    **{
        name: f"model.{name}"
        for name in (
            "backbone", "num_classes", "output_stride", "aux", "fcn_variant", "aspp_rates",
            "aspp_channels", "separable", "context", "low_level_channels", "decoder_channels",
            "dropout",
        )
    },
    **{
        name: f"backbone.{name}"
        for name in (
            "weights", "width_mult", "linear_bottleneck", "multi_grid", "atrous_impl",
            "final_conv", "middle_blocks", "act_between", "model_name", "out_indices",
        )
    },
}  # fmt: skip
#: ``segkit.analysis.analyze_model``'s arguments are the ``analyze.*`` keys of the same name.
ANALYZE_KEYS: dict[str, str] = {
    name: f"analyze.{name}"
    for name in (
        "input_size", "latency_runs", "latency_budget_s", "erf_input_size", "erf_samples",
        "trace_meta", "erf_calibrate_bn",
    )
}  # fmt: skip
#: Where ``output_stride`` comes from when a task re-dilates a loaded checkpoint.
CHECKPOINT_OUTPUT_STRIDE: dict[str, str] = {
    "evaluate": "eval.output_stride",
    "predict": "predict.output_stride",
    "export": "export.output_stride",
    "analyze": "analyze.output_stride",
}
_YAML = {"None": "null", "True": "true", "False": "false"}


def keys_for(task: str, cfg: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The argument -> key table of ``task`` (``cfg``: whether it loads a checkpoint)."""
    keys = dict(KEYS)
    if task == "analyze":
        keys.update(ANALYZE_KEYS)
    if task in CHECKPOINT_OUTPUT_STRIDE and (task != "analyze" or (cfg or {}).get("ckpt_path")):
        keys["output_stride"] = CHECKPOINT_OUTPUT_STRIDE[task]
    return keys


def config_message(message: str, task: str, cfg: Mapping[str, Any] | None = None) -> str:
    """``message`` with the Python arguments it names written as ``task``'s config keys."""
    keys = keys_for(task, cfg)
    pattern = re.compile(
        r"(?<![\w.])(" + "|".join(map(re.escape, keys)) + r")(=(None|True|False)\b|=| must\b)"
    )

    def to_key(match: re.Match[str]) -> str:
        value = match.group(3)
        tail = f"={_YAML[value]}" if value else match.group(2)
        return keys[match.group(1)] + tail

    return pattern.sub(to_key, message)


__all__ = ["KEYS", "config_message", "keys_for"]
