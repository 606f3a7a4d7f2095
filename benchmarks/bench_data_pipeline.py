"""Train-pipeline throughput: segkit (cv2 + albumentations) vs PIL + torchvision.transforms.v2.

Both pipelines do the same work per sample on the same files, in one process and one thread (= the
cost per DataLoader worker): decode the JPEG and the palette PNG, check the mask, random scale
(0.5-2.0, bilinear image / nearest mask), pad to the crop (image: mean, mask: 255), random crop,
horizontal flip, and produce uint8 CHW image and int64 mask tensors. The two are timed alternately,
repeats interleaved, so machine noise hits both alike.

    python benchmarks/bench_data_pipeline.py [--images 48] [--repeats 5] [--crop 513]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402
from torchvision.transforms.v2 import functional as F  # noqa: E402

from _helpers import machine, voc_sized_sample  # noqa: E402
from segkit.constants import IGNORE_INDEX  # noqa: E402
from segkit.data import MEAN_UINT8, build_train_transform, check_sample, read_image, read_mask  # noqa: E402


def make_files(folder: Path, count: int) -> list[tuple[Path, Path]]:
    """VOC-sized (500x375 / 375x500) JPEGs with textured content and palette PNG masks."""
    from segkit.data import save_mask

    pairs = []
    for i in range(count):
        image, mask = voc_sized_sample(i)
        jpg, png = folder / f"{i:04d}.jpg", folder / f"{i:04d}.png"
        cv2.imwrite(
            str(jpg), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        save_mask(png, mask)
        pairs.append((jpg, png))
    return pairs


def segkit_pipeline(crop: int):
    transform = build_train_transform(crop_size=crop, scale_range=(0.5, 2.0), seed=0)

    def run(jpg: Path, png: Path) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = read_image(jpg), read_mask(png)
        check_sample(image, mask, 21, mask_path=png)
        out = transform(image=image, mask=mask)
        return torch.from_numpy(out["image"]).permute(2, 0, 1), torch.from_numpy(out["mask"]).long()

    return run


class _RandomScale(v2.Transform):
    """Random rescale by a factor in [low, high] (torchvision has size-based resizes only)."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def make_params(self, flat_inputs):
        h, w = v2.query_size(flat_inputs)
        s = random.uniform(self.low, self.high)
        return {"size": [max(1, round(h * s)), max(1, round(w * s))]}

    def transform(self, inpt, params):
        # Mask tv_tensors are resized with nearest automatically; images bilinear.
        return F.resize(
            inpt, params["size"], interpolation=v2.InterpolationMode.BILINEAR, antialias=False
        )


def torchvision_pipeline(crop: int):
    fill = {tv_tensors.Image: MEAN_UINT8, tv_tensors.Mask: IGNORE_INDEX, "others": 0}
    transform = v2.Compose(
        [
            _RandomScale(0.5, 2.0),
            v2.RandomCrop(crop, pad_if_needed=True, fill=fill, padding_mode="constant"),
            v2.RandomHorizontalFlip(),
        ]
    )

    def run(jpg: Path, png: Path) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(jpg) as im:
            image = im.convert("RGB")
        with Image.open(png) as m:
            mask_np = np.array(m, dtype=np.uint8)
        check_sample(np.asarray(image), mask_np, 21, mask_path=png)
        image_t = tv_tensors.Image(F.pil_to_tensor(image))
        mask_t = tv_tensors.Mask(torch.from_numpy(mask_np)[None])
        image_t, mask_t = transform(image_t, mask_t)
        return image_t.as_subclass(torch.Tensor), mask_t.as_subclass(torch.Tensor)[0].long()

    return run


def time_once(run, pairs) -> float:
    start = time.perf_counter()
    for jpg, png in pairs:
        image, mask = run(jpg, png)
    assert image.dtype == torch.uint8 and mask.dtype == torch.int64
    return len(pairs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--crop", type=int, default=513)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    random.seed(0)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        pairs = make_files(Path(tmp), args.images)
        runs = {
            "segkit (cv2 + albumentations)": segkit_pipeline(args.crop),
            "PIL + torchvision.transforms.v2": torchvision_pipeline(args.crop),
        }
        for run in runs.values():  # warm-up: imports, caches
            time_once(run, pairs[:4])
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                rates[name].append(time_once(run, pairs))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    a, b = medians.values()
    paired = [x / y for x, y in zip(*rates.values(), strict=True)]  # same repeat, back to back
    print(f"machine: {machine()}")
    print(
        f"date: {time.strftime('%Y-%m-%d')}  crop {args.crop}, {args.images} VOC-sized JPEGs "
        f"(500x375 / 375x500), {args.repeats} interleaved repeats, 1 process, 1 thread"
    )
    print("| pipeline | images/s per worker (median) | all repeats |")
    print("|---|---|---|")
    for name, r in rates.items():
        print(f"| {name} | {medians[name]:.1f} | {', '.join(f'{x:.1f}' for x in r)} |")
    print(
        f"ratio segkit / torchvision: {a / b:.2f}x of medians; per repeat "
        f"{', '.join(f'{r:.2f}' for r in paired)} (median {statistics.median(paired):.2f}x); "
        "target >= 1.5x"
    )


if __name__ == "__main__":
    main()
