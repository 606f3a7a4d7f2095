"""Print split sizes and class pixel frequencies, write a mask-overlay grid (and optionally JSON).

Usage: python scripts/inspect_data.py data=synthetic inspect.json=out.json
"""

import hydra
from omegaconf import DictConfig

from segkit.tasks._common import exit_on_user_error
from segkit.tasks.inspect_data import inspect_data


@hydra.main(version_base="1.3", config_path="../configs", config_name="inspect_data")
@exit_on_user_error
def main(cfg: DictConfig) -> dict:
    return inspect_data(cfg)


if __name__ == "__main__":
    main()
