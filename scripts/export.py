"""Export a training checkpoint's network (ONNX, dynamic batch/height/width). Examples:

python scripts/export.py ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt format=onnx
python scripts/export.py ckpt_path=... output=model.onnx export.exporter=legacy
"""

from segkit.cli.entry import export  # = segkit-export; light: the task is imported in the job

if __name__ == "__main__":
    export()
