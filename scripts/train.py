"""Train a segmentation model. Usage examples:

python scripts/train.py experiment=quickstart
python scripts/train.py model=fcn backbone=xception65 data=voc_aug trainer=gpu
python scripts/train.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt   # exact resume
python scripts/train.py -m model=fcn,deeplabv3plus model.output_stride=8,16       # sweep
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks.cli import launch, run_task  # light: the task module is imported in the job


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run_task("train", cfg)
    # Returned for hparams_search (optuna minimises/maximises this value).
    return metrics.get(cfg.get("optimized_metric") or "", None)


if __name__ == "__main__":
    launch(main)
