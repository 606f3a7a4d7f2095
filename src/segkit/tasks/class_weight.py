"""``module.class_weight`` of a training run: resolved once, printed, saved in the run folder.

``null`` -> the plain loss; a list -> those weights (checked: one finite weight >= 0 per class);
``median_frequency`` -> computed from the train split's masks (``segkit.data.class_weight``,
cached under ``<paths.root_dir>/.cache/class_weight/``, keyed by the split's content: the data
root may be read-only). A resume takes the checkpoint's weights, whatever the config says.
The weights go to ``SegModule(class_weight=...)`` and to ``<run dir>/class_weight.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from segkit.checks import check_class_weight
from segkit.data import SegDataModule
from segkit.data.class_weight import class_pixel_stats, median_frequency
from segkit.tasks._common import config_node

log = logging.getLogger(__name__)

FILE = "class_weight.json"


def cache_dir(cfg: DictConfig) -> Path:
    """Where split statistics are cached: ``<paths.root_dir>/.cache/class_weight``."""
    return Path(cfg.paths.root_dir) / ".cache" / "class_weight"


def resolve_class_weight(
    cfg: DictConfig,
    datamodule: SegDataModule,
    *,
    resumed: list[float] | None | bool = False,
) -> list[float] | None:
    """The class weights of this run (None: unweighted), written to ``class_weight.json`` in
    ``paths.output_dir`` and logged. ``resumed``: the checkpoint's weights (a list or None) when
    resuming, ``False`` otherwise."""
    requested = cfg.module.get("class_weight")
    names = datamodule.classes.names
    record: dict[str, Any]
    if resumed is not False:
        weights = resumed if resumed is None else [float(w) for w in resumed]
        record = {"source": "checkpoint", "ckpt_path": str(cfg.ckpt_path)}
        differs = (requested is None) != (weights is None) or (
            requested not in (None, "median_frequency") and list(requested) != weights
        )
        if differs:
            log.warning(
                "module.class_weight=%s is not applied on resume: the checkpoint's weights (%s) "
                "are kept; start a new run to change them",
                requested,
                weights or "none",
            )
    else:
        with config_node("module"):  # SegModule's class_weight
            checked = check_class_weight(requested, datamodule.num_classes)
        if checked == "median_frequency":
            weights, record = _median_frequency(cfg, datamodule)
        else:
            weights, record = checked, {"source": "config"}  # type: ignore[assignment]
    if weights is None:
        return None
    record = {
        "class_weight": dict(zip(names, weights, strict=True)),
        "weights": weights,
        **record,
    }
    output = Path(cfg.paths.output_dir) / FILE
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n")
    listed = ", ".join(f"{name} {w:.4f}" for name, w in zip(names, weights, strict=True))
    log.info("class weights (%s): %s -> %s", record["source"], listed, output)
    return weights


def _median_frequency(
    cfg: DictConfig, datamodule: SegDataModule
) -> tuple[list[float], dict[str, Any]]:
    split = datamodule.dataset.train_split
    dataset = datamodule.dataset.split(split)
    stats = class_pixel_stats(
        dataset, cache_dir=cache_dir(cfg), workers=max(1, int(datamodule.num_workers))
    )
    frequencies = stats.frequencies()
    with config_node("module"):  # module.class_weight=median_frequency cannot be derived
        weights = median_frequency(frequencies, datamodule.classes.names)
    how = f"counted in {stats.seconds:.1f} s" if stats.seconds else "from the cache"
    log.info(
        "module.class_weight=median_frequency over the %d %s images of %s (%s)",
        stats.images,
        split,
        datamodule.classes.source,
        how,
    )
    return weights, {
        "source": "median_frequency",
        "definition": "w_c = median(f) / f_c, f_c = pixels of c / labelled pixels of the "
        "images where c appears (void excluded)",
        "split": split,
        "images": stats.images,
        "frequencies": frequencies,
        "images_present": list(stats.images_present),
        "key": stats.key,
        "seconds": stats.seconds,
    }


__all__ = ["FILE", "cache_dir", "resolve_class_weight"]
