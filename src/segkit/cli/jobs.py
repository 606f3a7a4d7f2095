"""What the tasks' jobs share around their work: config and JSON saving (rank zero), ``instantiate``
with a builder's user error let through, groups of callbacks / loggers, the data module with its
class count filled in, a task's log outside a Hydra job, and the user-error exit of the scripts
that are not Hydra tasks."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning_utilities.core.rank_zero import rank_zero_only  # = pytorch_lightning's, ~6 s lighter
from omegaconf import DictConfig, OmegaConf, open_dict

from segkit.cli.hints import hydra_full_key
from segkit.cli.launch import USER_ERRORS, user_message
from segkit.cli.preflight import config_node as config_node  # for the tasks
from segkit.cli.preflight import mark_node
from segkit.runs import CONFIG_FILE, write_json, write_text_atomic

if TYPE_CHECKING:
    from segkit.data import SegDataModule

#: Hydra's job-log line format (its default ``hydra/job_logging``), for logs written without Hydra.
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"

log = logging.getLogger(__name__)

if not hasattr(rank_zero_only, "rank"):
    # Lightning sets this when imported; light tasks (analyze, evaluate) may not import it. Same env
    # variables as Lightning's own rank detection.
    rank_zero_only.rank = int(
        next((os.environ[k] for k in ("RANK", "LOCAL_RANK", "SLURM_PROCID") if k in os.environ), 0)
    )
T = TypeVar("T")


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python containers (what checkpoints and JSON hold)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]


@rank_zero_only
def save_config(cfg: DictConfig, output_dir: str | Path) -> Path:
    """Write the resolved composed config to ``<output_dir>/config.yaml``."""
    path = Path(output_dir) / CONFIG_FILE
    write_text_atomic(path, OmegaConf.to_yaml(cfg, resolve=True))
    return path


@rank_zero_only
def save_json(data: dict[str, Any], path: str | Path) -> None:
    """``segkit.runs.write_json`` on global rank zero only."""
    write_json(data, path)


def instantiate_user(cfg: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets a builder's user error (ValueError, ...) through as
    itself, so its one-line message is not buried in Hydra's InstantiationException; the error is
    marked with the config node Hydra was building (its ``full_key``), which the command line
    prints before the message (``model: output_stride must be ...``)."""
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, USER_ERRORS):
            mark_node(err.__cause__, hydra_full_key(err))
            raise err.__cause__ from None
        raise


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a name -> config mapping (callbacks, loggers);
    entries set to null are skipped."""
    if cfg is None:
        return []
    if not isinstance(cfg, DictConfig):
        raise ValueError(f"expected a mapping of name -> config, got {type(cfg).__name__}")
    objects = []
    for name, entry in cfg.items():
        if entry is None:
            continue
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            raise ValueError(f"entry {name!r} has no _target_; give it one or set it to null")
        objects.append(instantiate_user(entry, _convert_="all"))
    return objects


def build_datamodule(cfg: DictConfig) -> SegDataModule:
    """``cfg.data`` instantiated; a null ``data.num_classes`` is set in ``cfg`` to the dataset's
    count, so ``${data.num_classes}`` (model, module) and the saved config carry the number.
    Cheap: no image is read (a folder dataset reads its classes file)."""
    datamodule = instantiate_user(cfg.data, _convert_="all")
    if cfg.data.get("num_classes") is None:
        with open_dict(cfg):
            cfg.data.num_classes = int(datamodule.num_classes)
        log.info(
            "data.num_classes=%d, from the dataset's classes (%s)",
            datamodule.num_classes,
            datamodule.classes.source or type(datamodule.dataset).__name__,
        )
    return datamodule


@contextlib.contextmanager
def task_log(folder: str | Path, task: str) -> Iterator[Path]:
    """``<folder>/<task>.log`` for a task run outside a Hydra job (the demo's designs,
    ``run_comparison.py``, ``compare --fill``): what Hydra's job logging gives a script's run, so
    every run folder holds its log. It receives the run's INFO records, starts with the task and
    its folder, and ends with the one-line error (a bug: its traceback) when the run fails. While
    it is open the root logger passes INFO; a console that had no handler keeps showing warnings
    and errors only, as Python's last-resort handler did."""
    path = Path(folder) / f"{task}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.INFO)
    added = [handler]
    if not root.handlers:
        console = logging.StreamHandler()
        console.setLevel(logging.WARNING)
        added.append(console)
    level = root.level
    for h in added:
        root.addHandler(h)
    if level > logging.INFO:  # NOTSET (0) passes everything already
        root.setLevel(logging.INFO)
    try:
        log.info("segkit %s; run folder: %s", task, folder)
        yield path
    except USER_ERRORS as err:
        handler.handle(_record(f"error: {user_message(err)}"))
        raise
    except Exception as err:
        handler.handle(_record(f"{type(err).__name__}: {err}", err))
        raise
    finally:
        root.setLevel(level)
        for h in added:
            root.removeHandler(h)
        handler.close()


def _record(line: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(__name__, logging.ERROR, __file__, 0, line, None, exc_info)


def exit_on_user_error(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator for the entry points that are *not* Hydra tasks (``scripts/compare.py``,
    ``demo.py``, ``run_comparison.py``): a user error prints its one message and exits with 1
    instead of a stack trace (set SEGKIT_TRACEBACK=1 to see the traceback). Hydra tasks use
    ``segkit.cli.launch.run_task`` instead, which raises, so that a multirun survives one bad job."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            if os.environ.get("SEGKIT_TRACEBACK") == "1":
                raise
            print(f"error: {user_message(err)}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper
