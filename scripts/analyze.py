"""Analyse one model design: per-stage strides and receptive fields, ERF, params, MACs, latency.

python scripts/analyze.py model=deeplabv3plus backbone=xception65 model.output_stride=8
python scripts/analyze.py model=fcn model.output_stride=32 analyze.input_size=513 analyze.json=fcn.json
python scripts/analyze.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks.cli import launch, run_task  # light: the task module is imported in the job


@hydra.main(version_base="1.3", config_path="../configs", config_name="analyze")
def main(cfg: DictConfig) -> dict:
    return run_task("analyze", cfg)


if __name__ == "__main__":
    launch(main)
