"""A model override given with ``ckpt_path`` is refused, never silently ignored (issue "Nothing
silently succeeds", case 3).

``evaluate.py ckpt_path=... +backbone=xception`` (Hydra's own advice for ``backbone=xception``) used
to exit 0: it evaluated the checkpoint's MobileNetV2 and recorded xception in the run header and
``config.yaml``; ``analyze.py ckpt_path=... backbone=xception`` the same. The model (and its
classes) of evaluate, predict, export, explore and analyze-with-a-checkpoint come from the
checkpoint's stored config: a ``model`` / ``backbone`` group or key override (analyze: ``data``
too) is one line naming it, refused before any run folder is made. No torch here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from segkit.cli.configs import compose_config
from segkit.cli.preflight import CommandLineError, preflight

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"predict": ["input=photo.jpg"]}


@pytest.mark.parametrize(
    ("task", "override"),
    [
        ("evaluate", "+backbone=xception"),
        ("evaluate", "+model.output_stride=8"),
        ("evaluate", "+backbone@model.backbone=xception"),
        ("predict", "+model.aux=true"),
        ("export", "+backbone.width_mult=0.5"),
        ("explore", "+model=fcn"),
        ("analyze", "backbone=xception"),
        ("analyze", "model.output_stride=8"),
        ("analyze", "data.num_classes=5"),
    ],
)
def test_a_model_override_with_a_checkpoint_is_refused(task, override, tmp_path: Path) -> None:
    ckpt = tmp_path / "best.ckpt"
    ckpt.write_bytes(b"")
    overrides = [f"ckpt_path={ckpt}", *REQUIRED.get(task, []), override]
    cfg = compose_config(task, [f"paths.output_dir={tmp_path / 'run'}", *overrides])
    with pytest.raises(CommandLineError) as refused:
        preflight(task, cfg, overrides)
    message = str(refused.value)
    assert message.startswith(f"{override} cannot apply with ckpt_path: {task} rebuilds the model")
    assert "\n" not in message and "it would be ignored" in message


@pytest.mark.parametrize(
    ("task", "overrides"),
    [
        ("evaluate", ["eval.output_stride=8", "data=synthetic", "data.root=/d", "eval.flip=true"]),
        ("predict", ["input=photo.jpg", "predict.output_stride=8"]),
        ("analyze", ["analyze.output_stride=8"]),
    ],
)
def test_what_a_checkpoint_task_takes_is_not_refused(task, overrides, tmp_path: Path) -> None:
    from segkit.cli.preflight import check_checkpoint_overrides

    overrides = [f"ckpt_path={tmp_path / 'best.ckpt'}", *overrides]
    check_checkpoint_overrides(task, compose_config(task, overrides), overrides)


def test_analyze_without_a_checkpoint_takes_model_overrides(tmp_path: Path) -> None:
    from segkit.cli.preflight import check_checkpoint_overrides

    overrides = ["backbone=xception", "model.output_stride=8"]
    check_checkpoint_overrides("analyze", compose_config("analyze", overrides), overrides)


@pytest.mark.parametrize(
    ("script", "override"),
    [("evaluate", "+backbone=xception"), ("evaluate", "backbone=xception"),
     ("analyze", "backbone=xception")],
)  # fmt: skip
def test_the_scripts_refuse_in_one_line_and_make_no_run_folder(script, override, tmp_path) -> None:
    ckpt = tmp_path / "best.ckpt"
    ckpt.write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{script}.py"), f"ckpt_path={ckpt}", override],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: {override} cannot apply with ckpt_path: {script} rebuilds the model (and its "
        "classes) from the config stored in the checkpoint, so it would be ignored. Drop it "
        f"(another model needs its own training; {'eval' if script == 'evaluate' else script}"
        ".output_stride=8|16|32 re-dilates the trained one)"
    )
    assert not (tmp_path / "logs").exists()
