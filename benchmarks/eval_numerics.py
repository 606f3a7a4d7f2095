"""How far bf16 inference moves the answer: mIoU under ``precision=32`` (contiguous) and
``precision=bf16`` (+ channels_last), and the share of pixels whose argmax agree, on one split.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/eval_numerics.py --ckpt logs/.../best.ckpt [--limit N]
    OMP_NUM_THREADS=2 python benchmarks/eval_numerics.py --random data=camvid \\
        data.root=../shared/data/camvid --split test [--limit N]

``--ckpt``: the checkpoint's network and its training data config (``data.root=...`` overrides
that root; ``data=<name> [data.root=...]`` replaces it with the data group's). ``--random``: a randomly initialised DeepLabv3+/MobileNetV2 of the train config
composed from the overrides (its mIoU means nothing; the agreement rate is the figure). Both
numerics run through ``segkit.evaluation.inference.infer``, what evaluate and predict call.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from hydra.utils import instantiate

from _helpers import cpu_name
from segkit.cli.configs import compose_config
from segkit.evaluation.inference import InferenceSettings, infer
from segkit.tasks.checkpoints import load_trained

EXACT = InferenceSettings(precision="32", channels_last=False)
FAST = InferenceSettings(precision="bf16", channels_last=True)


def _miou(cm: torch.Tensor) -> float:
    inter = cm.diag().double()
    union = cm.sum(0).double() + cm.sum(1).double() - inter
    present = union > 0
    return float((inter[present] / union[present]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--random", action="store_true")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=None)
    args, overrides = parser.parse_known_args()
    if args.ckpt:
        trained = load_trained(args.ckpt)
        model, data_cfg = trained.model, dict(trained.cfg["data"])
        if any(o.startswith("data=") for o in overrides):  # e.g. a run of an older data schema
            data_cfg, overrides = dict(compose_config("train", overrides).data), []
        for o in overrides:  # data.root=... only
            key, _, value = o.partition("=")
            data_cfg[key.removeprefix("data.")] = value
            if key == "data.root":  # the dataset node reads the root too
                data_cfg["dataset"] = {**data_cfg["dataset"], "root": value}
    else:
        cfg = compose_config("train", ["backbone.weights=null", *overrides])
        torch.manual_seed(0)
        model, data_cfg = instantiate(cfg.model), cfg.data
    model.eval()
    data = instantiate(data_cfg["dataset"], _convert_="all")
    data.prepare()
    dataset = data.split(args.split)
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    k = int(data_cfg["num_classes"])
    cms = {"32": torch.zeros(k, k, dtype=torch.long), "bf16": torch.zeros(k, k, dtype=torch.long)}
    agree = total = 0
    start = time.perf_counter()
    for i in range(count):
        sample = dataset[i]
        image = torch.as_tensor(sample["image"])
        image = image.permute(2, 0, 1) if image.shape[-1] == 3 else image
        x = image[None]  # uint8: the model normalises
        mask = torch.as_tensor(sample["mask"]).long().flatten()
        preds = {}
        for name, settings in (("32", EXACT), ("bf16", FAST)):
            preds[name] = infer(model, x, settings).argmax(1).flatten()
            valid = mask < k
            cms[name] += torch.bincount(
                mask[valid] * k + preds[name][valid], minlength=k * k
            ).reshape(k, k)
        agree += int((preds["32"] == preds["bf16"]).sum())
        total += preds["32"].numel()
        model.to(memory_format=torch.contiguous_format)  # the exact pass starts from NCHW again
    seconds = time.perf_counter() - start
    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    what = args.ckpt or "random init, " + " ".join(overrides)
    print(f"- {what}, split {args.split}, {count} images, {cpu_name()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {load}, {seconds:.0f} s")  # fmt: skip
    print(f"- mIoU fp32 {_miou(cms['32']):.4f}, bf16 {_miou(cms['bf16']):.4f} "
          f"(difference {_miou(cms['bf16']) - _miou(cms['32']):+.4f}); "
          f"argmax agreement {agree / total:.4%} of {total} pixels")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
