"""Pre-flight check of a composed config: the builders' own rules, before anything heavy is imported.

``preflight(task, cfg)`` runs in the Hydra job before ``segkit.tasks.<task>`` (and with it torch,
Lightning, timm, albumentations) is imported, so a bad value costs well under a second instead of
the import. It holds no rule of its own: it only routes config values to the functions of
``segkit.checks`` that the constructors call with the same values (``tests/cli/test_preflight.py``
checks, value by value, that both refuse with the same message). A value whose rule needs the built
object (e.g. an FCN variant against the output stride stored in a checkpoint) is left to the builder.

The message is the constructor's, in its Python argument names; the pre-flight marks it with the
config node it checked (:func:`config_node`), as ``instantiate`` would have (Hydra's ``full_key``),
so the command line prints the same ``<node>: <message>`` line whichever of the two refused.

Imports: omegaconf, ``segkit.checks`` and the standard-library ``segkit.data.camvid_layout``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from omegaconf import DictConfig, OmegaConf

from segkit.checks import (
    check_batch_size,
    check_checkpoint_file,
    check_class_weight,
    check_dataset_node,
    check_fcn_variant,
    check_image_size,
    check_lr_schedule,
    check_num_workers,
    check_output_stride,
    resolve_voc_dir,
)
from segkit.data.camvid_layout import check_root as check_camvid_root

#: The data roots refused before torch loads: the dataset's ``_target_`` -> its standard-library
#: root rule (the one its ``split`` applies first; the synthetic set is generated when missing).
ROOT_CHECKS: dict[str, Callable[[str], object]] = {
    "segkit.data.VOC": resolve_voc_dir,
    "segkit.data.CamVid": check_camvid_root,
}

#: ``_target_`` of the FCN builder (the one model whose variant depends on the output stride).
FCN_TARGET = "segkit.models.fcn"


#: Tasks whose model comes from ``ckpt_path`` (its stored config), each with the key that
#: re-dilates the trained model (the one model setting these tasks take).
CHECKPOINT_TASKS: dict[str, str | None] = {
    "evaluate": "eval.output_stride",
    "predict": "predict.output_stride",
    "export": "export.output_stride",
    "analyze": "analyze.output_stride",
    "explore": None,
}
#: Config groups (and their keys) a checkpoint decides: the network, and for analyze (whose data
#: group only sizes the head) the classes.
MODEL_ROOTS: dict[str, tuple[str, ...]] = {"analyze": ("model", "backbone", "data")}


def _override_root(override: str) -> str:
    """``+backbone@model.backbone=x`` -> ``backbone``; ``model.aspp_channels=8`` -> ``model``."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key.split("@", 1)[0].split("/", 1)[0].split(".", 1)[0]


def ignored_by_checkpoint(task: str, override: str) -> str | None:
    """The one-line refusal of ``override`` when ``task`` takes its model from a checkpoint and
    the override would change that model (it would be recorded but never applied)."""
    if task not in CHECKPOINT_TASKS:
        return None
    roots = MODEL_ROOTS.get(task, ("model", "backbone"))
    if _override_root(override) not in roots:
        return None
    stride_key = CHECKPOINT_TASKS[task]
    alternative = f"; {stride_key}=8|16|32 re-dilates the trained one" if stride_key else ""
    return (
        f"{override} cannot apply with ckpt_path: {task} rebuilds the model (and its classes) "
        f"from the config stored in the checkpoint, so it would be ignored. Drop it (another "
        f"model needs its own training{alternative})"
    )


class CommandLineError(ValueError):
    """A user error about the command line itself (an override a task would ignore, a key its
    ``_target_`` does not take): its message names the config keys as typed."""


#: The attribute a user error carries once the config node it came from is known.
_NODE_ATTRIBUTE = "segkit_config_node"


