"""Export a training checkpoint's network (ONNX, dynamic batch/height/width). Examples:

python scripts/export.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt format=onnx
python scripts/export.py ckpt_path=... output=model.onnx export.exporter=legacy
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks.cli import launch, run_task  # light: the task module is imported in the job


@hydra.main(version_base="1.3", config_path="../configs", config_name="export")
def main(cfg: DictConfig) -> dict:
    return run_task("export", cfg)


if __name__ == "__main__":
    launch(main)
