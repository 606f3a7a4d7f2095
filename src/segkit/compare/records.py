"""Run folders -> comparison records: what ``compare`` reads and how it joins the pieces.

A *run folder* is any folder (searched recursively, so Hydra multirun folders work) holding a
``config.yaml``, ``metrics.json`` or ``analysis.json``, as written by the train, evaluate and analyze
tasks. An evaluation (``metrics.json`` with ``"schema": "segkit.evaluate/..."``) and an analysis of
a checkpoint (``analysis.json`` with ``ckpt_path``) are joined to the training run whose
``checkpoints/`` holds that checkpoint, wherever their own folders are. One ``Record`` = one trained
network at one inference output stride (evaluations at another ``eval.output_stride`` are rows of
their own); analyses without a checkpoint (a design only) are rows of their own too.
Missing or unreadable pieces are noted in ``Record.missing``, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segkit.runs import (
    ANALYSIS_FILE,
    CONFIG_FILE,
    EVALUATE_SCHEMA_PREFIX,
    METRICS_FILE,
    RECORD_FILES,
    builder_name,
    design_name,
)

#: Config keys whose differences between runs are shown (per model / backbone builder).
VARYING_SECTIONS: tuple[str, ...] = ("model", "backbone")
#: ``seed`` is not among them: runs that differ only in their seed are one design, grouped by
#: ``segkit.compare.groups.group_by_seed``.
#: ``trainer.precision`` / ``module.channels_last``: the same design trained with other numerics
#: (bf16-mixed vs 32-true) is another row, never pooled with it as if it were another seed.
VARYING_GLOBAL: tuple[str, ...] = (
    "data.crop_size",
    "trainer.max_steps",
    "trainer.precision",
    "module.channels_last",
)
#: Keys shown elsewhere (design name, OS column) or not a design choice.
NOT_SWITCHES = {"_target_", "_partial_", "backbone", "num_classes", "output_stride", "weights"}
NOT_SWITCHES |= {"fcn_variant"}


@dataclass
class RunFolder:
    """One folder's segkit files, parsed. ``problems``: files that exist but could not be read."""

    path: Path
    config: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    analysis: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``train`` | ``evaluate`` | ``analyze`` | ``unknown``."""
        if self.metrics is not None:
            schema = str(self.metrics.get("schema", ""))
            return "evaluate" if schema.startswith(EVALUATE_SCHEMA_PREFIX) else "train"
        if self.analysis is not None:
            return "analyze"
        cfg = self.config or {}
        for key, kind in (("eval", "evaluate"), ("analyze", "analyze"), ("trainer", "train")):
            if key in cfg:
                return kind
        return "unknown"

    @property
    def ckpt(self) -> str | None:
        """The checkpoint an evaluation / analysis ran on, as an absolute path (None for a
        training run). A relative path is taken from the run's own working directory
        (``paths.root_dir`` of its config), so compare may run from anywhere."""
        if self.kind == "evaluate":
            path = (self.metrics or {}).get("settings", {}).get("ckpt_path")
        elif self.kind == "analyze":
            path = (self.analysis or {}).get("ckpt_path") or (self.config or {}).get("ckpt_path")
        else:
            return None
        if not path:
            return None
        root = ((self.config or {}).get("paths") or {}).get("root_dir") or "."
        return str((Path(root) / path).resolve())  # an absolute path replaces root


@dataclass
class Record:
    """One row of the comparison: a trained network at one inference output stride, or a design."""

    design: str
    model: str | None
    backbone: str | None
    output_stride: int | None  # as trained (or as analysed, for a design-only row)
    eval_output_stride: int | None
    switches: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None  # the training run's composed config
    train: dict[str, Any] | None = None
    eval: dict[str, Any] | None = None
    analysis: dict[str, Any] | None = None
    dirs: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    varies: dict[str, Any] = field(default_factory=dict)

    @property
    def miou(self) -> float | None:
        """Evaluation mIoU when evaluated, else the training run's best val mIoU."""
        if self.eval is not None and self.eval.get("mIoU") is not None:
            return float(self.eval["mIoU"])
        best = (self.train or {}).get("val/mIoU_best")
        return None if best is None else float(best)

    @property
    def bf(self) -> float | None:
        """Evaluation boundary F1 (SegNet's BF; evaluations before metrics.json schema 2 have
        none), else the training run's val BF at its best val mIoU."""
        if self.eval is not None and self.eval.get("BF") is not None:
            return float(self.eval["BF"])
        best = (self.train or {}).get("val/BF_at_best")
        return None if best is None else float(best)

    @property
    def seed(self) -> int | None:
        """The training seed (None for a design-only analysis or a config without one)."""
        value = (self.config or {}).get("seed")
        return None if value is None else int(value)

    @property
    def tags(self) -> list[str]:
        """The training run's ``tags`` (its config; ``tags=[...]`` on the command line)."""
        return [str(t) for t in (self.config or {}).get("tags") or []]

    @property
    def stride(self) -> int | None:
        """The output stride the row's figures were measured at."""
        return self.eval_output_stride or self.output_stride

    @property
    def group(self) -> str:
        """The design without its output stride (one line per group in the OS plot)."""
        extra = ", ".join(f"{k}={v}" for k, v in self.varies.items())
        base = f"{self.design} / {self.backbone}"
        return f"{base} ({extra})" if extra else base

    @property
    def label(self) -> str:
        trained, used = self.output_stride, self.stride
        os_ = f"OS {used}" if trained in (None, used) else f"OS {trained}->{used}"
        return f"{self.group}, {os_}"


