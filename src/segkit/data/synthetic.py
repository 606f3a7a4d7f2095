"""Deterministic synthetic data in the real VOC layout, designed so FCN vs DeepLabv3+ means something.

Each object class is a *shape* x *colour family* pair (e.g. ``warm_disc``, ``cool_star``). Colour family
is visible locally, but the shape is not: the interior of a big disc and of a big triangle look the same
under any small receptive field, and the textures (flat, stripes, checker, blotches) are drawn from one
pool shared by every class and by the background. Telling classes apart therefore needs context up to
the object's outline. Objects span ~14% to ~100% of the image side (radius drawn log-uniformly),
stars and rings have thin parts (3-6 px) where output resolution matters, and a void (255) band marks
every object border as in VOC. Everything follows from ``SyntheticSpec`` (seed, counts, sizes).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segkit.constants import IGNORE_INDEX
from segkit.data.classes import ClassInfo
from segkit.data.io import save_mask
from segkit.data.split import Layout, SegDataset
from segkit.data.voc import resolve_voc_dir, voc_layout

log = logging.getLogger(__name__)

SHAPES: tuple[str, ...] = ("disc", "triangle", "star", "box", "ring")
FAMILIES: tuple[str, ...] = ("warm", "cool")
#: OpenCV hue ranges (0..180) of each colour family; warm wraps through red.
_FAMILY_HUES = {"warm": (-12.0, 28.0), "cool": (88.0, 128.0)}
MANIFEST = "synthetic_manifest.json"
_GENERATOR_VERSION = 1
_SPLIT_STREAM = {"train": 0, "val": 1}


def synthetic_class_names(num_classes: int) -> tuple[str, ...]:
    """Class names ``background, warm_disc, cool_disc, warm_triangle, ...`` truncated to num_classes."""
    names = ("background",) + tuple(f"{fam}_{shape}" for shape in SHAPES for fam in FAMILIES)
    if not 2 <= num_classes <= len(names):
        raise ValueError(
            f"synthetic num_classes must be in 2..{len(names)} (background + shape x colour family), "
            f"got {num_classes}: set num_classes accordingly"
        )
    return names[:num_classes]


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the synthetic set; the generated folder is a pure function of these.

    Args:
        seed: master seed; sample ``i`` of a split uses ``np.random.default_rng([seed, split, i])``.
        num_train, num_val: images in the ``train`` and ``val`` split lists.
        min_size, max_size: image height and width are drawn independently in this range (pixels).
        num_classes: background + the first ``num_classes - 1`` of shape x colour family.
        max_objects: 1..max_objects objects per image (later ones occlude earlier ones).
        void_width: half-width in pixels of the 255 band drawn on every label border (0 = none).
    """

    seed: int = 0
    num_train: int = 400
    num_val: int = 100
    min_size: int = 96
    max_size: int = 160
    num_classes: int = 7
    max_objects: int = 4
    void_width: int = 1

    def __post_init__(self) -> None:
        synthetic_class_names(self.num_classes)
        if self.num_train < 1 or self.num_val < 1:
            raise ValueError(
                f"synthetic num_train and num_val must be >= 1, got {self.num_train}, {self.num_val}"
            )
        if not 32 <= self.min_size <= self.max_size:
            raise ValueError(
                f"synthetic sizes need 32 <= min_size <= max_size, got {self.min_size}, {self.max_size}"
            )
        if self.max_objects < 1 or self.void_width < 0:
            raise ValueError("synthetic max_objects must be >= 1 and void_width >= 0")


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A brightness multiplier (H, W) in ~[0.55, 1] from the pool shared by all classes."""
    kind = rng.integers(4)
    if kind == 0:
        return np.ones((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = float(rng.uniform(6, 18))
    if kind == 1:  # stripes at a random angle
        theta = rng.uniform(0, np.pi)
        phase = (xx * np.cos(theta) + yy * np.sin(theta)) / period
        return np.where(np.sin(2 * np.pi * phase) > 0, 1.0, 0.65).astype(np.float32)
    if kind == 2:  # checkerboard
        parity = (np.floor(xx / period) + np.floor(yy / period)) % 2
        return (1.0 - 0.35 * parity).astype(np.float32)
    coarse = rng.uniform(0.55, 1.0, size=(h // 12 + 2, w // 12 + 2)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.5, 1.0)


def _family_colour(rng: np.random.Generator, family: str | None) -> np.ndarray:
    """An RGB float colour: saturated in the family's hue range, or greyish for the background."""
    if family is None:
        hsv = (rng.uniform(0, 180), rng.uniform(0, 70), rng.uniform(90, 230))
    else:
        lo, hi = _FAMILY_HUES[family]
        hsv = (rng.uniform(lo, hi) % 180, rng.uniform(140, 255), rng.uniform(150, 255))
    # OpenCV's float HSV wants H in degrees (0..360) and S, V in 0..1.
    pixel = np.array([[[2.0 * hsv[0], hsv[1] / 255.0, hsv[2] / 255.0]]], np.float32)
    return cv2.cvtColor(pixel, cv2.COLOR_HSV2RGB)[0, 0] * 255.0


