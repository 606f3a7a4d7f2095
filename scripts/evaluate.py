"""Evaluate a training checkpoint: mIoU, per-class and trimap IoU, plots, overlays. Examples:

python scripts/evaluate.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt
python scripts/evaluate.py ckpt_path=... eval.output_stride=8 eval.scales=[0.5,0.75,1.0,1.25,1.5,1.75] eval.flip=true
python scripts/evaluate.py ckpt_path=... data=voc data.root=/datasets eval.mode=slide eval.window=513
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks.cli import launch, run_task  # light: the task module is imported in the job


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
def main(cfg: DictConfig) -> dict:
    return run_task("evaluate", cfg)


if __name__ == "__main__":
    launch(main)
