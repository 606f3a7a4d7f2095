"""Data-check speed on a VOC-sized fixture: what ``inspect_data`` and the pre-training check cost.

Writes a VOC 2012-shaped tree to a temporary folder (1,464 train + 1,449 val ids by default; 500x375 and
375x500 JPEGs at quality 90 with textured content, palette PNG masks with void borders; 48 distinct
renders written under all the ids, so the files are real and distinct on disk), then times, repeats
interleaved so machine noise hits every variant alike:

- ``check_datasets`` over train + val, ``full`` (decode everything) and ``headers`` (image headers,
  masks decoded), with 1 and with ``--threads`` threads;
- ``SegDataModule.setup("fit")`` with ``check=full`` vs ``check=off`` (what the check adds before
  training; ``num_workers`` threads);
- the whole ``inspect_data`` task (progress bar, tables, grid), as ``scripts/inspect_data.py data=voc``
  runs it, without the process start-up.

Wall time and the process's CPU time (all threads) are both reported: on a shared machine the wall
time depends on the other jobs, the CPU time per sample much less.

    python benchmarks/bench_inspect.py [--train 1464] [--val 1449] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from _helpers import machine, voc_sized_sample  # noqa: E402
from segkit.data import VOC, SegDataModule, check_datasets, save_mask  # noqa: E402


def make_fixture(root: Path, n_train: int, n_val: int, distinct: int = 48) -> dict[str, float]:
    """A VOC-shaped tree under ``root``; returns the mean JPEG and PNG sizes in KB."""
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    blobs = []
    for i in range(distinct):
        image, mask = voc_sized_sample(i)
        mask[mask >= 11] = 255  # labels 0..10 (a 21-class VOC check accepts them), void kept
        jpg = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        png_path = root / "tmp.png"
        save_mask(png_path, mask)
        blobs.append((jpg[1].tobytes(), png_path.read_bytes()))
    png_path.unlink()
    for split, count, offset in (("train", n_train, 0), ("val", n_val, n_train)):
        ids = [f"2007_{offset + i:06d}" for i in range(count)]
        for k, image_id in enumerate(ids):
            jpg, png = blobs[(offset + k) % distinct]
            (voc / "JPEGImages" / f"{image_id}.jpg").write_bytes(jpg)
            (voc / "SegmentationClass" / f"{image_id}.png").write_bytes(png)
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return {
        "jpg_kb": float(np.mean([len(b[0]) for b in blobs]) / 1024),
        "png_kb": float(np.mean([len(b[1]) for b in blobs]) / 1024),
    }


def _datamodule(root: Path, check: str, workers: int) -> SegDataModule:
    return SegDataModule(dataset=VOC(root), num_workers=workers, check=check)  # type: ignore[arg-type]


def _inspect_task(root: Path, out: Path, threads: int) -> None:
    from segkit.cli.configs import compose_config
    from segkit.tasks.inspect_data import inspect_data

    cfg = compose_config(
        "inspect_data",
        [
            "data=voc",
            f"data.root={root}",
            f"paths.root_dir={out}",
            f"paths.output_dir={out}",
            f"inspect.workers={threads}",
        ],
    )
    with open(os.devnull, "w") as sink, redirect_stdout(sink), redirect_stderr(sink):
        inspect_data(cfg)  # its tables and progress bar go to the sink


@contextmanager
def timed(wall: list[float], cpu: list[float]) -> Iterator[None]:
    """Append the block's wall time and this process's CPU time (all threads) to the lists."""
    start, start_cpu = time.perf_counter(), time.process_time()
    yield
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--train", type=int, default=1464)
    parser.add_argument("--val", type=int, default=1449)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {machine()}; load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "voc"
        sizes = make_fixture(root, args.train, args.val)
        print(
            f"fixture: {args.train} + {args.val} pairs, mean JPEG {sizes['jpg_kb']:.0f} KB, "
            f"mean PNG {sizes['png_kb']:.1f} KB"
        )
        datasets = list(VOC(root).train_val(lenient=True).values())
        variants = {
            f"full, {t} thread{'s' * (t > 1)}": ("full", t) for t in sorted({1, args.threads})
        } | {
            f"headers, {t} thread{'s' * (t > 1)}": ("headers", t) for t in sorted({1, args.threads})
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        times |= {"setup, check=off": [], "setup, check=full": [], "inspect_data task": []}
        cpu: dict[str, list[float]] = {name: [] for name in times}
        check_datasets(datasets, workers=args.threads)  # warm the page cache
        for _ in range(args.repeats):
            for name, (level, threads) in variants.items():
                with timed(times[name], cpu[name]):
                    report = check_datasets(datasets, level=level, workers=threads)
                assert not report.defects, report.defects[:3]
            for check in ("off", "full"):
                dm = _datamodule(root, check, args.threads)
                with timed(times[f"setup, check={check}"], cpu[f"setup, check={check}"]):
                    dm.setup("fit")
            with timed(times["inspect_data task"], cpu["inspect_data task"]):
                _inspect_task(root, Path(tmp) / "run", args.threads)
    total = args.train + args.val
    print(f"load average after: {os.getloadavg()}\n")
    print(
        "| variant | wall s (median) | samples/s | CPU s (median) | CPU ms / sample | wall, all repeats |"
    )
    print("|---|---|---|---|---|---|")
    for name, values in times.items():
        med, med_cpu = statistics.median(values), statistics.median(cpu[name])
        rate = "-" if name == "setup, check=off" else f"{total / med:,.0f}"
        print(
            f"| {name} | {med:.2f} | {rate} | {med_cpu:.2f} | {1000 * med_cpu / total:.2f} | "
            f"{', '.join(f'{v:.2f}' for v in values)} |"
        )


if __name__ == "__main__":
    main()
