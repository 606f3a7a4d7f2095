"""``analyze`` task: build (or load) one model, print its stage table and summary, write JSON + PNG.

Run folder (``paths.output_dir``): ``config.yaml``, ``analysis.json`` (``JSON_KEYS``: the keys of
``segkit.analysis.Analysis.to_json`` plus ``model``, ``backbone`` and ``ckpt_path``), ``erf.png``
(and ``erf_init.png`` for a checkpoint). ``analyze.json=PATH`` writes one more copy of the JSON.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from segkit.analysis import (
    ERF,
    analyze_model,
    effective_receptive_field,
    format_summary,
    format_table,
    save_heatmap,
)
from segkit.analysis.report import EXTRA_KEYS
from segkit.cli.jobs import (
    build_datamodule,
    config_node,
    instantiate_user,
    save_config,
    save_json,
)
from segkit.runs import ANALYSIS_FILE, builder_name
from segkit.tasks.checkpoints import load_segmentor

log = logging.getLogger(__name__)

#: Every key of analysis.json: the issue's schema, ``aspp_rates`` (as run), how the figures were
#: measured (``segkit.analysis.report.EXTRA_KEYS``), ``ckpt_path`` (null for a design), ``erf_init``
#: (only with ``ckpt_path``: the ERF of a freshly initialised model of the same design).
JSON_KEYS: tuple[str, ...] = (
    "model", "backbone", "input_size", "output_stride", "logits_stride", "backbone_rf", "model_rf",
    "params", "backbone_params", "macs", "backbone_macs", "latency_ms", "peak_mem_mb", "stages",
    "aspp_rates", "erf", *EXTRA_KEYS, "ckpt_path", "erf_init",
)  # fmt: skip


def analyze(cfg: DictConfig) -> dict[str, Any]:
    """Analyse ``cfg.model`` (or the checkpoint's model) and return the analysis JSON dict."""
    opts = cfg.analyze
    if opts.get("threads"):
        torch.set_num_threads(int(opts.threads))
    model, model_cfg = build_model(cfg)
    calibrate = bool(opts.get("erf_calibrate_bn", True))
    with config_node("analyze"):  # analyze_model's arguments are its keys
        analysis = analyze_model(
            model,
            input_size=_size(opts.input_size),
            latency_runs=int(opts.latency_runs),
            latency_budget_s=_optional_float(opts.get("latency_budget_s")),
            erf=bool(opts.erf),
            erf_input_size=_erf_size(opts),
            erf_samples=int(opts.erf_samples),
            seed=int(cfg.seed),
            trace_meta=None if opts.get("trace_meta") is None else bool(opts.trace_meta),
            # a checkpoint keeps its trained BN statistics
            erf_calibrate_bn=calibrate and not cfg.get("ckpt_path"),
        )
    if cfg.get("ckpt_path") and opts.erf and opts.get("erf_init", True):
        analysis.erf_init = _erf_at_init(cfg, model_cfg, model, calibrate)
    names = _names(model_cfg)
    title = f"{names['model']} on {names['backbone']}"
    print(format_table(analysis))
    print(format_summary(analysis, title=title))
    result = {**names, "ckpt_path": cfg.get("ckpt_path"), **analysis.to_json()}
    _write(cfg, analysis, result, title)
    return result


def build_model(cfg: DictConfig) -> tuple[nn.Module, DictConfig]:
    """The model of ``cfg.model``, or of the checkpoint ``cfg.ckpt_path`` with its weights.

    Returns the model and the model config it was built from (for names and fresh copies).
    """
    if not cfg.get("ckpt_path"):
        if cfg.analyze.get("output_stride"):
            raise ValueError(
                "analyze.output_stride re-dilates a loaded checkpoint; without ckpt_path set "
                "model.output_stride=8|16|32 instead"
            )
        if cfg.get("data") is not None and cfg.data.get("num_classes") is None:
            build_datamodule(cfg)  # the dataset's count, into cfg
        return instantiate_user(cfg.model), cfg.model
    model, stored = load_segmentor(cfg.ckpt_path, output_stride=cfg.analyze.get("output_stride"))
    return model, OmegaConf.create(stored["model"])


def _erf_at_init(
    cfg: DictConfig, model_cfg: DictConfig, trained: nn.Module, calibrate: bool
) -> ERF:
    """ERF of a freshly initialised model of the checkpoint's design (same output stride)."""
    torch.manual_seed(int(cfg.seed))
    fresh = instantiate_user(model_cfg)
    if hasattr(trained, "output_stride") and fresh.output_stride != trained.output_stride:
        fresh.set_output_stride(trained.output_stride)
    opts = cfg.analyze
    return effective_receptive_field(
        fresh,
        input_size=_erf_size(opts),
        samples=int(opts.erf_samples),
        seed=int(cfg.seed),
        calibrate_bn=calibrate,
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _size(value: Any) -> int | list[int]:
    """A size key as ``analyze_model`` takes it: a side N, or [H, W] (checked there)."""
    return list(value) if isinstance(value, ListConfig) else value


def _erf_size(opts: DictConfig) -> int | list[int]:
    """``analyze.erf_input_size``, or ``analyze.input_size`` when it is null."""
    return _size(opts.erf_input_size if opts.get("erf_input_size") else opts.input_size)


def _names(model_cfg: DictConfig) -> dict[str, str]:
    """``model``: builder name (fcn, deeplabv3, deeplabv3plus); ``backbone``: builder name, or the
    timm model name for the timm adapter."""
    model = builder_name(model_cfg) or "?"
    bb = model_cfg.get("backbone")
    if isinstance(bb, str):
        return {"model": model, "backbone": bb}
    backbone = builder_name(bb) or "?"
    if bb is not None and bb.get("model_name"):
        backbone = f"{backbone}:{bb.model_name}"
    return {"model": model, "backbone": backbone}


def _write(cfg: DictConfig, analysis: Any, result: dict[str, Any], title: str) -> None:
    out_dir = Path(cfg.paths.output_dir)
    save_config(cfg, out_dir)
    save_json(result, out_dir / ANALYSIS_FILE)
    if cfg.analyze.get("json"):
        save_json(result, Path(cfg.analyze.json))
        log.info("analysis JSON written to %s", cfg.analyze.json)
    for key, erf in (("erf", analysis.erf), ("erf_init", analysis.erf_init)):
        if erf is not None:
            save_heatmap(erf, out_dir / f"{key}.png", title=f"{title}: {key}")
    log.info("run folder: %s", out_dir)


__all__ = ["JSON_KEYS", "analyze", "build_model"]
