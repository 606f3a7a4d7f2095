"""Evaluate a training checkpoint: mIoU, per-class and trimap IoU, plots, overlays. Examples:

python scripts/evaluate.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt
python scripts/evaluate.py ckpt_path=... eval.output_stride=8 eval.scales=[0.5,0.75,1.0,1.25,1.5,1.75] eval.flip=true
python scripts/evaluate.py ckpt_path=... data=voc data.root=/datasets eval.mode=slide eval.window=513
"""

from segkit.cli.entry import evaluate  # = segkit-eval; light: the task is imported in the job

if __name__ == "__main__":
    evaluate()
