"""The pre-flight check refuses exactly what the builders refuse, with the builders' own message.

Each case: one bad config value. ``preflight`` (run before anything heavy is imported) must raise,
and the real constructor or task that consumes the value must raise the same exception type with
the same message -- so the two cannot drift apart (the rules live once, in ``segkit.checks``).
Where the builder's error carries its config node (Hydra's ``full_key``, or the node a task marks),
the pre-flight's carries the same one, so the command line prints the same line. The last tests
check the other direction: every shipped recipe passes the pre-flight."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import DictConfig

from helpers.cli import SMALL, TINY
from segkit.cli.configs import CONFIG_DIR, compose_config
from segkit.cli.launch import user_message
from segkit.cli.preflight import error_node, horizon, preflight


def _compose(name: str, tmp_path: Path, *overrides: str) -> DictConfig:
    return compose_config(
        name, [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", *overrides]
    )


def _both_refuse(task: str, cfg: DictConfig, build) -> str:
    """preflight and ``build(cfg)`` raise the same exception type with the same message, and the
    same command-line line when the builder's error carries its config node; returns the
    pre-flight's line."""
    with pytest.raises((ValueError, FileNotFoundError)) as early:
        preflight(task, cfg)
    with pytest.raises((ValueError, FileNotFoundError)) as real:
        build(cfg)
    assert type(early.value) is type(real.value)
    assert str(early.value) == str(real.value)
    if error_node(real.value) is not None:
        assert user_message(early.value) == user_message(real.value)
    return user_message(early.value)


def _build_model(cfg: DictConfig):
    from segkit.cli.jobs import instantiate_user

    return instantiate_user(cfg.model)


def _build_data(cfg: DictConfig):
    from segkit.cli.jobs import instantiate_user  # as the tasks build it

    datamodule = instantiate_user(cfg.data, _convert_="all")
    datamodule.setup("fit")


def _train(cfg: DictConfig):
    from segkit.tasks.train import train

    return train(cfg)


@pytest.mark.parametrize(
    ("overrides", "build", "node"),
    [
        (["model.output_stride=12"], _build_model, "model"),
        (["model.output_stride=4", "model=deeplabv3"], _build_model, "model"),
        (["model=fcn", "model.output_stride=16", "model.fcn_variant=32s"], _build_model, "model"),
        (["model=fcn", "model.output_stride=8", "model.fcn_variant=16s"], _build_model, "model"),
        (["model=fcn", "model.fcn_variant=4s"], _build_model, "model"),
        (["data.batch_size=0"], _build_data, "data"),
        (["data.val_batch_size=-2"], _build_data, "data"),
        (["data.batch_size=1.5"], _build_data, "data"),
        (["data.num_workers=-1"], _build_data, "data"),
        (["data.dataset=coco"], _build_data, "data"),
        (["data=voc", "data.root=${paths.root_dir}/nowhere"], _build_data, "data.dataset"),
        (["data=voc_aug", "data.root=${paths.root_dir}/nowhere"], _build_data, "data.dataset"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else getattr(v, "__name__", v),
)
def test_preflight_and_builder_refuse_the_same(overrides, build, node, tmp_path: Path) -> None:
    base = [] if overrides[0].startswith("data=voc") else TINY  # TINY is synthetic-data only
    line = _both_refuse("train", _compose("train", tmp_path, *base, *overrides), build)
    assert line.startswith(f"{node}: ")
    assert not re.search(r"(?<![\w.])(model|data|trainer|module)\.\w", line.removeprefix(node))


@pytest.mark.parametrize(
    "overrides",
    [
        ["module.scheduler.warmup_steps=-1"],
        ["module.scheduler.warmup_start_factor=0"],
        ["trainer.max_steps=0"],
        ["ckpt_path=${paths.root_dir}/gone.ckpt"],  # resume from a missing checkpoint
    ],
    ids=" ".join,
)
def test_preflight_and_training_refuse_the_same(overrides, tmp_path: Path) -> None:
    """The schedule's horizon comes from Lightning at fit time: the real training must refuse."""
    _both_refuse("train", _compose("train", tmp_path, *TINY, *SMALL, *overrides), _train)


def test_the_horizon_is_lightnings(tmp_path: Path) -> None:
    """``horizon`` is the number of steps Lightning hands the schedule, or None when the config
    alone does not decide it (epochs, fast_dev_run)."""
    assert horizon(_compose("train", tmp_path, *TINY).trainer) == 4
    for extra in (["trainer.max_epochs=2"], ["debug=fdr"], ["trainer.max_steps=-1"]):
        assert horizon(_compose("train", tmp_path, *TINY, *extra).trainer) is None
    # an epoch-based run is left to the builder, however short: no false refusal
    preflight("train", _compose("train", tmp_path, *TINY, "trainer.max_epochs=1",
                                "trainer.max_steps=-1", "module.scheduler.warmup_steps=50"))  # fmt: skip


def test_checkpoint_tasks_refuse_like_their_builders(tmp_path: Path) -> None:
    from segkit.evaluation.batching import eval_loader
    from segkit.tasks.checkpoints import load_segmentor
    from segkit.tasks.predict import predict

    gone = f"ckpt_path={tmp_path}/gone.ckpt"
    for name in ("evaluate", "predict", "export"):
        extra = ["input=x.jpg"] if name == "predict" else []
        cfg = _compose(name, tmp_path, gone, *extra)
        _both_refuse(name, cfg, lambda c: load_segmentor(c.ckpt_path))
    cfg = _compose("evaluate", tmp_path, "eval.batch_size=0")
    cfg.ckpt_path = __file__  # any existing file: the batch-size rule comes next
    _both_refuse("evaluate", cfg, lambda c: eval_loader(None, batch_size=c.eval.batch_size))
    cfg = _compose("predict", tmp_path, f"ckpt_path={__file__}", "input=x.jpg",
                   "predict.batch_size=0")  # fmt: skip
    _both_refuse("predict", cfg, predict)


def test_evaluate_refuses_negative_workers_like_its_loader(tmp_path: Path) -> None:
    """data.num_workers=-1 reached PyTorch (its wording, no key, after the model summary)."""
    from segkit.tasks.evaluate import _loader

    lines = {
        "eval.num_workers": "eval.num_workers must be an integer >= 0",  # the task's own key
        "data.num_workers": "data: num_workers must be an integer >= 0",  # SegDataModule's
    }
    for key, line in lines.items():
        cfg = _compose("evaluate", tmp_path, f"ckpt_path={__file__}", f"{key}=-1")
        with pytest.raises(ValueError) as refused:
            preflight("evaluate", cfg)
        assert user_message(refused.value).startswith(line)
    cfg = _compose("evaluate", tmp_path, f"ckpt_path={__file__}", "eval.num_workers=-1")
    _both_refuse("evaluate", cfg, lambda c: _loader(None, 0, c.eval, {}, None))


@pytest.mark.parametrize("task", ["evaluate", "predict", "export"])
def test_output_stride_overrides_refuse_like_set_output_stride(task, tmp_path: Path) -> None:
    opts = {"evaluate": "eval"}.get(task, task)
    extra = ["input=x.jpg"] if task == "predict" else []
    cfg = _compose(task, tmp_path, f"ckpt_path={__file__}", f"{opts}.output_stride=12", *extra)
    model = _build_model(_compose("train", tmp_path, *TINY, *SMALL))
    line = _both_refuse(task, cfg, lambda c: model.set_output_stride(c[opts].output_stride))
    assert line == f"{opts}: output_stride must be 8, 16 or 32, got 12 (e.g. output_stride=16)"


def test_required_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"required value\(s\) not given: ckpt_path, input"):
        preflight("predict", _compose("predict", tmp_path))


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    """Enough of a VOC tree (and of a CamVid one) for the data-root rules (no image is read)."""
    (tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "JPEGImages").mkdir(parents=True)
    for folder in ("train", "trainannot"):
        (tmp_path / "voc" / "CamVid" / folder).mkdir(parents=True)
    return tmp_path / "voc"


def _experiments() -> list[str]:
    root = CONFIG_DIR / "experiment"
    names = sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))
    return [n for n in names if not n.startswith("presets/")]


