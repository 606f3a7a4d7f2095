"""``evaluate`` task: score a checkpoint on a data split; write metrics.json, plots and overlays.

The model and its classes (names, colours) come from the checkpoint (``tasks.checkpoints.load_trained``). The data
config is the checkpoint's as well unless the command line chose a data group (``data=voc``), in
which case that group is used entirely; ``data.root=...`` / ``data.num_workers=...`` alone replace
only those keys of the stored data config (see configs/evaluate.yaml).

Under ``torchrun --nproc-per-node=N`` (``tasks.distributed``) the batches are shared out among the
N processes (each image evaluated once), the matrices are reduced across them, and rank 0 writes
the run folder: the same metrics as one process.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from segkit.checks import check_num_workers
from segkit.data.batching import loader_images
from segkit.data.classes import ClassInfo
from segkit.data.split import SegDataset, SegSplit
from segkit.evaluation.batching import eval_loader
from segkit.evaluation.evaluator import EvalResult, Evaluator, best_and_worst
from segkit.evaluation.inference import InferenceSettings, resolved_precision
from segkit.evaluation.onnx_backend import inference_model
from segkit.evaluation.report import (
    metrics_dict,
    plot_confusion,
    plot_overlays,
    plot_trimap,
    print_table,
)
from segkit.progress import track
from segkit.runs import IMAGE_CONFUSION_FILE, METRICS_FILE, builder_name, write_json
from segkit.tasks._common import config_node, instantiate_user, save_config
from segkit.tasks.checkpoints import load_trained, resolve_device, stored_data
from segkit.tasks.distributed import Ranks, torchrun_ranks
from segkit.tasks.inference_opts import backend_settings, checkpoint_digest, inference_settings

log = logging.getLogger(__name__)


#: Keys of evaluate.yaml's placeholder data node that may replace single stored data keys.
DATA_OVERRIDE_KEYS: tuple[str, ...] = ("root", "num_workers")


def data_config(cfg: DictConfig, stored_cfg: dict[str, Any]) -> dict[str, Any]:
    """The data config to evaluate on: a data group chosen on the command line, else the
    checkpoint's stored one (:func:`~segkit.tasks.checkpoints.stored_data`) with ``data.root`` /
    ``data.num_workers`` replaced when given (the root of its dataset node too)."""
    given = OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") else {}
    if "_target_" in given:
        return given
    out = dict(stored_data(stored_cfg, path=cfg.ckpt_path))
    out.update({k: given[k] for k in DATA_OVERRIDE_KEYS if given.get(k) is not None})
    if given.get("root") is not None:
        out["dataset"] = {**out["dataset"], "root": given["root"]}
    return out


def _check_classes(data: ClassInfo, model: ClassInfo, path: str) -> None:
    """The evaluation data must have the checkpoint's class count; other names only warn (the
    checkpoint's names and colours are the ones reported)."""
    if data.num_classes != model.num_classes:
        raise ValueError(
            f"the evaluation data has {data.num_classes} classes (data.num_classes) but "
            f"checkpoint {path} was "
            f"trained with {model.num_classes}: evaluate on data with the same classes "
            "(e.g. drop the data=... override to use the checkpoint's own data config)"
        )
    if data.names != model.names:
        renamed = [f"{a}->{b}" for a, b in zip(model.names, data.names, strict=True) if a != b]
        log.warning(
            "the evaluation data names its classes differently from checkpoint %s (%s): "
            "reporting the checkpoint's names",
            path,
            ", ".join(renamed[:5]) + (", ..." if len(renamed) > 5 else ""),
        )


def _dataset(data_cfg: dict[str, Any], model: ClassInfo, path: str) -> SegDataset:
    """The dataset, once its classes fit the checkpoint's (and the synthetic set generated)."""
    dataset: SegDataset = instantiate_user(data_cfg["dataset"], _convert_="all")
    _check_classes(dataset.classes, model, path)
    dataset.prepare()  # synthetic data is generated here when missing
    return dataset


def _image_count(dataset: SegSplit, opts: DictConfig) -> int:
    """The first ``eval.limit`` images (all when null)."""
    if opts.get("limit") is None:
        return len(dataset)
    if int(opts.limit) < 1:
        raise ValueError(f"eval.limit must be >= 1 (or null for all images), got {opts.limit}")
    return min(int(opts.limit), len(dataset))


