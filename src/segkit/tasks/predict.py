"""``predict`` task: a label PNG and an overlay JPEG for each input image, in the colours of the
checkpoint's classes (``checkpoint["segkit"]["classes"]``, the training dataset's), and a legend.

Images of any size: they are batched by evaluate's batching (``segkit.data.batching``:
``same_size_batches`` over the sizes in the file headers, ``same_size_loader``), so a batch holds
equal-sized images and nothing is padded (padding would change what the network computes near the
border and what image pooling sees); each label map equals a batch-1 forward. A folder of mixed
sizes therefore runs at smaller batches. The input files are a dataset by position
(:class:`InputImages`): each batch's ``"index"`` names its files, nothing else. Unreadable images
(a header that cannot be read, a body that cannot be decoded, or one that decodes to another size
than its header gives) are reported and skipped; when any was, ``predict`` raises
``PredictFailures`` after writing everything else (the script then exits 1).

The checkpoint is opened by the prelude evaluate shares (``tasks.checkpoints.open_for_inference``);
``predict.backend=onnxruntime`` runs the network exported once to ONNX
(``segkit.evaluation.onnx_backend``).

Under ``torchrun --nproc-per-node=N`` (``tasks.checkpoints.torchrun_ranks``) the batches are dealt
out in turn (``batching.shard``'s rule) and each process writes its images' files (each image
once); rank 0 gathers the counts and failures into summary.json.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import Dataset

from segkit.checks import check_batch_size
from segkit.cli.jobs import save_config, save_json
from segkit.cli.launch import echo
from segkit.constants import IMAGE_SUFFIXES
from segkit.data import read_image
from segkit.data.batching import (
    indexed_collate,
    loader_images,
    same_size_batches,
    same_size_loader,
)
from segkit.data.classes import ClassInfo
from segkit.data.io import read_image_size
from segkit.evaluation.inference import InferenceSettings, infer
from segkit.evaluation.overlay import overlay, save_label_png, save_legend
from segkit.progress import track
from segkit.tasks.checkpoints import (
    Ranks,
    open_for_inference,
    resolve_device,
    torchrun_ranks,
)

log = logging.getLogger(__name__)


class PredictFailures(ValueError):
    """Some inputs could not be predicted; all others were written. ``summary`` = summary.json."""

    def __init__(self, summary: dict[str, Any]) -> None:
        written = (
            f"the other {summary['written']} were written to {summary['output']}"
            if summary["written"]
            else "no image could be read, so no label map was written: check that input= holds "
            "readable images"
        )
        super().__init__(
            f"predict: {summary['failed']} of {summary['images']} inputs failed (listed above and in "
            f"{Path(summary['output']) / 'summary.json'}); {written}"
        )
        self.summary = summary


def list_images(source: str | Path) -> list[Path]:
    """An image file -> [it]; a folder -> its image files (sorted, not recursive)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"input={source} does not exist: give an image file or a folder")
    images = sorted(
        p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not images:
        raise ValueError(
            f"input folder {source} holds no images ({', '.join(IMAGE_SUFFIXES)}): "
            "point input= at a folder with images"
        )
    return images


class InputImages(Dataset):
    """The input files by position, for ``same_size_loader``: item ``i`` is ``paths[i]`` as a
    split's sample (``image`` (H, W, 3) uint8 RGB, an empty ``mask``, ``id``: the path) plus
    ``error``, "" when it can be predicted. ``sizes``: position -> ``(H, W)`` from the header, for
    the readable ones. A file that cannot be decoded, or decodes to another size than its header
    gave, comes as a black image of the header's size (its batch still stacks) with ``error``
    saying why; it is not predicted."""

    def __init__(self, paths: Sequence[Path], sizes: Mapping[int, tuple[int, int]]) -> None:
        self.paths, self.sizes = list(paths), dict(sizes)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, size = self.paths[index], self.sizes[index]
        image, error = None, ""
        try:
            image = read_image(path)
        except (ValueError, FileNotFoundError, OSError) as err:
            error = _reason(err)
        if image is not None and image.shape[:2] != size:
            h, w = image.shape[:2]
            error = f"image decoded as {h}x{w} px where its header gives {size[0]}x{size[1]}"
        if error:
            image = np.zeros((*size, 3), np.uint8)
        return {"image": image, "mask": np.zeros(size, np.uint8), "id": str(path), "error": error}


def _collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``indexed_collate`` plus each sample's ``error``."""
    batch = indexed_collate(samples)
    batch["error"] = [str(s["error"]) for s in samples]
    return batch


def _header_sizes(
    paths: Sequence[Path], failures: list[dict[str, str]]
) -> dict[int, tuple[int, int]]:
    """Position -> ``(H, W)`` from the file headers (nothing decoded); an unreadable header goes
    to ``failures``."""
    sizes = {}
    for index, path in enumerate(paths):
        try:
            sizes[index] = read_image_size(path)
        except (ValueError, FileNotFoundError, OSError) as err:
            _fail(path, _reason(err), failures)
    return sizes


def _reason(err: Exception) -> str:
    # The reader's message speaks of datasets and split lists; here a plain reason is clearer.
    return "missing image" if isinstance(err, FileNotFoundError) else "unreadable or corrupt image"


def _fail(path: Path, error: str, failures: list[dict[str, str]]) -> None:
    log.warning("skipping %s: %s", path, error)
    failures.append({"path": str(path), "error": error})


def _labels(
    model: Any, images: torch.Tensor, settings: InferenceSettings, device: Any
) -> np.ndarray:
    """Label maps (B, H, W) uint8 for a batch of equal-sized uint8 images (B, 3, H, W)."""
    batch = images.to(device, non_blocking=True)
    return infer(model, batch, settings).argmax(1).to(torch.uint8).cpu().numpy()


def output_stems(paths: Sequence[Path]) -> dict[Path, str]:
    """Output file stem per input: its stem, or ``<stem>_<ext>`` when two inputs share a stem
    (``a.jpg`` and ``a.png``) so that neither overwrites the other."""
    counts: dict[str, int] = {}
    for path in paths:
        counts[path.stem] = counts.get(path.stem, 0) + 1
    return {p: p.stem if counts[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.')}" for p in paths}


#: Files predict writes besides the per-image ones.
RUN_FILES: tuple[str, ...] = ("summary.json", "legend.png")
#: Colliding names listed in the refusal.
SHOWN_COLLISIONS = 5


def planned_files(stems: dict[Path, str]) -> dict[str, Path | None]:
    """Every file name a run writes into its output folder -> the input it comes from (None for
    ``summary.json`` / ``legend.png``); ValueError when two would share a name (an input called
    ``legend.jpg`` would lose its label map to the legend)."""
    planned: dict[str, Path | None] = dict.fromkeys(RUN_FILES)
    for path, stem in stems.items():
        for name in (f"{stem}.png", f"{stem}_overlay.jpg"):
            if name in planned:
                other = planned[name] or "the run's own file"
                raise ValueError(
                    f"inputs {path} and {other} would both be written as {name}: rename one of them"
                )
            planned[name] = path
    return planned


def check_output(source: str | Path, out_dir: Path, planned: dict[str, Path | None]) -> None:
    """Refuse, before anything is written, an output that would write over an input or over any
    file this run did not create: ``output`` must be a folder; for a folder input, not that folder
    nor a folder holding it (its label PNGs would replace same-named inputs, and the next run would
    read the overlays as inputs); and it must not hold a file of a name this run writes."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(
            f"output={out_dir} is an existing file: output must be a folder (predict writes "
            "<name>.png and <name>_overlay.jpg per image there); give a new or empty folder"
        )
    source = Path(source)
    if source.is_dir():
        inputs, out = source.resolve(), out_dir.resolve()
        if out == inputs or out in inputs.parents:
            where = "is" if out == inputs else "contains"
            raise ValueError(
                f"output={out_dir} {where} the input folder {source}: predict would write its "
                "label PNGs and overlays among the input images (over same-named ones) and read "
                "them as inputs next time; give another output folder, e.g. output=<input>_pred"
            )
    if not out_dir.is_dir():
        return
    taken = sorted(name for name in planned if (out_dir / name).exists())
    if taken:
        shown = ", ".join(taken[:SHOWN_COLLISIONS])
        more = f" and {len(taken) - SHOWN_COLLISIONS} more" if len(taken) > SHOWN_COLLISIONS else ""
        raise FileExistsError(
            f"output folder {out_dir} already holds {len(taken)} file(s) this run would write "
            f"({shown}{more}): predict never overwrites files it did not create in this run; "
            "give a new or empty output folder, or delete those files"
        )


def _write(
    stem: str,
    image: np.ndarray,
    labels: np.ndarray,
    out_dir: Path,
    alpha: float,
    classes: ClassInfo,
) -> None:
    label_path, overlay_path = out_dir / f"{stem}.png", out_dir / f"{stem}_overlay.jpg"
    try:
        save_label_png(label_path, labels, classes)
        Image.fromarray(overlay(image, labels, classes, alpha=alpha)).save(overlay_path, quality=90)
    except OSError as err:  # never leave a truncated file that looks like a result
        label_path.unlink(missing_ok=True)
        overlay_path.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise ValueError(
                f"cannot write {label_path}: {err.strerror}; its partial files were removed (the "
                f"images written before it in {out_dir} are complete). Free disk space, or give "
                "another output= folder"
            ) from err
        raise


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Predict every image of ``cfg.input`` into ``cfg.output``; returns the summary."""
    with torchrun_ranks(resolve_device(str(cfg.predict.device))) as ranks:
        return _predict(cfg, ranks)


def _predict(cfg: DictConfig, ranks: Ranks) -> dict[str, Any]:
    opts = cfg.predict
    batch_size = check_batch_size(opts.batch_size, "predict.batch_size")
    if not 0.0 <= float(opts.alpha) <= 1.0:
        raise ValueError(f"predict.alpha must be in [0, 1], got {opts.alpha}")
    paths = list_images(cfg.input)
    stems = output_stems(paths)  # from the whole list: the same names however it is shared out
    out_dir = Path(cfg.output)
    # Before any rank writes (agree_on_folder is a collective: every rank has checked by then).
    check_output(cfg.input, out_dir, planned_files(stems))
    ranks.agree_on_folder(out_dir, "output")
    device = ranks.device
    # predict.* keys, else the training data's defaults (e.g. Cityscapes slides)
    opened = open_for_inference(str(cfg.ckpt_path), opts, key="predict", device=device)
    classes = opened.classes
    out_dir.mkdir(parents=True, exist_ok=True)
    if ranks.is_writer:
        save_config(cfg, cfg.paths.output_dir)

    failures: list[dict[str, str]] = []
    written = 0
    # Headers are read on every rank (cheap), so all ranks cut the same batches.
    header_failures: list[dict[str, str]] = []
    sizes = _header_sizes(paths, header_failures)
    if ranks.is_writer:
        failures.extend(header_failures)  # listed once, not once per rank
    readable = list(sizes)
    same_size = same_size_batches(
        readable, [sizes[i] for i in readable], batch_size, key="predict.batch_size"
    )
    loader = same_size_loader(
        InputImages(paths, sizes), same_size, rank=ranks.rank, world_size=ranks.world_size,
        pin_memory=device.type == "cuda", collate_fn=_collate,
    )  # fmt: skip
    mine = loader_images(loader)  # this rank's images
    batches = track(
        loader, "predicting", mine, count=lambda b: len(b["index"]), enabled=ranks.is_writer
    )
    for batch in batches:
        labels = _labels(opened.net, batch["image"], opened.settings, device)
        images = batch["image"].permute(0, 2, 3, 1).numpy()  # (B, H, W, 3), as decoded
        for index, error, image, label in zip(
            batch["index"].tolist(), batch["error"], images, labels, strict=True
        ):
            if error:
                _fail(paths[index], error, failures)
                continue
            _write(stems[paths[index]], image, label, out_dir, float(opts.alpha), classes)
            written += 1
    counts = ranks.gather((written, failures))
    written = sum(n for n, _ in counts)
    failures = sorted((f for _, fs in counts for f in fs), key=lambda f: f["path"])
    summary = {"input": str(cfg.input), "output": str(out_dir), "images": len(paths),
               "written": written, "failed": len(failures), "failures": failures,
               "backend": opened.backend.backend, "class_names": list(classes.names),
               "palette": [list(c) for c in classes.palette or ()]}  # fmt: skip
    if ranks.is_writer:
        save_json(summary, out_dir / "summary.json")
        shown = [k for k in range(classes.num_classes) if k != classes.background]
        legend = save_legend(out_dir / "legend.png", shown, classes)  # the overlays' colours
        echo(
            f"predict: {written} written, {len(failures)} failed -> {out_dir} (colours: {legend})",
            *(f"  failed: {f['path']}: {f['error']}" for f in failures),
        )
    if failures:
        raise PredictFailures(summary)
    return summary


__all__ = [
    "InputImages",
    "PredictFailures",
    "check_output",
    "list_images",
    "planned_files",
    "predict",
]
