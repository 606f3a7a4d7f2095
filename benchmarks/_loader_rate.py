"""Does the input pipeline keep up? Images/s the training loader delivers, without a model, on
the CamVid frames (360x480 PNG, ``segkit.data.CamVid``) and on VOC-sized JPEG stand-ins (500x375 /
375x500, ``segkit.data.Folder`` in a temporary folder), both with the CamVid protocol's training
transforms (``experiment=camvid/deeplabv3plus``: random scale 0.5-2.0, crop 320, flip) and batch,
through ``SegDataModule.train_dataloader`` with the machine-fitted worker default
(``data.num_workers: ${workers:4}``), and in one process (``num_workers=0``: the cost per worker).
A timed pass is one epoch from a fresh iterator (``max_batches`` cuts it short for smoke runs);
passes of all loaders alternate and the least disturbed is taken.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from _helpers import interleave, least_disturbed, voc_sized_sample

PROTOCOL = "experiment=camvid/deeplabv3plus"
TRANSFORM_KEYS = ("crop_size", "scale_range", "batch_size", "hflip", "color_jitter")


def write_voc_folder(root: Path, count: int) -> Path:
    """``root/images/*.jpg`` (JPEG q90), ``root/masks/*.png``, ``root/classes.yaml`` (11 classes)."""
    import cv2

    from segkit.data import save_mask

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for i in range(count):
        image, mask = voc_sized_sample(i)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(root / "images" / f"{i:04d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        save_mask(root / "masks" / f"{i:04d}.png", mask)
    names = ", ".join(f"c{k}" for k in range(11))
    (root / "classes.yaml").write_text(f"names: [{names}]\n")
    return root


def _module(overrides: list[str]):  # noqa: ANN202
    from segkit.cli.configs import compose_config

    cfg = compose_config("train", [*overrides, "data.check=off"])
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    return dm


class Pass:
    """One timed epoch (or ``max_batches``) of a loader from a fresh iterator -> seconds."""

    def __init__(self, loader, max_batches: int | None) -> None:  # noqa: ANN001
        self.loader = loader
        self.batches = len(loader) if max_batches is None else min(max_batches, len(loader))
        self.images = self.batches * loader.batch_size  # drop_last: full batches only

    def __call__(self) -> float:
        start = time.perf_counter()
        it = iter(self.loader)
        for _ in range(self.batches):
            next(it)
        seconds = time.perf_counter() - start
        del it
        return seconds


def run(
    camvid_root: Path | None,
    voc_images: int,
    repeats: int,
    max_batches: int | None = None,
    overrides: tuple[str, ...] = (),
) -> dict[str, object]:
    """Least-disturbed images/s of each loader (CamVid only when ``camvid_root`` is given)."""
    from segkit.cli.configs import compose_config

    protocol = compose_config("train", [PROTOCOL, *overrides]).data
    workers = int(protocol.num_workers)
    values = {k: OmegaConf.to_container(protocol, resolve=True)[k] for k in TRANSFORM_KEYS}
    transform = [f"data.{k}={json.dumps(v)}" for k, v in values.items()]
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"VOC-sized JPEG (Folder)": ["data=folder", f"data.root={write_voc_folder(Path(tmp), voc_images)}", *transform]}  # fmt: skip
        if camvid_root is not None:
            sources = {"CamVid PNG": [PROTOCOL, f"data.root={camvid_root}"], **sources}
        jobs, sizes = {}, {}
        for name, base in sources.items():
            for label, extra in ((f"{workers} workers (default)", []), ("1 process", ["data.num_workers=0"])):  # fmt: skip
                dm = _module([*base, *overrides, *extra])
                clock = Pass(dm.train_dataloader(), max_batches)
                clock()  # warm-up: worker start, file cache
                jobs[f"{name} | {label}"], sizes[f"{name} | {label}"] = clock, clock.images
        times = interleave(jobs, repeats)
    rows = []
    for key, seconds in times.items():
        source, loader = key.split(" | ")
        t = least_disturbed(seconds)
        rows.append({"source": source, "loader": loader, "images_per_pass": sizes[key],
                     "pass_seconds": t, "images_per_s": sizes[key] / t["best"]})  # fmt: skip
    return {"workers_default": workers, "transform": values, "rows": rows}


__all__ = ["run", "write_voc_folder"]
