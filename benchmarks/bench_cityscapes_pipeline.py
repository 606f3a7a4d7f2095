"""Cityscapes-sized data: the training pipeline per worker, and sliding-window evaluation per image.

1. Train pipeline, images/s in one process and one thread (= per DataLoader worker), on
   1024x2048 PNGs in the Cityscapes release layout with labelId masks (void ids included):
   segkit's real reader (``Cityscapes(...).split`` with ``build_train_transform``: cv2 decode,
   labelId -> trainId table, mask checks, random scale 0.5-2.0, pad, random crop 769, flip) vs
   PIL + torchvision.transforms.v2 doing the same operations on the same files (PIL decode, the
   same labelId -> trainId table, the same checks, ``bench_data_pipeline``'s random scale, pad +
   crop, flip). Repeats alternate between the pipelines so machine noise hits all alike. A third
   row runs the reader with the three-step albumentations chain (RandomScale -> PadIfNeeded ->
   RandomCrop) that ``build_train_transform`` used before ``RandomScaleCrop``.
2. Evaluation cost per 1024x2048 image of a MobileNetV2 DeepLabv3+ (OS 16, 19 classes, random
   weights: cost does not depend on them) on CPU: sliding 769x769 windows every 513 px (the
   Cityscapes data config's default: 2 x 4 = 8 windows) vs one whole-image pass, interleaved.

    python benchmarks/bench_cityscapes_pipeline.py [--images 12] [--repeats 5] [--crop 769]
        [--eval-images 1] [--eval-repeats 3] [--threads 2]
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

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402
from torchvision.transforms.v2 import functional as F  # noqa: E402

from _helpers import machine, voc_sized_sample  # noqa: E402
from bench_data_pipeline import _RandomScale, time_once  # noqa: E402
from segkit.constants import IGNORE_INDEX  # noqa: E402
from segkit.data import MEAN_UINT8, build_train_transform  # noqa: E402
from segkit.data.cityscapes import LABEL_TO_TRAIN, Cityscapes, lookup  # noqa: E402
from segkit.data.io import check_mask_size  # noqa: E402
from segkit.data.split import SegSplit  # noqa: E402

H, W = 1024, 2048
#: The synthetic sample's 11 classes (and its 255 void) -> labelIds; 0 (unlabeled), 4 (static)
#: and 1 (ego vehicle) are void ids.
CLASS_TO_LABEL_ID = np.ones(256, np.uint8)
CLASS_TO_LABEL_ID[:11] = (0, 7, 8, 11, 21, 23, 24, 26, 4, 17, 33)


def make_tree(root: Path, count: int) -> None:
    """``count`` 1024x2048 frames under leftImg8bit/train/<city>/ and gtFine/train/<city>/."""
    for i in range(count):
        image, mask = voc_sized_sample(i)
        image = cv2.resize(image, (W, H), interpolation=cv2.INTER_LINEAR)
        label_ids = CLASS_TO_LABEL_ID[cv2.resize(mask, (W, H), interpolation=cv2.INTER_NEAREST)]
        city = ("aachen", "bremen")[i % 2]
        stem = f"{city}_{i:06d}_000019"
        img = root / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png"
        gt = root / "gtFine" / "train" / city / f"{stem}_gtFine_labelIds.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        gt.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(img), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(gt), label_ids)


def segkit_pipeline(dataset: SegSplit):
    """The real reader's ``__getitem__`` (what a worker runs), then the collate's tensor views."""
    index = {image_id: k for k, image_id in enumerate(dataset.ids)}

    def run(image_id: str, _: object) -> tuple[torch.Tensor, torch.Tensor]:
        item = dataset[index[image_id]]
        return torch.from_numpy(item["image"]).permute(2, 0, 1), torch.from_numpy(
            item["mask"]
        ).long()

    return run


def torchvision_pipeline(dataset: SegSplit, crop: int):
    """PIL decode + the same table and checks + torchvision v2 scale / pad+crop / flip."""
    table = lookup("labelIds")
    fill = {tv_tensors.Image: MEAN_UINT8, tv_tensors.Mask: IGNORE_INDEX, "others": 0}
    transform = v2.Compose(
        [
            _RandomScale(0.5, 2.0),
            v2.RandomCrop(crop, pad_if_needed=True, fill=fill, padding_mode="constant"),
            v2.RandomHorizontalFlip(),
        ]
    )

    def run(image_id: str, _: object) -> tuple[torch.Tensor, torch.Tensor]:
        png = dataset.mask_path(image_id)
        with Image.open(dataset.image_path(image_id)) as im:
            image = im.convert("RGB")
        with Image.open(png) as m:
            mask_np = table(np.array(m, dtype=np.uint8))
        check_mask_size((image.height, image.width), mask_np, mask_path=png)
        table.check(mask_np, len(LABEL_TO_TRAIN), mask_path=png)
        image_t = tv_tensors.Image(F.pil_to_tensor(image))
        mask_t = tv_tensors.Mask(torch.from_numpy(mask_np)[None])
        image_t, mask_t = transform(image_t, mask_t)
        return image_t.as_subclass(torch.Tensor), mask_t.as_subclass(torch.Tensor)[0].long()

    return run


def chain_transform(crop: int) -> A.Compose:
    """build_train_transform's operations as three albumentations steps (its form before
    RandomScaleCrop): RandomScale -> PadIfNeeded -> RandomCrop, then flip."""
    return A.Compose(
        [
            A.RandomScale(
                scale_limit=(-0.5, 1.0),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                p=1.0,
            ),
            A.PadIfNeeded(
                min_height=crop,
                min_width=crop,
                position="top_left",
                border_mode=cv2.BORDER_CONSTANT,
                fill=MEAN_UINT8,
                fill_mask=IGNORE_INDEX,
            ),
            A.RandomCrop(height=crop, width=crop),
            A.HorizontalFlip(p=0.5),
        ],
        seed=0,
    )


def bench_pipeline(root: Path, args: argparse.Namespace) -> None:
    transform = build_train_transform(crop_size=args.crop, scale_range=(0.5, 2.0), seed=0)
    dataset = Cityscapes(root=root).split("train", transform=transform)
    chain = Cityscapes(root=root).split("train", transform=chain_transform(args.crop))
    pairs = [(image_id, None) for image_id in dataset.ids]
    runs = {
        "segkit: build_train_transform (RandomScaleCrop + flip)": segkit_pipeline(dataset),
        "segkit: three-step chain (RandomScale -> PadIfNeeded -> RandomCrop + flip)": segkit_pipeline(
            chain
        ),
        "PIL + torchvision.transforms.v2": torchvision_pipeline(dataset, args.crop),
    }
    for run in runs.values():  # warm-up: imports, caches
        time_once(run, pairs[:2])
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            rates[name].append(time_once(run, pairs))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    *segkit_names, tv_name = rates
    print(
        f"train pipeline: crop {args.crop}, {len(pairs)} Cityscapes-sized PNGs (2048x1024, "
        f"labelId masks), {args.repeats} interleaved repeats, 1 process, 1 thread"
    )
    print("| pipeline | images/s per worker (median) | all repeats |")
    print("|---|---|---|")
    for name, r in rates.items():
        print(f"| {name} | {medians[name]:.2f} | {', '.join(f'{x:.2f}' for x in r)} |")
    for name in segkit_names:  # per repeat: the two runs were back to back
        paired = [x / y for x, y in zip(rates[name], rates[tv_name], strict=True)]
        print(
            f"ratio {name.split(': ')[1]} / torchvision: "
            f"{medians[name] / medians[tv_name]:.2f}x of medians; per repeat "
            f"{', '.join(f'{r:.2f}' for r in paired)} (median {statistics.median(paired):.2f}x); "
            "target >= 1.5x"
        )


def bench_slide(args: argparse.Namespace) -> None:
    from segkit.evaluation.inference import InferenceSettings, infer
    from segkit.models import create_model

    torch.set_num_threads(args.threads)
    model = create_model("deeplabv3plus", backbone="mobilenetv2", num_classes=19).eval()
    image = torch.randn(1, 3, H, W)
    modes = {
        f"slide {args.crop}/{args.stride}": InferenceSettings(
            mode="slide", window=args.crop, stride=args.stride
        ),
        "whole image": InferenceSettings(mode="whole"),
    }
    infer(model, image, modes["whole image"])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.eval_repeats):
        for name, settings in modes.items():
            start = time.perf_counter()
            for _ in range(args.eval_images):
                scores = infer(model, image, settings)
            times[name].append((time.perf_counter() - start) / args.eval_images)
            assert scores.shape == (1, 19, H, W)
    slide, whole = (statistics.median(t) for t in times.values())
    print(
        f"\nevaluation cost per 1024x2048 image: DeepLabv3+ / MobileNetV2 (OS 16, 19 classes), CPU, "
        f"{torch.get_num_threads()} threads, {args.eval_images} images x {args.eval_repeats} "
        "interleaved repeats"
    )
    print("| inference | s per image (median) | all repeats |")
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {statistics.median(t):.2f} | {', '.join(f'{x:.2f}' for x in t)} |")
    print(f"sliding / whole: {slide / whole:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--crop", type=int, default=769)
    parser.add_argument("--stride", type=int, default=513)
    parser.add_argument("--eval-images", type=int, default=1)
    parser.add_argument("--eval-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the eval part")
    parser.add_argument("--skip-eval", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    random.seed(0)
    torch.manual_seed(0)
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}  load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        make_tree(Path(tmp), args.images)
        bench_pipeline(Path(tmp), args)
    if not args.skip_eval:
        bench_slide(args)


if __name__ == "__main__":
    main()
