"""``explore`` task: a local web page (Gradio) comparing trained designs pixel by pixel.

``python scripts/explore.py ckpt_path=[A.ckpt,B.ckpt]`` (or a run / multirun folder: each run's
best checkpoint). A validation image of the first checkpoint's data (or an upload) runs through
every design; a click on a pixel shows per design the class and probability there, the
theoretical receptive-field box of that output pixel and its ERF. The page is
``segkit.explore.ui`` on ``segkit.explore.session``; this task loads the checkpoints and serves it.
Binds ``explore.host`` (default 127.0.0.1, or ``$GRADIO_SERVER_NAME``), port ``explore.port``
(or ``$GRADIO_SERVER_PORT``, else the first free from 7860); ``explore.share`` stays false
unless set (Gradio's ``GRADIO_SHARE`` is not read).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from segkit.cli.jobs import config_node
from segkit.cli.launch import echo
from segkit.explore.session import Session, ValSplit, find_checkpoints, load_designs
from segkit.explore.ui import Explorer, build_ui, require_gradio
from segkit.tasks.checkpoints import resolve_device

log = logging.getLogger(__name__)


def explore(cfg: DictConfig) -> dict[str, Any]:
    """Load the checkpoints, serve the page until interrupted (``explore.block=false``: return
    once it is up, for tests); returns ``url`` and the design names."""
    gr = require_gradio()
    opts = cfg.explore
    ckpts = (
        OmegaConf.to_container(cfg.ckpt_path)
        if OmegaConf.is_list(cfg.ckpt_path)
        else [cfg.ckpt_path]
    )
    paths, notices = find_checkpoints([str(p) for p in ckpts])
    with config_node("explore"):  # load_designs' precision and channels_last are its keys
        designs, more = load_designs(
            paths,
            resolve_device(str(opts.device)),
            precision=str(opts.get("precision", "auto")),
            channels_last=opts.get("channels_last"),
        )
    notices += more
    for note in notices:
        log.warning(note)
    if not designs:
        raise ValueError("no checkpoint could be loaded (ckpt_path): " + "; ".join(notices))
    val = None
    try:
        val = ValSplit(designs[0].cfg, limit=opts.get("num_val_images"))
    except (ValueError, FileNotFoundError) as err:
        notices.append(f"validation images unavailable ({err}): upload an image instead")
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    app = Explorer(Session(designs, notices), val=val, max_side=int(opts.max_side), out_dir=out_dir)
    demo = build_ui(app, gr).queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(
        server_name=opts.get("host"),
        server_port=opts.get("port"),
        share=bool(opts.share),
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(out_dir)],
    )
    echo(f"segkit explorer: {url} ({len(designs)} designs; Ctrl+C stops it)")
    if opts.get("block", True):
        try:
            demo.block_thread()
        finally:
            demo.close()
    return {"url": url, "designs": [d.name for d in designs], "app": app, "demo": demo}


__all__ = ["explore"]
