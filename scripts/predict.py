"""Predict label maps for images of any size with a training checkpoint. Examples:

python scripts/predict.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt input=photo.jpg output=preds/
python scripts/predict.py ckpt_path=... input=images/ output=preds/ predict.batch_size=8 predict.flip=true
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks.cli import launch, run_task  # light: the task module is imported in the job


@hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
def main(cfg: DictConfig) -> dict:
    return run_task("predict", cfg)


if __name__ == "__main__":
    launch(main)
