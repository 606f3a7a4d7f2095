"""Predict label maps for images of any size with a training checkpoint. Examples:

python scripts/predict.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt input=photo.jpg output=preds/
python scripts/predict.py ckpt_path=... input=images/ output=preds/ predict.batch_size=8 predict.flip=true
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks._common import exit_on_user_error
from segkit.tasks.predict import predict


@hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> dict:
    return predict(cfg)


if __name__ == "__main__":
    main()
