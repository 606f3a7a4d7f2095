"""``predict`` task: a label PNG and an overlay JPEG for each input image, in the colours of the
checkpoint's classes (``checkpoint["segkit"]["classes"]``, the training dataset's), and a legend.

Images of any size: they are batched as evaluate batches them (``segkit.data.batching``): grouped by
``(H, W)`` from the file headers, so a batch holds equal-sized images and nothing is padded (padding
would change what the network computes near the border and what image pooling sees); each label map
equals a batch-1 forward. A folder of mixed sizes therefore runs at smaller batches. Unreadable
images are reported and skipped; when any was, ``predict`` raises ``PredictFailures`` after writing
everything else (the script then exits 1).

``predict.backend=onnxruntime`` runs the network exported once to ONNX (``segkit.evaluation.onnx_backend``).

Under ``torchrun --nproc-per-node=N`` (``tasks.distributed``) the batches are dealt out in turn
(``batching.shard``) and each process writes its images' files (each image once); rank 0 gathers
the counts and failures into summary.json.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

from segkit.checks import check_batch_size
from segkit.constants import IMAGE_SUFFIXES
from segkit.data import read_image
from segkit.data.batching import same_size_batches, shard
from segkit.data.classes import ClassInfo
from segkit.data.collate import stack_collate
from segkit.data.io import read_image_size
from segkit.evaluation.inference import InferenceSettings, infer
from segkit.evaluation.onnx_backend import inference_model
from segkit.evaluation.overlay import overlay, save_label_png, save_legend
from segkit.progress import track
from segkit.tasks._common import config_node, save_config, save_json
from segkit.tasks.checkpoints import load_trained, resolve_device
from segkit.tasks.cli import echo
from segkit.tasks.distributed import Ranks, torchrun_ranks
from segkit.tasks.inference_opts import backend_settings, checkpoint_digest, inference_settings

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


def _batches(
    paths: Sequence[Path], batch_size: int, failures: list[dict[str, str]]
) -> list[list[Path]]:
    """``paths`` in same-size batches (``same_size_batches``, sizes from the file headers); an
    unreadable header goes to ``failures``."""
    readable, sizes = [], []
    for path in paths:
        try:
            sizes.append(read_image_size(path))
            readable.append(path)
        except (ValueError, FileNotFoundError, OSError) as err:
            _fail(path, err, failures)
    batches = same_size_batches(range(len(readable)), sizes, batch_size, key="predict.batch_size")
    return [[readable[i] for i in batch] for batch in batches]


def _read(paths: Sequence[Path], failures: list[dict[str, str]]) -> list[tuple[Path, np.ndarray]]:
    """Decode ``paths``; unreadable ones go to ``failures`` (reported, not raised)."""
    loaded = []
    for path in paths:
        try:
            loaded.append((path, read_image(path)))
        except (ValueError, FileNotFoundError, OSError) as err:
            _fail(path, err, failures)
    return loaded


def _by_size(loaded: list[tuple[Path, np.ndarray]]) -> list[list[tuple[Path, np.ndarray]]]:
    """``loaded`` split by decoded ``(H, W)``: one group, unless a file's header gave another
    size than its decoded image (then no image is padded either)."""
    groups: dict[tuple[int, ...], list[tuple[Path, np.ndarray]]] = {}
    for item in loaded:
        groups.setdefault(item[1].shape[:2], []).append(item)
    return list(groups.values())


def _fail(path: Path, err: Exception, failures: list[dict[str, str]]) -> None:
    # The reader's message speaks of datasets and split lists; here a plain reason is clearer.
    reason = "missing" if isinstance(err, FileNotFoundError) else "unreadable or corrupt"
    log.warning("skipping %s: %s image", path, reason)
    failures.append({"path": str(path), "error": f"{reason} image"})


def predict_batch(
    model: Any, images: Sequence[np.ndarray], settings: InferenceSettings, device: Any
) -> list[np.ndarray]:
    """Label maps (H, W) uint8 for equal-sized RGB uint8 images (H, W, 3), in one forward pass.

    Images of different sizes are refused (``stack_collate``): padding would change their labels.
    """
    samples = [
        {"image": im, "mask": np.zeros(im.shape[:2], np.uint8), "id": str(i)}
        for i, im in enumerate(images)
    ]
    batch = stack_collate(samples)["image"].to(device)
    labels = infer(model, batch, settings).argmax(1).to(torch.uint8).cpu().numpy()
    return list(labels)


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
    backend = backend_settings(opts, "predict")
    paths = list_images(cfg.input)
    stems = output_stems(paths)  # from the whole list: the same names however it is shared out
    out_dir = Path(cfg.output)
    # Before any rank writes (agree_on_folder is a collective: every rank has checked by then).
    check_output(cfg.input, out_dir, planned_files(stems))
    ranks.agree_on_folder(out_dir, "output")
    device = ranks.device
    digest = checkpoint_digest(str(cfg.ckpt_path), backend)
    trained = load_trained(cfg.ckpt_path, output_stride=opts.get("output_stride"))
    classes = trained.classes
    # predict.* keys, else the training data's defaults (e.g. Cityscapes slides)
    data_defaults = (trained.cfg.get("data") or {}).get("inference")
    settings = inference_settings(opts, data_defaults, trained=trained.cfg, key="predict")
    with config_node("predict"):  # the backend's settings are its keys
        net = inference_model(
            trained.model, cfg.ckpt_path, device=device, settings=backend, loaded_sha256=digest
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    if ranks.is_writer:
        save_config(cfg, cfg.paths.output_dir)

    failures: list[dict[str, str]] = []
    written = 0
    # Headers are read on every rank (cheap), so all ranks cut the same batches.
    header_failures: list[dict[str, str]] = []
    batches = _batches(paths, batch_size, header_failures)
    if ranks.is_writer:
        failures.extend(header_failures)  # listed once, not once per rank
    mine = shard(batches, ranks.rank, ranks.world_size)
    total = sum(map(len, mine))
    for batch in track(mine, "predicting", total, count=len, enabled=ranks.is_writer):
        group = _read(batch, failures)
        for sized in _by_size(group):  # equal unless a header lied about the size
            labels = predict_batch(net, [im for _, im in sized], settings, device)
            for (path, image), label in zip(sized, labels, strict=True):
                _write(stems[path], image, label, out_dir, float(opts.alpha), classes)
                written += 1
    counts = ranks.gather((written, failures))
    written = sum(n for n, _ in counts)
    failures = sorted((f for _, fs in counts for f in fs), key=lambda f: f["path"])
    summary = {"input": str(cfg.input), "output": str(out_dir), "images": len(paths),
               "written": written, "failed": len(failures), "failures": failures,
               "backend": backend.backend, "class_names": list(classes.names),
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
    "PredictFailures",
    "check_output",
    "list_images",
    "planned_files",
    "predict",
    "predict_batch",
]
