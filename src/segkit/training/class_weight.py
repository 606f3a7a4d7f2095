"""``module.class_weight`` of a training run: resolved once, printed, saved in the run folder.

``null`` -> the plain loss; a list -> those weights (checked: one finite weight >= 0 per class);
``median_frequency`` -> computed from the train split's masks (``segkit.data.class_weight``,
cached under ``<paths.root_dir>/.cache/class_weight/``, keyed by the split's content: the data
root may be read-only). A resume takes the checkpoint's weights, whatever the config says.
The weights go to ``SegModule(class_weight=...)`` and to ``<run dir>/class_weight.json``.
The train task passes the config values in; no config object is read here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from segkit.checks import check_class_weight
from segkit.data import SegDataModule
from segkit.data.class_weight import class_pixel_stats, median_frequency

log = logging.getLogger(__name__)

FILE = "class_weight.json"


def cache_dir(root_dir: str | Path) -> Path:
    """Where split statistics are cached: ``<paths.root_dir>/.cache/class_weight``."""
    return Path(root_dir) / ".cache" / "class_weight"


def resolve_class_weight(
    requested: Any,
    datamodule: SegDataModule,
    *,
    root_dir: str | Path,
    output_dir: str | Path,
    resumed: list[float] | None | bool = False,
    ckpt_path: str | Path | None = None,
) -> list[float] | None:
    """The class weights of this run (None: unweighted), written to ``class_weight.json`` in
    ``output_dir`` (``paths.output_dir``) and logged. ``requested``: ``module.class_weight``;
    ``root_dir``: ``paths.root_dir`` (the cache's); ``resumed``: the checkpoint's weights (a list
    or None) when resuming from ``ckpt_path``, ``False`` otherwise."""
    names = datamodule.classes.names
    record: dict[str, Any]
    if resumed is not False:
        weights = resumed if resumed is None else [float(w) for w in resumed]
        record = {"source": "checkpoint", "ckpt_path": str(ckpt_path)}
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
        checked = check_class_weight(requested, datamodule.num_classes)
        if checked == "median_frequency":
            weights, record = _median_frequency(cache_dir(root_dir), datamodule)
        else:
            weights, record = checked, {"source": "config"}  # type: ignore[assignment]
    if weights is None:
        return None
    record = {
        "class_weight": dict(zip(names, weights, strict=True)),
        "weights": weights,
        **record,
    }
    output = Path(output_dir) / FILE
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n")
    listed = ", ".join(f"{name} {w:.4f}" for name, w in zip(names, weights, strict=True))
    log.info("class weights (%s): %s -> %s", record["source"], listed, output)
    return weights


def _median_frequency(cache: Path, datamodule: SegDataModule) -> tuple[list[float], dict[str, Any]]:
    split = datamodule.dataset.train_split
    dataset = datamodule.dataset.split(split)
    stats = class_pixel_stats(dataset, cache_dir=cache, workers=max(1, int(datamodule.num_workers)))
    frequencies = stats.frequencies()
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