def find_run_folders(dirs: Sequence[str | Path]) -> list[RunFolder]:
    """Every run folder under each of ``dirs`` (recursively), parsed.

    Raises:
        FileNotFoundError: a DIR does not exist.
        ValueError: a DIR holds no segkit run folder at all (named in the message).
    """
    found: dict[Path, RunFolder] = {}
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a directory: give run folders to compare")
        folders = sorted(
            {p.parent for name in RECORD_FILES for p in root.rglob(name)} - {root.parent}
        )
        folders = [f for f in folders if ".hydra" not in f.parts]
        if not folders:
            raise ValueError(
                f"{root} holds no segkit run (no config.yaml, metrics.json or analysis.json under "
                "it): give run folders written by scripts/train.py, evaluate.py or analyze.py, or "
                "a Hydra multirun folder holding them"
            )
        for folder in folders:
            found.setdefault(folder.resolve(), read_run_folder(folder))
    return list(found.values())


def read_run_folder(path: Path) -> RunFolder:
    """Parse one folder's files; unreadable ones are listed in ``problems``."""
    run = RunFolder(path=path)
    for name, attr, load in (
        (CONFIG_FILE, "config", yaml.safe_load),
        (METRICS_FILE, "metrics", json.loads),
        (ANALYSIS_FILE, "analysis", json.loads),
    ):
        file = path / name
        if not file.is_file():
            continue
        try:
            value = load(file.read_text())
        except (ValueError, yaml.YAMLError, OSError) as err:
            run.problems.append(f"unreadable {name} ({type(err).__name__})")
            continue
        if not isinstance(value, dict):
            run.problems.append(f"{name} is not a mapping")
            continue
        setattr(run, attr, value)
    return run