def _draw_shape(rng: np.random.Generator, shape: str, h: int, w: int) -> np.ndarray:
    """A uint8 (H, W) 0/1 mask of one object, centre uniform in the image, size log-uniform."""
    mask = np.zeros((h, w), np.uint8)
    side = min(h, w)
    r = float(np.exp(rng.uniform(np.log(0.07), np.log(0.5)))) * side
    cx, cy = int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.1, 0.9) * h)
    angle = rng.uniform(0, 360)
    if shape == "disc":
        axes = (max(2, int(r)), max(2, int(r * rng.uniform(0.6, 1.0))))
        cv2.ellipse(mask, (cx, cy), axes, angle, 0, 360, 1, thickness=-1)
    elif shape in ("triangle", "box"):
        n = 3 if shape == "triangle" else 4
        step = np.deg2rad(360.0 / n)
        t = np.deg2rad(angle) + step * np.arange(n) + rng.uniform(-0.15, 0.15, n)
        pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1).round().astype(np.int32)
        cv2.fillPoly(mask, [pts], 1)
    elif shape == "star":  # thin spokes around a small hub
        n = int(rng.integers(5, 9))
        t = np.deg2rad(angle) + 2 * np.pi * np.arange(n) / n
        thick = int(rng.integers(3, 7))
        for a in t:
            tip = (int(cx + r * np.cos(a)), int(cy + r * np.sin(a)))
            cv2.line(mask, (cx, cy), tip, 1, thickness=thick)
        cv2.circle(mask, (cx, cy), max(2, int(r * 0.2)), 1, thickness=-1)
    elif shape == "ring":  # a thin annulus
        axes = (max(4, int(r)), max(4, int(r * rng.uniform(0.7, 1.0))))
        cv2.ellipse(mask, (cx, cy), axes, angle, 0, 360, 1, thickness=int(rng.integers(3, 7)))
    else:
        raise ValueError(f"unknown synthetic shape {shape!r}; choices: {SHAPES}")
    return mask


