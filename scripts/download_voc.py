"""Download Pascal VOC 2012 trainval and SBD, verify MD5, resume partial downloads, build trainaug.

Usage: python scripts/download_voc.py --root data/ [--no-sbd] [--delete-archives]
"""

import sys

from segkit.cli.download import voc

if __name__ == "__main__":
    sys.exit(voc())
