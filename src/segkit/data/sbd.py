"""SBD (Hariharan et al. 2011) reader and the standard VOC "trainaug" split.

SBD layout: ``benchmark_RELEASE/dataset/{img/<id>.jpg, cls/<id>.mat, train.txt, val.txt}``; each .mat
holds a struct ``GTcls`` whose ``Segmentation`` field is the (H, W) class-index map (no void border).

trainaug = (VOC train | SBD train | SBD val) - VOC val: 10,582 images with the real data. Its masks are
gathered once into ``VOC2012/SegmentationClassAug/<id>.png`` so training reads PNGs only: the VOC mask
where VOC has one (it carries the 255 void border), the converted SBD mask otherwise.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from segkit.data.io import save_mask
from segkit.data.split import read_id_list
from segkit.data.voc import AUG_MASK_DIR, read_split, resolve_voc_dir

log = logging.getLogger(__name__)


def sbd_dir(root: str | Path) -> Path:
    """The ``benchmark_RELEASE/dataset`` folder under ``root``; FileNotFoundError says how to get it."""
    path = Path(root) / "benchmark_RELEASE" / "dataset"
    if not (path / "cls").is_dir():
        raise FileNotFoundError(
            f"SBD not found: {path}/cls is missing; download it with "
            f"`python scripts/download_voc.py --root {root}`"
        )
    return path


def read_sbd_mask(mat_path: str | Path) -> np.ndarray:
    """Class-index map (uint8 (H, W)) from an SBD ``cls/<id>.mat`` file."""
    if not Path(mat_path).is_file():
        raise FileNotFoundError(
            f"SBD mask {mat_path} is missing: re-extract benchmark.tgz with scripts/download_voc.py "
            "or remove its id from the SBD train.txt/val.txt"
        )
    try:
        mat = scipy.io.loadmat(str(mat_path), squeeze_me=True, struct_as_record=False)
        seg = mat["GTcls"].Segmentation
    except (OSError, ValueError, KeyError, AttributeError, TypeError, MatReadError) as err:
        raise ValueError(
            f"SBD file {mat_path} is unreadable or lacks GTcls.Segmentation ({err}): "
            "re-extract benchmark.tgz with scripts/download_voc.py"
        ) from None
    return np.asarray(seg, dtype=np.uint8)


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Run ``write(tmp)`` on a temporary name beside ``path``, then rename it to ``path``."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def trainaug_ids(voc_train: list[str], voc_val: list[str], sbd_ids: list[str]) -> list[str]:
    """(VOC train | SBD train | SBD val) - VOC val, in a stable sorted order."""
    return sorted((set(voc_train) | set(sbd_ids)) - set(voc_val))


def build_trainaug(root: str | Path) -> dict[str, int]:
    """Convert SBD masks to PNG (cached) and write ``ImageSets/Segmentation/trainaug.txt``.

    Idempotent: existing PNGs in ``SegmentationClassAug`` are kept, so a rerun only does what is
    missing. Returns counts ``{"trainaug": n, "converted": n, "copied_voc": n}``.
    """
    voc_dir = resolve_voc_dir(root)
    sbd = sbd_dir(root)
    voc_train, voc_val = read_split(voc_dir, "train"), read_split(voc_dir, "val")
    fix = "re-extract benchmark.tgz with scripts/download_voc.py"
    sbd_ids = [i for name in ("train", "val") for i in read_id_list(sbd / f"{name}.txt", fix=fix)]
    ids = trainaug_ids(voc_train, voc_val, sbd_ids)
    out_dir = voc_dir / AUG_MASK_DIR
    out_dir.mkdir(exist_ok=True)
    voc_masks = voc_dir / "SegmentationClass"
    converted = copied = 0
    # VOC val masks go into the folder too, so every mask of the voc_aug setup lives in one place.
    # The mask PNG is the "done" mark of an id, so its JPEG is placed first and both are written
    # under a temporary name and renamed: an interrupted run never leaves a truncated file that a
    # rerun would trust.
    for image_id in [*ids, *voc_val]:
        target = out_dir / f"{image_id}.png"
        if target.is_file():
            continue
        jpg = voc_dir / "JPEGImages" / f"{image_id}.jpg"
        if not jpg.is_file():  # SBD images are VOC2011 images; take SBD's copy if VOC lacks one
            source = sbd / "img" / f"{image_id}.jpg"
            if not source.is_file():
                raise FileNotFoundError(
                    f"image {source} for trainaug id {image_id!r} is missing (and {jpg} too): "
                    "re-extract benchmark.tgz with scripts/download_voc.py"
                )
            _atomic(jpg, lambda tmp, src=source: shutil.copyfile(src, tmp))
        voc_mask = voc_masks / f"{image_id}.png"
        if voc_mask.is_file():
            _atomic(target, lambda tmp, src=voc_mask: shutil.copyfile(src, tmp))
            copied += 1
        else:
            mask = read_sbd_mask(sbd / "cls" / f"{image_id}.mat")
            _atomic(target, lambda tmp, m=mask: save_mask(tmp, m))
            converted += 1
    split_path = voc_dir / "ImageSets" / "Segmentation" / "trainaug.txt"
    split_path.write_text("\n".join(ids) + "\n")
    log.info(
        "trainaug: %d ids (%d SBD masks converted, %d VOC masks copied)",
        len(ids),
        converted,
        copied,
    )
    return {"trainaug": len(ids), "converted": converted, "copied_voc": copied}
