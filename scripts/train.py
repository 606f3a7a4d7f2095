"""Train a segmentation model. Usage examples:

python scripts/train.py experiment=quickstart
python scripts/train.py model=fcn backbone=xception65 data=voc_aug trainer=gpu
python scripts/train.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt   # exact resume
python scripts/train.py -m model=fcn,deeplabv3plus model.output_stride=8,16       # sweep
"""

from segkit.cli.entry import train  # = segkit-train; light: the task is imported in the job

if __name__ == "__main__":
    train()
