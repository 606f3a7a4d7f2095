"""A value Hydra's override grammar cannot parse gets a hint on how to quote it,
and the hint itself parses back to the intended value."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from segkit.cli.hints import key_hint, override_hint

ROOT = Path(__file__).resolve().parents[2]


def _suggested(hint: str) -> str:
    """The override the hint proposes, as the shell would pass it."""
    return shlex.split(hint.rsplit(": ", 1)[1])[0]


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        (["data.root=/data/données"], "/data/données"),
        (["data.root=/data/d(1)"], "/data/d(1)"),
        (["data.root=/data/it's"], "/data/it's"),
        (["data.root=/data/a=b"], "/data/a=b"),
        (["data.root=/my", "data"], "/my data"),  # the shell split a path with a space
    ],
)
def test_hint_quotes_the_value_and_parses_back(argv: list[str], value: str) -> None:
    hint = override_hint(argv)
    assert hint is not None and "quote the value" in hint
    (override,) = OverridesParser.create().parse_overrides([_suggested(hint)])
    assert override.key_or_group == "data.root" and override.value() == value


def test_no_hint_for_what_parses_or_what_quoting_cannot_fix() -> None:
    assert override_hint(["data.root=/data/plain", "model=fcn", "model.output_stride=8,16"]) is None
    assert override_hint(["nonsense"]) is None  # no key=value before it: Hydra's own message


def test_script_prints_the_hint_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py")]
    proc = subprocess.run([*cmd, "data.root=/data/données"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)  # fmt: skip
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: Hydra cannot parse the override 'data.root=/data/données'")
    fixed = subprocess.run([*cmd, _suggested(line), "--cfg", "job", "--package", "data"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    assert "root: /data/données" in fixed.stdout


@pytest.mark.parametrize(
    ("config", "overrides", "hint"),
    [
        ("train", ["model.outptu_stride=8"], "did you mean model.output_stride?"),
        # the key exists only once the group choice before it is applied
        ("train", ["model=fcn", "model.fcn_variantt=8s"], "did you mean model.fcn_variant?"),
        ("evaluate", ["eval.output_strid=8"], "did you mean eval.output_stride?"),
        ("train", ["model.zzzzzz=3"], "`--cfg job` lists the keys of 'model'"),
    ],
)
def test_a_mistyped_key_gets_the_closest_keys(config, overrides, hint) -> None:
    assert hint in (key_hint(config, overrides) or "")


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.output_stride=8"],  # every key exists: the failure was something else
        ["+model.new_key=1"],  # an addition is not a typo of a change
        ["model=nope", "model.outptu_stride=8"],  # the rest does not compose: Hydra's message only
    ],
)
def test_no_key_hint_when_no_key_is_mistyped(overrides) -> None:
    assert key_hint("train", overrides) is None


def _train_script(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *overrides],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["model.outptu_stride=8"],
         "error: there is no config key 'model.outptu_stride'; did you mean model.output_stride?"),
        # Hydra's own advice here was "To append to your config use +trainer.max_step=100": followed,
        # it crashed 9 s later in the Trainer's constructor
        (["trainer.max_step=100"],
         "error: there is no config key 'trainer.max_step'; did you mean trainer.max_steps or "
         "trainer.max_epochs?"),
        (["model=deeplab"],
         "error: there is no model 'deeplab'; did you mean model=deeplabv3 or model=deeplabv3plus? "
         "(options: deeplabv3, deeplabv3plus, fcn)"),
        (["backbone=xceptoin"],
         "error: there is no backbone 'xceptoin'; did you mean backbone=xception or "
         "backbone=xception65? (options: mobilenetv2, timm, xception, xception65)"),
        (["trainer=gpuu"], "error: there is no trainer 'gpuu'; did you mean trainer=gpu?"),
    ],
)  # fmt: skip
def test_a_mistyped_key_or_choice_is_one_line_instead_of_hydras_block(tmp_path, overrides, line):
    """Hydra's block (its "+key" advice, the config search path) gives way to one line."""
    proc = _train_script(tmp_path, *overrides)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(line), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "To append to your config use" not in proc.stderr
    assert not (tmp_path / "logs").exists()  # no run folder for a command line Hydra refused


def test_other_composition_errors_keep_hydras_message(tmp_path) -> None:
    proc = _train_script(tmp_path, "+model.output_stride=8")  # the key exists: Hydra explains
    assert proc.returncode == 1
    assert "Could not append to config. An item is already at 'model.output_stride'" in proc.stderr