@contextmanager
def config_node(node: str) -> Iterator[None]:
    """Marks an exception raised inside as coming from config node ``node`` (``model``,
    ``data.dataset``, ``eval``): the command line prints it as ``<node>: <message>``, the message
    naming the Python arguments of that node's target, i.e. its keys. A mark already on the
    exception stays: the innermost node is the most precise."""
    try:
        yield
    except Exception as err:
        mark_node(err, node)
        raise


def mark_node(err: BaseException, node: str | None) -> None:
    """Mark ``err`` as coming from config node ``node`` unless it is marked already."""
    if node and error_node(err) is None:
        setattr(err, _NODE_ATTRIBUTE, node)


def error_node(err: BaseException) -> str | None:
    """The config node ``err`` was marked with (:func:`config_node`); None when not known."""
    return getattr(err, _NODE_ATTRIBUTE, None)


def check_checkpoint_overrides(task: str, cfg: DictConfig, overrides: Sequence[str]) -> None:
    """ValueError for a model / backbone override (group or key) given with ``ckpt_path``."""
    if not cfg.get("ckpt_path"):
        return
    for override in overrides:
        message = ignored_by_checkpoint(task, override)
        if message is not None:
            raise CommandLineError(message)


def check_required(cfg: DictConfig) -> None:
    """Every ``???`` value of the config was given (``ckpt_path=...`` for evaluate, predict...)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        given = " ".join(f"{key}=..." for key in missing)
        raise ValueError(f"required value(s) not given: {', '.join(missing)} (add {given})")


def check_model(model: DictConfig) -> None:
    """``model.output_stride`` and, for FCN, ``model.fcn_variant`` (``segkit.models`` builders).
    Keys the config leaves out get the builder's default, which is not checked here."""
    if "output_stride" not in model:
        return
    with config_node("model"):
        output_stride = check_output_stride(model.output_stride)
        if model.get("_target_") == FCN_TARGET and "fcn_variant" in model:
            check_fcn_variant(model.fcn_variant, output_stride)


def check_data(data: DictConfig) -> None:
    """What ``SegDataModule(...)`` and its ``setup`` refuse first: batch sizes, worker count,
    and a data root its dataset's rule refuses (:data:`ROOT_CHECKS`; VOC: no
    ``VOCdevkit/VOC2012``)."""
    with config_node("data"):
        for key in ("batch_size", "val_batch_size"):
            if key in data:
                check_batch_size(data[key], key)
        if "num_workers" in data:
            check_num_workers(data.num_workers, "num_workers")
        dataset = data.get("dataset")
        if "dataset" in data:
            check_dataset_node(dataset)
    if isinstance(dataset, DictConfig) and dataset.get("root") is not None:
        check_root = ROOT_CHECKS.get(str(dataset.get("_target_")))
        if check_root is not None:
            with config_node("data.dataset"):
                check_root(dataset.root)


def horizon(trainer: DictConfig) -> int | None:
    """The schedule horizon ``SegModule`` will get (Lightning's ``estimated_stepping_batches``)
    when the config alone decides it: ``trainer.max_steps`` with ``max_epochs=-1`` and no
    ``fast_dev_run``; None when it depends on the data (epochs) or on Lightning's debug modes."""
    max_steps = trainer.get("max_steps", -1)
    if trainer.get("max_epochs", -1) != -1 or trainer.get("fast_dev_run"):
        return None
    return int(max_steps) if max_steps is not None and int(max_steps) != -1 else None


def check_schedule(module: DictConfig, trainer: DictConfig) -> None:
    """The poly schedule's settings against the number of steps (``segkit.training.poly_lr``)."""
    steps = horizon(trainer)
    scheduler = module.get("scheduler")
    keys = ("warmup_steps", "warmup_start_factor")
    if steps is None or scheduler is None or any(key not in scheduler for key in keys):
        return
    with config_node("module.scheduler"):
        check_lr_schedule(
            max_steps=steps,
            warmup_steps=scheduler.warmup_steps,
            warmup_start_factor=scheduler.warmup_start_factor,
        )


