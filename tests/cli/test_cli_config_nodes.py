"""One error vocabulary: the library's message names its Python arguments, the command line puts
the config node before it (``error: model: output_stride must be 8, 16 or 32, got 7``).

One test per way the node becomes known -- the node the pre-flight checked, Hydra's ``full_key`` of
the node ``instantiate`` was building, the node a task reads its arguments from -- and one for an
error whose node is not known, printed as the library raised it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from helpers.cli import SMALL, TINY
from segkit.cli.configs import compose_config
from segkit.cli.hints import hydra_full_key
from segkit.cli.launch import UserError, run_task, user_message
from segkit.cli.preflight import config_node, error_node


def run_script(task: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The console script ``segkit-<task>`` (``segkit.cli.entry.<task>``), as its wrapper runs it."""
    code = f"import sys; from segkit.cli.entry import {task}; sys.exit({task}())"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=300, cwd=cwd, env=env,
    )  # fmt: skip


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _compose(tmp_path: Path, *overrides: str):
    return compose_config(
        "train", [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", *overrides]
    )


def test_the_preflight_names_the_node_it_checked(tmp_path: Path) -> None:
    proc = run_script("train", "model.output_stride=7", f"hydra.run.dir={tmp_path / 'run'}",
                      cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: model: output_stride must be 8, 16 or 32, got 7 (e.g. output_stride=16)"
    )


def test_instantiate_names_the_node_hydra_was_building(tmp_path: Path) -> None:
    """A value the pre-flight does not check: the dataset's constructor refuses it inside
    ``instantiate``, whose ``full_key`` is the nested node ``data.dataset``."""
    (tmp_path / "mine").mkdir()
    proc = run_script(
        "inspect_data", "data=folder", f"data.root={tmp_path / 'mine'}",
        "data.dataset.val_fraction=2", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    assert _errors(proc.stderr) == [
        "error: data.dataset: val_fraction must be in (0, 1), got 2 "
        "(e.g. 0.2: a fifth of the images for validation)"
    ]


def test_a_builder_called_by_a_builder_is_named_by_the_outer_node(tmp_path: Path) -> None:
    """The backbone is a partial the model builder calls: Hydra was building ``model``."""
    with pytest.raises(UserError) as refused:
        run_task("train", _compose(tmp_path, *TINY, *SMALL, "backbone.width_mult=0"))
    assert str(refused.value) == "model: width_mult must be > 0, got 0"


def test_a_task_names_the_node_it_reads(tmp_path: Path) -> None:
    """``module.class_weight`` against the dataset's class count: checked by the train task once
    the data is built (the pre-flight cannot know the count of a synthetic set)."""
    with pytest.raises(UserError) as refused:
        run_task("train", _compose(tmp_path, *TINY, *SMALL, "module.class_weight=[1,2]"))
    assert str(refused.value).startswith("module: class_weight has 2 values but the dataset has ")


def test_an_error_of_no_known_node_is_the_librarys_message(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "fake_task.py").write_text(
        "from segkit.cli.preflight import config_node\n"
        "def inspect_data(cfg):\n"
        "    if cfg.seed == 1:\n"
        "        raise ValueError('crop_size must be a positive integer, got 0')\n"
        "    with config_node('data'):\n"
        "        raise ValueError('crop_size must be a positive integer, got 0')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = compose_config("inspect_data", [f"paths.root_dir={tmp_path}", "data=synthetic",
                                          f"paths.output_dir={tmp_path / 'run'}", "seed=1"])  # fmt: skip
    with pytest.raises(UserError) as plain:
        run_task("inspect_data", cfg, module="fake_task")
    assert str(plain.value) == "crop_size must be a positive integer, got 0"
    cfg.seed = 2
    with pytest.raises(UserError) as marked:
        run_task("inspect_data", cfg, module="fake_task")
    assert str(marked.value) == "data: crop_size must be a positive integer, got 0"


def test_hydra_full_key_reads_the_node_hydra_names() -> None:
    cfg = OmegaConf.create(
        {"data": {"dataset": {"_target_": "fractions.Fraction", "numerator": "x"}}}
    )
    with pytest.raises(InstantiationException) as nested:
        instantiate(cfg.data)
    assert hydra_full_key(nested.value) == "data.dataset"
    with pytest.raises(InstantiationException) as root:
        instantiate({"_target_": "fractions.Fraction", "numerator": "x"})  # a plain container
    assert hydra_full_key(root.value) is None


def test_the_innermost_node_wins() -> None:
    with pytest.raises(ValueError) as err, config_node("data"), config_node("data.dataset"):
        raise ValueError("val_fraction must be in (0, 1), got 2")
    assert error_node(err.value) == "data.dataset"
    assert user_message(err.value) == "data.dataset: val_fraction must be in (0, 1), got 2"
    with pytest.raises(ValueError) as unmarked, config_node(""):
        raise ValueError("x")
    assert error_node(unmarked.value) is None and user_message(unmarked.value) == "x"
