"""Compare run folders: markdown tables (accuracy; geometry and cost) and plots.

    python scripts/compare.py logs/train/multiruns/<time> logs/evaluate/runs logs/analyze/runs
    python scripts/compare.py logs/comparison/<time> --out docs/my_comparison
    python scripts/compare.py logs/sweep_design/multiruns/<time> --fill   # evaluate + analyse first

Every DIR is searched recursively for run folders of scripts/train.py, evaluate.py and analyze.py
(single runs and Hydra multirun folders); evaluations and analyses are joined to the training run
of their checkpoint. Writes <out>/comparison.md, <out>/records.json and the PNG plots.
"""

from segkit.cli.entry import compare  # = segkit-compare

if __name__ == "__main__":
    compare()
