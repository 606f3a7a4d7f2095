"""Export a training checkpoint's network (ONNX, dynamic batch/height/width). Examples:

python scripts/export.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt format=onnx
python scripts/export.py ckpt_path=... output=model.onnx export.exporter=legacy
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks._common import exit_on_user_error
from segkit.tasks.export import export


@hydra.main(version_base="1.3", config_path="../configs", config_name="export")
@exit_on_user_error
def main(cfg: DictConfig) -> dict:
    return export(cfg)


if __name__ == "__main__":
    main()