@pytest.mark.parametrize("experiment", _experiments())
def test_every_recipe_passes(experiment: str, tmp_path: Path, voc_root: Path) -> None:
    cfg = _compose("train", tmp_path, f"experiment={experiment}", f"data.root={voc_root}")
    preflight("train", cfg)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("train", []),
        ("train", ["+sweep=design"]),
        ("train", ["+sweep=context"]),
        ("train", ["debug=fdr", "experiment=quickstart"]),
        ("analyze", []),
        ("analyze", ["model=fcn"]),
        ("inspect_data", []),
        ("evaluate", [f"ckpt_path={__file__}"]),
        ("evaluate", [f"ckpt_path={__file__}", "data=synthetic"]),
        ("predict", [f"ckpt_path={__file__}", "input=x.jpg"]),
        ("export", [f"ckpt_path={__file__}"]),
    ],
)
def test_every_default_passes(name, overrides, tmp_path: Path, voc_root: Path) -> None:
    root = [f"data.root={voc_root}"] if name == "train" and not overrides else []
    preflight(name, _compose(name, tmp_path, *root, *overrides))


@pytest.mark.parametrize(
    "override",
    ["analyze.input_size=[360]", "analyze.input_size=[0,480]", "analyze.input_size=abc",
     "analyze.input_size=null", "analyze.erf_input_size=[2,480]"],
)  # fmt: skip
def test_analyze_sizes_refuse_like_analyze_model(override: str, tmp_path: Path) -> None:
    """An int N or an [H, W] pair; refused in one line naming the node, the argument and the fix:
    the library's own message, behind the node the analyze task hands it (``analyze``)."""
    from segkit.tasks.analyze import analyze

    line = _both_refuse(
        "analyze",
        _compose("analyze", tmp_path, *SMALL, "analyze.latency_runs=0", override),
        analyze,
    )
    argument = override.split("=")[0].removeprefix("analyze.")
    assert line.startswith(f"analyze: {argument} must be") and f"{argument}=[360,480]" in line
    assert "\n" not in line
