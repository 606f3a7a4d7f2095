"""Console entry points (``[project.scripts]``: ``segkit-train``, ``segkit-eval``, ...), also what
``scripts/<task>.py`` run. Each reads the packaged configs (``segkit.cli.configs.CONFIG_DIR``),
so it runs from any directory; runs go under ``paths.root_dir`` (``$SEGKIT_ROOT`` or the current
directory). A user's own config folder joins with ``hydra.searchpath`` (README, "Your own
configs").

Light: importing this module and ``--help`` / ``--cfg job`` load Hydra, omegaconf and
``segkit.cli.launch`` only; the task module (torch, Lightning) is imported inside the job
(``segkit.cli.launch.run_task``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from segkit.cli.configs import CONFIG_DIR, config_folder
from segkit.cli.launch import exit_promptly, launch, run_task


def _optimized_metric(cfg: DictConfig, metrics: dict) -> Any:
    """What ``hparams_search`` (Optuna) optimises: the metric named by ``optimized_metric``."""
    return metrics.get(cfg.get("optimized_metric") or "")


def _hydra_entry(
    task: str, summary: str, returns: Callable[[DictConfig, Any], Any] | None = None
) -> Callable[[], None]:
    """``segkit-<task>``: the Hydra application of entry config ``<task>.yaml``. Its job name (and
    so ``<run dir>/<task>.log``) is the config name (``configs/hydra/default.yaml``)."""

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=task)
    def main(cfg: DictConfig) -> Any:
        result = run_task(task, cfg)
        return returns(cfg, result) if returns is not None else result

    def entry() -> None:
        try:
            config_folder(task)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(1) from None
        launch(main, config=task)

    entry.__name__ = entry.__qualname__ = task
    entry.__doc__ = f"{summary} (Hydra overrides on the command line; --help lists the groups)."
    return entry


train = _hydra_entry("train", "Train a segmentation model", returns=_optimized_metric)
evaluate = _hydra_entry("evaluate", "Evaluate a training checkpoint: mIoU, trimap, plots")
predict = _hydra_entry("predict", "Label maps and overlays for images with a checkpoint")
export = _hydra_entry("export", "Export a checkpoint's network to one ONNX file")
analyze = _hydra_entry("analyze", "Strides, receptive fields, ERF and cost of one design")
inspect_data = _hydra_entry("inspect_data", "Check every sample of a dataset, list its defects")
explore = _hydra_entry(
    "explore", "A local web page comparing trained designs pixel by pixel (needs the app extra)"
)


def _compare_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="segkit-compare",
        description="Compare run folders: markdown tables (accuracy; geometry and cost) and plots.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="run/multirun folders")
    parser.add_argument("--out", type=Path, help="output folder (default logs/compare/<time>)")
    parser.add_argument(
        "--fill",
        action="store_true",
        help="first evaluate (trimap) and analyse, inside their own folders, the training runs "
        "that lack it (e.g. the jobs of a sweep)",
    )
    return parser.parse_args(argv)


def run_compare(argv: list[str]) -> None:
    """The compare command on ``argv``; a user error prints one line and raises SystemExit(1)."""
    from segkit.cli.jobs import exit_on_user_error

    exit_on_user_error(_compare)(argv)


def _compare(argv: list[str]) -> None:
    from segkit.compare.records import find_run_folders  # light (yaml); the task's plots are not

    args = _compare_args(argv)
    find_run_folders(args.dirs)  # a wrong folder is refused before the heavy imports below
    from segkit.tasks.compare import compare

    if args.fill:
        from segkit.cli.fill import fill_missing  # evaluate + analyze: torch

        for folder in fill_missing(args.dirs):
            print(f"evaluated and analysed {folder}")
    out = args.out or Path("logs") / "compare" / time.strftime("%Y-%m-%d_%H-%M-%S")
    result = compare(args.dirs, out_dir=out)
    print(result.section(out))
    if result.skipped_plots:
        print(f"plots not drawn (no row has their data): {', '.join(result.skipped_plots)}")
    print(f"comparison of {len(result.records)} rows written to {out}/comparison.md")


def compare(argv: list[str] | None = None) -> None:
    """``segkit-compare DIR... [--out OUT] [--fill]``: every DIR is searched recursively for run
    folders of train, evaluate and analyze (single runs and multirun folders); evaluations and
    analyses are joined to the training run of their checkpoint. Writes ``<out>/comparison.md``,
    ``<out>/records.json`` and the PNG plots. argparse, not Hydra: the inputs are existing
    folders, nothing is composed from config groups, and the task writes no run folder of its own.
    """
    exit_promptly(lambda: run_compare(sys.argv[1:] if argv is None else argv))


__all__ = [
    "analyze",
    "compare",
    "evaluate",
    "explore",
    "export",
    "inspect_data",
    "predict",
    "run_compare",
    "train",
]