def render_sample(spec: SyntheticSpec, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Render sample ``index`` of ``split``: ``(image uint8 (H, W, 3) RGB, mask uint8 (H, W))``."""
    rng = np.random.default_rng([spec.seed, _SPLIT_STREAM[split], index])
    h, w = (int(v) for v in rng.integers(spec.min_size, spec.max_size + 1, size=2))
    image = _family_colour(rng, None) * _texture(rng, h, w)[..., None]
    label = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, spec.max_objects + 1))):
        cls = int(rng.integers(1, spec.num_classes))
        shape, family = SHAPES[(cls - 1) // len(FAMILIES)], FAMILIES[(cls - 1) % len(FAMILIES)]
        inside = _draw_shape(rng, shape, h, w).astype(bool)
        colour = _family_colour(rng, family)
        image[inside] = colour * _texture(rng, h, w)[inside][:, None]
        label[inside] = cls
    if spec.void_width > 0:
        kernel = np.ones((2 * spec.void_width + 1,) * 2, np.uint8)
        label[cv2.dilate(label, kernel) != cv2.erode(label, kernel)] = IGNORE_INDEX
    image += rng.normal(0.0, 4.0, size=image.shape).astype(np.float32)  # sensor-like noise
    return image.clip(0, 255).astype(np.uint8), label


def _write_split(spec: SyntheticSpec, voc_dir: Path, split: str, count: int) -> list[str]:
    ids = []
    for i in range(count):
        image_id = f"{split}_{i:06d}"
        image, mask = render_sample(spec, split, i)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        cv2.imwrite(
            str(voc_dir / "JPEGImages" / f"{image_id}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        save_mask(voc_dir / "SegmentationClass" / f"{image_id}.png", mask)
        ids.append(image_id)
    return ids


def generate_synthetic(root: str | Path, spec: SyntheticSpec) -> Path:
    """Write ``root/VOCdevkit/VOC2012`` (JPEGs, palette PNGs, split lists) and the manifest.

    Returns the ``VOC2012`` folder. Writes in place: use ``ensure_synthetic`` for a folder that
    other runs may read (it generates under a temporary name and renames).
    """
    root = Path(root)
    voc_dir = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc_dir / sub).mkdir(parents=True, exist_ok=True)
    lists = {
        s: _write_split(spec, voc_dir, s, n)
        for s, n in (("train", spec.num_train), ("val", spec.num_val))
    }
    lists["trainval"] = lists["train"] + lists["val"]
    for split, ids in lists.items():
        (voc_dir / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    (root / MANIFEST).write_text(json.dumps(_manifest(spec), indent=2) + "\n")
    return voc_dir


def _manifest(spec: SyntheticSpec) -> dict[str, Any]:
    manifest = {"generator": "segkit.data.synthetic", "version": _GENERATOR_VERSION, **asdict(spec)}
    manifest["class_names"] = list(synthetic_class_names(spec.num_classes))
    return manifest


def synthetic_folder_name(spec: SyntheticSpec) -> str:
    """The folder of ``spec`` under the synthetic root, e.g. ``v1_seed0_n400-100_px96-160_k7_obj4_void1``:
    every generator parameter (and the generator version) is in the name, so each spec has its own."""
    return (
        f"v{_GENERATOR_VERSION}_seed{spec.seed}_n{spec.num_train}-{spec.num_val}"
        f"_px{spec.min_size}-{spec.max_size}_k{spec.num_classes}_obj{spec.max_objects}"
        f"_void{spec.void_width}"
    )


def ensure_synthetic(root: str | Path, spec: SyntheticSpec) -> Path:
    """The folder ``root/<synthetic_folder_name(spec)>`` holding ``VOCdevkit``, generated if missing.

    Nothing is regenerated in place, so runs with different specs share ``root`` and run together:
    a new spec is written to a temporary folder beside its final name and renamed when complete
    (a rename is atomic), so a reader sees either no folder or a complete one. Two processes that
    generate the same spec at once both succeed: the first rename wins, the other run's copy is
    deleted. Temporary folders left by killed runs (this host, dead process) are removed.
    """
    root = Path(root)
    target = root / synthetic_folder_name(spec)
    if not target.exists():
        _generate_atomically(root, target, spec)
    _check_manifest(target, spec)
    return target


def _check_manifest(target: Path, spec: SyntheticSpec) -> None:
    path = target / MANIFEST
    recorded = json.loads(path.read_text()) if path.is_file() else None
    if recorded != _manifest(spec):
        raise ValueError(
            f"{target} is not the complete segkit synthetic set it is named after "
            f"({'no ' + MANIFEST if recorded is None else MANIFEST + ' differs'}): delete that "
            "folder (once no run reads it) and run again to regenerate it"
        )


def _generate_atomically(root: Path, target: Path, spec: SyntheticSpec) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(root, target.name)
    if (root / MANIFEST).is_file():
        log.info(
            "%s/VOCdevkit is the old single-spec synthetic layout (written in place) and is no "
            "longer read: delete it and %s to free the space",
            root,
            MANIFEST,
        )
    tmp = (
        root / f".{target.name}.partial-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )
    log.info(
        "generating synthetic VOC-format data in %s (seed=%d, %d train + %d val, %d-%d px, %d classes)",
        target,
        spec.seed,
        spec.num_train,
        spec.num_val,
        spec.min_size,
        spec.max_size,
        spec.num_classes,
    )
    try:
        generate_synthetic(tmp, spec)
        try:
            tmp.rename(target)
        except OSError as err:  # another process renamed its copy first
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not target.is_dir():
                raise
            log.info("synthetic data %s was completed by another run meanwhile; using it", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_partials(root: Path, name: str) -> None:
    """Delete ``.<name>.partial-<this host>-<pid>-*`` folders whose process no longer runs."""
    prefix = f".{name}.partial-{socket.gethostname()}-"
    for path in root.glob(f".{name}.partial-*"):
        pid = path.name[len(prefix) :].split("-", 1)[0] if path.name.startswith(prefix) else ""
        if pid.isdigit() and not _process_alive(int(pid)):
            log.info("removing %s, left by an interrupted generation", path)
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class Synthetic(SyntheticSpec, SegDataset):
    """The synthetic set (``data=synthetic``): a :class:`SyntheticSpec` and the folder it is
    generated under, ``root/<synthetic_folder_name(spec)>`` (one folder per spec, so runs with
    other parameters share ``root``); generated by :meth:`prepare` when missing.

    Args:
        root: the parent of the per-spec folders.
        seed, num_train, ...: the generator parameters (:class:`SyntheticSpec`).
    """

    root: str | Path = "data/synthetic"

    @property
    def spec(self) -> SyntheticSpec:
        """The generator parameters alone (what names the folder and its manifest)."""
        return SyntheticSpec(**{f.name: getattr(self, f.name) for f in fields(SyntheticSpec)})

    @property
    def folder(self) -> Path:
        """``root/<synthetic_folder_name(spec)>``, the folder holding this spec's ``VOCdevkit``."""
        return Path(self.root) / synthetic_folder_name(self.spec)

    @property
    def classes(self) -> ClassInfo:
        """Background (left uncoloured in overlays) + the spec's shape x colour family classes."""
        return ClassInfo(
            names=synthetic_class_names(self.num_classes),
            void=IGNORE_INDEX,
            background=0,
            source="the synthetic set",
        )

    def prepare(self) -> None:
        """Generate the spec's folder under ``root`` if missing (:func:`ensure_synthetic`)."""
        ensure_synthetic(self.root, self.spec)

    def layout(self, name: str) -> Layout:
        return voc_layout(resolve_voc_dir(self.folder), name)