def _checkpoint_options(cfg: DictConfig, opts: DictConfig | None, node: str) -> None:
    if cfg.get("ckpt_path"):
        check_checkpoint_file(cfg.ckpt_path)
    if opts is not None and opts.get("output_stride") is not None:
        with config_node(node):  # the task re-dilates the trained model with it
            check_output_stride(opts.output_stride)


def _train(cfg: DictConfig) -> None:
    check_model(cfg.model)
    check_data(cfg.data)
    check_schedule(cfg.module, cfg.trainer)
    num_classes = cfg.data.get("num_classes") if "data" in cfg else None
    with config_node("module"):
        check_class_weight(cfg.module.get("class_weight"), num_classes)
    _checkpoint_options(cfg, None, "")


def _evaluate(cfg: DictConfig) -> None:
    _checkpoint_options(cfg, cfg.eval, "eval")
    with config_node("eval"):  # segkit.evaluation.eval_loader's batch_size
        check_batch_size(cfg.eval.batch_size, "batch_size")
    if cfg.eval.get("num_workers") is not None:  # the task's own key (tasks.evaluate)
        check_num_workers(cfg.eval.num_workers, "eval.num_workers")
    if cfg.get("data") and "_target_" in cfg.data:  # a data group chosen on the command line
        check_data(cfg.data)
    elif cfg.get("data") and cfg.data.get("num_workers") is not None:  # replaces the stored value
        with config_node("data"):
            check_num_workers(cfg.data.num_workers, "num_workers")


def _predict(cfg: DictConfig) -> None:
    _checkpoint_options(cfg, cfg.predict, "predict")
    check_batch_size(cfg.predict.batch_size, "predict.batch_size")  # the task's own key


def _export(cfg: DictConfig) -> None:
    _checkpoint_options(cfg, cfg.export, "export")


#: ``analyze.*`` input sizes -> their smallest side (``segkit.analysis.analyze_model``'s rule).
ANALYZE_SIZES: dict[str, int] = {"input_size": 8, "erf_input_size": 3}


def _analyze(cfg: DictConfig) -> None:
    _checkpoint_options(cfg, cfg.analyze if cfg.get("ckpt_path") else None, "analyze")
    if not cfg.get("ckpt_path"):
        check_model(cfg.model)
    for key, minimum in ANALYZE_SIZES.items():
        value = cfg.analyze.get(key)
        if value is not None or key == "input_size":
            with config_node("analyze"):  # segkit.analysis.analyze_model's arguments
                check_image_size(value, key, minimum=minimum)


def _inspect_data(cfg: DictConfig) -> None:
    check_data(cfg.data)


def _explore(cfg: DictConfig) -> None:
    """Bad checkpoints are shown in the explorer's page (segkit.explore.ui), not refused here."""


#: Task name (``segkit.tasks.<name>``) -> its pre-flight check.
CHECKS: dict[str, Callable[[DictConfig], None]] = {
    "train": _train,
    "evaluate": _evaluate,
    "predict": _predict,
    "export": _export,
    "analyze": _analyze,
    "inspect_data": _inspect_data,
    "explore": _explore,
}


def preflight(task: str, cfg: DictConfig, overrides: Sequence[str] = ()) -> None:
    """Refuse ``cfg`` for ``task`` with the builders' own message if a checked value is invalid,
    or an override of the command line (``overrides``) that the task would ignore."""
    check_checkpoint_overrides(task, cfg, overrides)
    check_required(cfg)
    CHECKS[task](cfg)


__all__ = [
    "CHECKPOINT_TASKS",
    "CHECKS",
    "CommandLineError",
    "check_checkpoint_overrides",
    "config_node",
    "error_node",
    "mark_node",
    "check_data",
    "ignored_by_checkpoint",
    "check_model",
    "check_schedule",
    "horizon",
    "preflight",
]
