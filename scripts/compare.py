"""Compare run folders: markdown tables (accuracy; geometry and cost) and plots.

    python scripts/compare.py logs/train/multiruns/<time> logs/evaluate/runs logs/analyze/runs
    python scripts/compare.py logs/comparison/<time> --out docs/my_comparison
    python scripts/compare.py logs/sweep_design/multiruns/<time> --fill   # evaluate + analyse first

Every DIR is searched recursively for run folders of scripts/train.py, evaluate.py and analyze.py
(single runs and Hydra multirun folders); evaluations and analyses are joined to the training run
of their checkpoint. Writes <out>/comparison.md, <out>/records.json and the PNG plots.

argparse, not Hydra: the inputs are a list of existing folders and nothing here is composed from
config groups, and Hydra would add a run folder of its own for a task that only reads others.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from segkit.compare.records import find_run_folders  # light (yaml); the task imports torch
from segkit.tasks._common import exit_on_user_error
from segkit.tasks.cli import exit_promptly

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="run/multirun folders")
    parser.add_argument("--out", type=Path, help="output folder (default logs/compare/<time>)")
    parser.add_argument(
        "--fill",
        action="store_true",
        help="first evaluate (trimap) and analyse, inside their own folders, the training runs "
        "that lack it (e.g. the jobs of a sweep)",
    )
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str]) -> None:
    args = parse(argv)
    find_run_folders(args.dirs)  # a wrong folder is refused before the heavy import below
    from segkit.tasks.compare import compare, fill_missing

    if args.fill:
        for run in fill_missing(args.dirs, config_dir=CONFIGS):
            print(f"evaluated and analysed {run}")
    out = args.out or Path("logs") / "compare" / time.strftime("%Y-%m-%d_%H-%M-%S")
    result = compare(args.dirs, out_dir=out)
    print(result.section(out))
    if result.skipped_plots:
        print(f"plots not drawn (no row has their data): {', '.join(result.skipped_plots)}")
    print(f"comparison of {len(result.records)} rows written to {out}/comparison.md")


if __name__ == "__main__":
    exit_promptly(lambda: main(sys.argv[1:]))
