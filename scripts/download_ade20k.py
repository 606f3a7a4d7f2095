"""Download ADE20K SceneParsing (ADEChallengeData2016.zip): MD5 check, resumable, unzip.

Usage: python scripts/download_ade20k.py --root data/ [--delete-archive]
Then train with data=ade20k data.root=data/ (docs/datasets.md).
"""

import sys

from segkit.cli.download import ade20k

if __name__ == "__main__":
    sys.exit(ade20k())
