"""Print split sizes and class pixel frequencies, write a mask-overlay grid (and optionally JSON).

Usage: python scripts/inspect_data.py data=synthetic inspect.json=out.json
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks.cli import launch, run_task  # light: the task module is imported in the job


@hydra.main(version_base="1.3", config_path="../configs", config_name="inspect_data")
def main(cfg: DictConfig) -> dict:
    return run_task("inspect_data", cfg)


if __name__ == "__main__":
    launch(main)
