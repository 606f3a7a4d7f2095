"""Resume policy: what a resume may change. A checkpoint fixes the model (its weights must fit),
the optimizer, the LR schedule (warm-up, power, length) and the random streams; a resume that asks
for other values is refused before the trainer is built, naming each key."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from segkit.training.checkpoint_file import checkpoint_config, read_checkpoint

log = logging.getLogger(__name__)

#: Config sections whose values decide the network's shape; resuming across them cannot work.
MODEL_KEYS: tuple[str, ...] = ("model", "backbone", "data.num_classes")
#: Keys that may differ on resume: they do not change the architecture.
IGNORED_KEYS: tuple[str, ...] = ("backbone.weights", "model.backbone.weights")


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {"a.b.c": leaf}; lists and scalars are leaves."""
    if not isinstance(tree, Mapping):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _select(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def config_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, keys: tuple[str, ...] = MODEL_KEYS
) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (saved value, current value)} for every differing leaf under ``keys``."""
    diffs: dict[str, tuple[Any, Any]] = {}
    for section in keys:
        old = flatten(_select(saved, section), section)
        new = flatten(_select(current, section), section)
        for key in sorted(set(old) | set(new)):
            if key in IGNORED_KEYS or old.get(key) == new.get(key):
                continue
            diffs[key] = (old.get(key, "<absent>"), new.get(key, "<absent>"))
    # model.backbone is the backbone section interpolated: report each difference once.
    return {
        k: v
        for k, v in diffs.items()
        if not (k.startswith("model.backbone.") and diffs.get(k.removeprefix("model.")) == v)
    }


def check_resume_compatible(
    ckpt_path: str | Path,
    current_cfg: Mapping[str, Any],
    *,
    checkpoint: Mapping[str, Any] | None = None,
    max_listed: int = 12,
) -> None:
    """ValueError naming the differing keys if ``ckpt_path`` was trained with another model config
    (``checkpoint``: its already loaded content, to avoid reading the file again)."""
    ckpt = read_checkpoint(ckpt_path) if checkpoint is None else checkpoint
    saved = checkpoint_config(ckpt, path=ckpt_path)
    diffs = config_differences(saved, current_cfg)
    if not diffs:
        return
    lines = [f"  {k}: checkpoint={old!r} vs now={new!r}" for k, (old, new) in diffs.items()]
    more = len(lines) - max_listed
    listed = "\n".join(lines[:max_listed]) + (f"\n  ... and {more} more" if more > 0 else "")
    raise ValueError(
        f"ckpt_path={ckpt_path} was trained with a different model config; these keys differ:\n"
        f"{listed}\nUse the same model/backbone/data.num_classes overrides as the run that wrote "
        "it (its config is saved in the run folder), or start without ckpt_path."
    )


#: Settings a resume takes from the checkpoint whatever the config says: the optimizer's state
#: holds its class, per-group LRs, weight decay and hyperparameters (every ``module.optimizer.*``
#: key: momentum, betas, ...) and which parameters form each group; the scheduler's state holds its
#: class, warm-up, power and horizon (``trainer.max_steps`` / ``max_epochs``: torch's
#: ``PolynomialLR`` restores its ``total_iters`` as saved, and moving it would mean rewriting its
#: private state); the random streams (``seed``) are restored.
RESUME_FIXED_KEYS: tuple[str, ...] = (
    "seed",
    *(f"module.{k}" for k in ("lr", "weight_decay", "backbone_lr_mult", "no_decay_depthwise")),
    *(
        f"module.scheduler.{k}"
        for k in ("_target_", "power", "warmup_steps", "warmup_start_factor")
    ),
    "trainer.max_steps",
    "trainer.max_epochs",
)


def _section(cfg: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = cfg.get(part) if isinstance(cfg, dict) else None
    return cfg


def check_resume_settings(ckpt_path: str, ckpt: dict[str, Any], current: dict[str, Any]) -> None:
    """ValueError naming every setting the config changes that a resume cannot apply
    (:data:`RESUME_FIXED_KEYS`, ``module.optimizer.*``): it would be recorded in ``config.yaml``
    while the run trains with the checkpoint's (another optimizer class fails to load its state)."""
    saved = ckpt.get("hyper_parameters", {}).get("cfg", {})
    diffs = {
        k: v
        for k, v in config_differences(saved, current, keys=("seed", "module", "trainer")).items()
        if k in RESUME_FIXED_KEYS or k.startswith("module.optimizer.")
    }
    unknown = sorted(
        k
        for k, (old, _) in diffs.items()
        if old == "<absent>" and not isinstance(_section(saved, k.rsplit(".", 1)[0]), dict)
    )
    if unknown:  # a checkpoint from before the key existed: what it trained with is not known
        log.warning("resuming %s, whose config has no %s: the checkpoint's state is used",
                    ckpt_path, ", ".join(unknown))  # fmt: skip
    diffs = {k: v for k, v in diffs.items() if k not in unknown}
    if diffs:
        listed = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in diffs.items())
        raise ValueError(
            f"a resume cannot apply {listed} (ckpt_path={ckpt_path} restores the optimizer, the "
            "LR schedule (warm-up, power and length) and the random streams it was trained with): "
            "drop these overrides to resume, or start a new run without ckpt_path to train with them"
        )


def check_steps_left(path: str, ckpt: dict[str, Any], trainer_cfg: dict[str, Any]) -> None:
    """ValueError when a resume has no step left: Lightning stops at once and the run would end
    "finished" having trained nothing. (A requeued SLURM job that had already reached the end is
    not asked: it only finishes.)"""
    step, max_steps = int(ckpt.get("global_step", 0)), trainer_cfg.get("max_steps", -1)
    if max_steps is not None and int(max_steps) > 0 and step >= int(max_steps):
        raise ValueError(
            f"ckpt_path={path} is at step {step} and trainer.max_steps={max_steps}: nothing "
            "would be trained (the run is finished; to train longer, start a new run with a "
            "larger trainer.max_steps)"
        )


__all__ = [
    "IGNORED_KEYS",
    "MODEL_KEYS",
    "RESUME_FIXED_KEYS",
    "check_resume_compatible",
    "check_resume_settings",
    "check_steps_left",
    "config_differences",
    "flatten",
]
