"""Evaluate a training checkpoint: mIoU, per-class and trimap IoU, plots, overlays. Examples:

python scripts/evaluate.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt
python scripts/evaluate.py ckpt_path=... eval.output_stride=8 eval.scales=[0.5,0.75,1.0,1.25,1.5,1.75] eval.flip=true
python scripts/evaluate.py ckpt_path=... data=voc data.root=/datasets eval.mode=slide eval.window=513
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks._common import exit_on_user_error
from segkit.tasks.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
@exit_on_user_error
def main(cfg: DictConfig) -> dict:
    return evaluate(cfg)


if __name__ == "__main__":
    main()