def _loader(
    dataset: SegSplit, count: int, opts: DictConfig, data_cfg: dict[str, Any], ranks: Ranks
) -> DataLoader:
    """This rank's batches over the first ``count`` images: at most ``eval.batch_size`` images of
    one size each (nothing padded: each image scored as if alone)."""
    workers = opts.get("num_workers")  # data.num_workers was checked by the data module
    workers = int(data_cfg.get("num_workers", 0) if workers is None else workers)
    check_num_workers(workers, "eval.num_workers")
    return eval_loader(
        dataset,
        batch_size=int(opts.batch_size),
        indices=range(count),
        num_workers=workers,
        pin_memory=ranks.device.type == "cuda",
        rank=ranks.rank,
        world_size=ranks.world_size,
    )


def drawn_predictions(evaluator: Evaluator, ranks: Ranks, ids: list[str]) -> dict[str, np.ndarray]:
    """The predictions the evaluation pass kept of the images ``ids`` (the drawn ones), from
    whichever rank evaluated each (a collective under torchrun: every rank calls it; only these
    few maps travel)."""
    mine = evaluator.kept_predictions(ids)
    if ranks.world_size == 1:
        return mine
    return {k: v for part in ranks.gather(mine) for k, v in part.items()}


def _overlay_rows(
    evaluator: Evaluator, dataset: SegSplit, result: EvalResult, best: list[str],
    worst: list[str], kept: dict[str, np.ndarray],
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:  # fmt: skip
    """The overlay grid's rows: each chosen image with the prediction the evaluation scored
    (``kept``); each row's title names the image and its mIoU."""
    miou = dict(zip(result.image_ids, result.image_miou, strict=True))
    rows = []
    for title, ids in (("best", best), ("worst", worst)):
        for image_id in ids:
            image, mask = dataset.load(dataset.ids.index(image_id))
            pred = kept.get(image_id)
            if pred is None:  # not expected (see evaluation.drawn): predict it once more
                log.warning("overlays: %s's prediction was not kept; predicting it again", image_id)
                batch = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).contiguous()
                pred = evaluator.predict(batch)[0].cpu().numpy()
            pred = pred[: mask.shape[0], : mask.shape[1]].astype(np.uint8)  # a padded batch's
            score = float(miou[image_id])
            score_text = "n/a" if np.isnan(score) else f"{100 * score:.1f} %"
            rows.append((f"{title}: {image_id} (mIoU {score_text})", image, mask, pred))
    return rows


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path``; returns the metrics.json document (written to disk by rank 0)."""
    with torchrun_ranks(resolve_device(str(cfg.eval.device))) as ranks:
        return _evaluate(cfg, ranks)


def _evaluate(cfg: DictConfig, ranks: Ranks) -> dict[str, Any]:
    opts = cfg.eval
    backend = backend_settings(opts, "eval")
    device = ranks.device
    output_dir = Path(cfg.paths.output_dir)
    ranks.agree_on_folder(output_dir, "paths.output_dir")
    path = str(cfg.ckpt_path)
    digest = checkpoint_digest(path, backend)
    trained = load_trained(path, output_stride=opts.get("output_stride"))
    stored, classes = trained.cfg, trained.classes
    data_cfg = data_config(cfg, stored)
    # eval.* keys, else the data's defaults; the numerics the run trained and validated with
    settings = inference_settings(opts, data_cfg.get("inference"), trained=stored, key="eval")
    data = _dataset(data_cfg, classes, path)
    dataset = data.split(str(opts.split))  # no augmentation
    with config_node("eval"):  # the backend's settings are its keys
        net = inference_model(
            trained.model, path, device=device, settings=backend, loaded_sha256=digest
        )
    if ranks.is_writer:
        save_config(cfg, output_dir)

    count = _image_count(dataset, opts)
    evaluator = Evaluator(
        net,
        num_classes=classes.num_classes,
        settings=settings,
        trimap_widths=list(opts.trimap_widths),
        device=device,
        image_ids=dataset.ids[:count],
        keep_best_worst=int(opts.num_overlays),
    )
    start = time.perf_counter()
    loader = _loader(dataset, count, opts, data_cfg, ranks)
    mine = loader_images(loader)  # this rank's images
    batches = track(
        loader, f"evaluating {opts.split}", mine, count=lambda b: len(b["id"]),
        enabled=ranks.is_writer,
    )  # fmt: skip
    result = evaluator.run(batches)
    seconds = time.perf_counter() - start  # ends with the reduction: the slowest rank's time
    if result.num_images != count:  # a contract of eval_loader + shard, checked where it matters
        raise RuntimeError(f"evaluated {result.num_images} of {count} images")
    best, worst = best_and_worst(result, int(opts.num_overlays))
    kept = drawn_predictions(evaluator, ranks, best + worst) if best or worst else {}
    run_settings = _settings(cfg, stored, data_cfg, settings, net, ranks, result, seconds)
    run_settings["dataset"] = data.name  # the group's name (data_cfg holds the object's node)
    metrics = metrics_dict(result, classes.names, run_settings, best=best, worst=worst)
    if not ranks.is_writer:
        return metrics
    _write_outputs(metrics, result, classes.names, output_dir)
    if best or worst:
        rows = _overlay_rows(evaluator, dataset, result, best, worst, kept)
        plot_overlays(rows, classes, output_dir / "overlays.png")
    print_table(metrics)
    log.info("evaluation written to %s", output_dir)
    return metrics


def _settings(
    cfg: DictConfig,
    stored: dict[str, Any],
    data_cfg: dict[str, Any],
    settings: InferenceSettings,
    net: Any,
    ranks: Ranks,
    result: EvalResult,
    seconds: float,
) -> dict[str, Any]:
    model_cfg = stored.get("model", {})
    onnx_model = getattr(net, "path", None)
    return {
        "ckpt_path": str(cfg.ckpt_path),
        "model": builder_name(model_cfg) or "",
        "backbone": builder_name(model_cfg.get("backbone")) or "",
        "trained_output_stride": model_cfg.get("output_stride"),
        "output_stride": int(net.output_stride),
        "dataset": None,  # the dataset's name, set by the caller
        "data_root": str(data_cfg.get("root")),
        "split": str(cfg.eval.split),
        "mode": settings.mode,
        "window": settings.window if settings.mode == "slide" else None,
        "stride": settings.stride if settings.mode == "slide" else None,
        "scales": list(settings.scales),
        "flip": settings.flip,
        "batch_size": int(cfg.eval.batch_size),
        "device": str(ranks.device),
        "world_size": ranks.world_size,
        "backend": str(cfg.eval.get("backend", "torch")),
        "threads": torch.get_num_threads(),
        "precision": resolved_precision(net, ranks.device, settings),  # bf16 | 32, as run
        "channels_last": settings.channels_last,
        "onnx_model": None if onnx_model is None else str(onnx_model),
        "trimap_widths": [int(w) for w in cfg.eval.trimap_widths],
        "time_s": round(seconds, 3),
        "images_per_s": round(result.num_images / seconds, 3) if seconds > 0 else None,
    }


def _write_outputs(
    metrics: dict[str, Any], result: EvalResult, class_names: tuple[str, ...], output_dir: Path
) -> None:
    write_json(metrics, output_dir / METRICS_FILE)
    write_image_confusion(result, output_dir / IMAGE_CONFUSION_FILE)
    plot_confusion(result.confusion.numpy(), class_names, output_dir / "confusion_matrix.png")
    plot_trimap(metrics["trimap"]["widths"], metrics["trimap"]["mIoU"], output_dir / "trimap.png")


def write_image_confusion(result: EvalResult, path: Path) -> None:
    """Write the per-image matrices (``ids``, ``confusion`` (N, K, K), ``trimap_widths`` (W,),
    ``trimap_confusion`` (N, W, K, K)) and, when scored, the per-image boundary F1 (``bf`` (N,),
    ``bf_per_class`` (N, K), NaN = not scored) as a compressed npz, atomically (temporary name +
    rename)."""
    if result.image_confusion is None:
        return
    widths = sorted(result.trimap)
    trimap = result.image_trimap
    k = result.confusion.shape[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")  # np.savez adds .npz to a name without it
    boundary = {}
    if result.image_bf is not None:
        boundary = {"bf": result.image_bf_mean().numpy(), "bf_per_class": result.image_bf.numpy()}
    np.savez_compressed(
        tmp,
        **boundary,
        ids=np.asarray(result.image_ids, dtype=str),
        confusion=result.image_confusion.numpy(),
        trimap_widths=np.asarray(widths, dtype=np.int64),
        trimap_confusion=(
            trimap.numpy() if trimap is not None else np.zeros((len(result.image_ids), 0, k, k))
        ).astype(np.int64),
    )
    tmp.replace(path)


__all__ = ["DATA_OVERRIDE_KEYS", "IMAGE_CONFUSION_FILE", "data_config", "drawn_predictions",
           "evaluate", "write_image_confusion"]  # fmt: skip
