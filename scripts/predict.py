"""Predict label maps for images of any size with a training checkpoint. Examples:

python scripts/predict.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt input=photo.jpg output=preds/
python scripts/predict.py ckpt_path=... input=images/ output=preds/ predict.batch_size=8 predict.flip=true
"""

from segkit.cli.entry import predict  # = segkit-predict; light: the task is imported in the job

if __name__ == "__main__":
    predict()
