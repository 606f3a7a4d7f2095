"""A local web page comparing trained designs pixel by pixel (needs ``pip install -e '.[app]'``).

python scripts/explore.py 'ckpt_path=[A.ckpt,B.ckpt]'
python scripts/explore.py ckpt_path=logs/sweep_design/multiruns/<time>   # each run's best.ckpt
python scripts/explore.py ckpt_path=A.ckpt explore.port=7861 explore.device=cuda
"""

from segkit.cli.entry import explore  # = segkit-explore; light: the task is imported in the job

if __name__ == "__main__":
    explore()
