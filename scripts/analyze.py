"""Analyse one model design: per-stage strides and receptive fields, ERF, params, MACs, latency.

python scripts/analyze.py model=deeplabv3plus backbone=xception65 model.output_stride=8
python scripts/analyze.py model=fcn model.output_stride=32 analyze.input_size=513 analyze.json=fcn.json
python scripts/analyze.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt
"""

from segkit.cli.entry import analyze  # = segkit-analyze; light: the task is imported in the job

if __name__ == "__main__":
    analyze()
