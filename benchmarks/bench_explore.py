"""How long the design explorer takes to answer, without the browser: loading an image and a
click (per design: RF box + one ERF backward pass + the pictures), at 513 x 513 px with the two
quickstart designs (FCN-8s and DeepLabv3+ on MobileNetV2 x0.5, 7 classes; fresh weights with
random BN statistics: the cost does not depend on the values).

    python benchmarks/bench_explore.py --clicks 5 [--threads 2] [--size 513]

Prints the machine, the load average before and after, and the median / max wall time of each
action (``segkit.explore.ui.Explorer``, the object the page calls).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image

from _helpers import machine
from segkit.cli.configs import compose_config
from segkit.explore.session import Session, find_checkpoints, load_designs
from segkit.explore.ui import Explorer


def quickstart_checkpoint(folder: Path, model: str) -> Path:
    """A checkpoint in the train task's format of ``experiment=quickstart model=<model>``."""
    from hydra.utils import instantiate

    cfg = compose_config(
        "train",
        [
            "experiment=quickstart",
            f"model={model}",
            f"paths.root_dir={folder}",
            f"paths.output_dir={folder / model}",
        ],
    )
    torch.manual_seed(0)
    net = instantiate(cfg.model)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.running_mean.normal_(0.0, 0.2)
    path = folder / model / "checkpoints" / "best.ckpt"
    path.parent.mkdir(parents=True)
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    plain = OmegaConf.to_container(cfg, resolve=True)
    torch.save({"hyper_parameters": {"cfg": plain}, "state_dict": state}, path)
    return path


def timed(fn, *args) -> float:
    start = time.perf_counter()
    out = fn(*args)
    assert "error" not in str(out[2]), out[2]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--size", type=int, default=513)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = [quickstart_checkpoint(folder, m) for m in ("fcn", "deeplabv3plus")]
        designs, notices = load_designs(find_checkpoints(paths)[0], torch.device("cpu"))
        assert len(designs) == 2, notices
        app = Explorer(Session(designs), val=None, max_side=args.size, out_dir=folder)
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
        upload = folder / "image.png"
        Image.fromarray(image).save(upload)
        load = timed(app.upload, str(upload))
        pixels = rng.integers(0, args.size, (args.clicks, 2))
        clicks = [timed(app.click, int(r), int(c)) for r, c in pixels]
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}")
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    print(f"designs: {', '.join(d.name for d in designs)}; image {args.size} x {args.size} px")
    print(f"image load (2 designs: forward with graph, meta trace, latency runs): {load:.2f} s")
    print(
        f"click (2 designs: RF box, ERF backward, pictures): median {statistics.median(clicks):.2f} s, "
        f"max {max(clicks):.2f} s over {len(clicks)} clicks"
    )


if __name__ == "__main__":
    main()