def _train_dir_of(ckpt: str | None) -> Path | None:
    """The training run folder of a checkpoint path (``<run>/checkpoints/best.ckpt``)."""
    if not ckpt:
        return None
    path = Path(ckpt)
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def _switches(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """Flat ``model.*`` / ``backbone.*`` switches plus a few recipe keys of a training config."""
    if not cfg:
        return {}
    out: dict[str, Any] = {}
    for section in VARYING_SECTIONS:
        node = cfg.get(section) or {}
        tag = builder_name(node)
        for key, value in node.items() if isinstance(node, dict) else ():
            if key not in NOT_SWITCHES and not isinstance(value, dict):
                out[f"{section}.{key}"] = (tag, value)
    for dotted in VARYING_GLOBAL:
        head, _, key = dotted.partition(".")
        value = cfg.get(head) if not key else (cfg.get(head) or {}).get(key)
        if value is not None:
            out[dotted] = (None, value)
    return out


def build_records(folders: Iterable[RunFolder]) -> list[Record]:
    """Join training, evaluation and analysis folders into comparison rows (see module doc)."""
    folders = list(folders)
    trains = {f.path.resolve(): f for f in folders if f.kind == "train"}
    linked: dict[Path | None, list[RunFolder]] = {}
    for f in folders:
        if f.kind in ("evaluate", "analyze"):
            owner = _train_dir_of(f.ckpt)
            linked.setdefault(owner if owner in trains else None, []).append(f)
    records: list[Record] = []
    for path, run in trains.items():
        records += _rows_for(run, linked.get(path, []))
    orphans = linked.get(None, [])
    by_ckpt: dict[str | None, list[RunFolder]] = {}
    for f in orphans:
        by_ckpt.setdefault(f.ckpt, []).append(f)
    for ckpt, group in by_ckpt.items():
        if ckpt is None:  # design-only analyses: one row each
            records += [_rows_for(None, [f])[0] for f in group]
        else:
            records += _rows_for(None, group)
    mark_varying(records)
    return records


def _rows_for(train: RunFolder | None, others: list[RunFolder]) -> list[Record]:
    evals = [f for f in others if f.kind == "evaluate"]
    analyses = {_analysis_os(f): f for f in others if f.kind == "analyze"}
    trained_os = _trained_os(train, evals, list(analyses.values()))
    strides = [e.metrics["settings"].get("output_stride") for e in evals]
    rows = [(os_, e) for os_, e in zip(strides, evals, strict=True)]
    rows += [(os_, None) for os_ in analyses if os_ not in strides]
    if not rows:
        rows = [(trained_os, None)]
    return [_record(train, ev, analyses.get(os_), trained_os, os_) for os_, ev in rows]


def _analysis_os(f: RunFolder) -> int | None:
    value = (f.analysis or {}).get("output_stride")
    return None if value is None else int(value)


def _trained_os(train: RunFolder | None, evals: list, analyses: list) -> int | None:
    if train is not None:
        value = (train.metrics or {}).get("output_stride")
        if value is None:
            value = ((train.config or {}).get("model") or {}).get("output_stride")
        return None if value is None else int(value)
    for e in evals:
        return e.metrics["settings"].get("trained_output_stride")
    return _analysis_os(analyses[0]) if analyses else None


def _record(
    train: RunFolder | None,
    ev: RunFolder | None,
    an: RunFolder | None,
    trained_os: int | None,
    os_: int | None,
) -> Record:
    train_cfg = (train.config or {}) if train else {}
    source = (ev.metrics or {}).get("settings", {}) if ev else (an.analysis or {}) if an else {}
    model = builder_name(train_cfg.get("model")) or source.get("model")
    backbone = builder_name(train_cfg.get("backbone")) or source.get("backbone")
    if an is not None and not an.ckpt and not train:  # a design-only analysis: its own config
        model_cfg = (an.config or {}).get("model")
        train_cfg = an.config or {}
    else:
        model_cfg = train_cfg.get("model")
    rec = Record(
        design=design_name(model, model_cfg if isinstance(model_cfg, dict) else None),
        model=model,
        backbone=backbone,
        output_stride=trained_os,
        eval_output_stride=os_ if ev is not None or os_ != trained_os else None,
        switches=_switches(train_cfg),
        config=train_cfg or None,
        train=train.metrics if train else None,
        eval=ev.metrics if ev else None,
        analysis=an.analysis if an else None,
        dirs={k: f.path for k, f in (("train", train), ("eval", ev), ("analysis", an)) if f},
    )
    rec.missing = _missing(rec, train, ev, an)
    return rec


def _missing(rec: Record, train: RunFolder | None, ev: RunFolder | None, an: RunFolder | None):
    out = []
    design_only = an is not None and not an.ckpt
    if not design_only and (train is None or train.metrics is None):
        out.append("training metrics.json")
    elif train is not None and (train.metrics or {}).get("status", "finished") != "finished":
        m = train.metrics or {}
        last = m.get("last_ckpt") or str(train.path / "checkpoints" / "last.ckpt")
        out.append(
            f"a finished training (status {m.get('status')!r} at step {m.get('global_step', '?')} "
            f"of {(rec.config or {}).get('trainer', {}).get('max_steps', '?')}: resume it with "
            f"ckpt_path={last})"
        )
    if not design_only and ev is None:
        out.append("evaluation (scripts/evaluate.py ckpt_path=...)")
    if an is None:
        out.append("analysis (scripts/analyze.py ckpt_path=...)")
    for f in (train, ev, an):
        out += [f"{f.path}: {p}" for p in (f.problems if f else [])]
    return out


def mark_varying(records: list[Record]) -> None:
    """Set ``Record.varies``: the switches whose values differ between rows of the same builder
    (``model.separable`` between two DeepLabv3+ runs, not ``model.aspp_rates`` vs an FCN)."""
    seen: dict[tuple[str, Any], set[str]] = {}
    for rec in records:
        for key, (tag, value) in rec.switches.items():
            seen.setdefault((key, tag), set()).add(json.dumps(value, sort_keys=True))
    varying = {k for k, values in seen.items() if len(values) > 1}
    for rec in records:
        rec.varies = {
            key: value for key, (tag, value) in rec.switches.items() if (key, tag) in varying
        }
