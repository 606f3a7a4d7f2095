"""A value Hydra's override grammar cannot parse gets a hint on how to quote it (issue 11 item 16),
and the hint itself parses back to the intended value."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from segkit.tasks.cli import override_hint

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
