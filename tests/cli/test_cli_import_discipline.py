"""Import discipline of the command line: before a config is known to be valid, a script has
imported Hydra, omegaconf and segkit's light modules only -- never torch, Lightning, timm,
albumentations, a task module or the explorer. Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = (
    "train",
    "evaluate",
    "predict",
    "export",
    "analyze",
    "inspect_data",
    "compare",
    "explore",
)
#: Modules whose presence means the heavy stack was loaded.
HEAVY = (
    "torch", "pytorch_lightning", "lightning", "lightning_fabric", "torchmetrics", "torchvision",
    "timm", "albumentations", "cv2", "matplotlib", "numpy", "onnx", "onnxruntime",
)  # fmt: skip

PROBE = """
import json, os, runpy, sys


def _exit(code):  # the scripts end a failed run with os._exit: let the probe report first
    raise SystemExit(code)


os._exit = _exit
script, argv = sys.argv[1], sys.argv[2:]
sys.argv = [script, *argv]
code = None
try:
    runpy.run_path(script, run_name="__main__" if argv else "segkit_script")
except SystemExit as stop:
    code = stop.code
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] in HEAVY or m.startswith(("segkit.tasks.", "segkit.explore.")))
print("PROBE" + json.dumps({"code": code, "loaded": loaded}))
"""


def probe(script: str, *argv: str, cwd: Path) -> dict:
    """Run scripts/<script>.py (imported only, or run with ``argv``) and list what it loaded."""
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "scripts" / f"{script}.py"), *argv],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=env,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(lines[-1][len("PROBE") :])


@pytest.mark.parametrize("script", [*SCRIPTS, "download_voc"])
def test_importing_a_script_loads_nothing_heavy(script: str, tmp_path: Path) -> None:
    assert probe(script, cwd=tmp_path)["loaded"] == []


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s != "compare"])
@pytest.mark.parametrize(
    "argv",
    [("--help",), ("--cfg", "job"), ("no_such_key=1",), ("paths.no_such_ky=1",)],
    ids=["help", "cfg-job", "unknown-key", "mistyped-key-hint"],
)
def test_hydra_answers_before_anything_heavy(script: str, argv: tuple, tmp_path: Path) -> None:
    out = probe(script, *argv, "hydra.run.dir=" + str(tmp_path / "run"), cwd=tmp_path)
    assert out["loaded"] == []
    assert out["code"] in ((None, 0) if argv[0].startswith("--") else (1,))


@pytest.mark.parametrize(
    ("script", "overrides"),
    [
        ("train", ["model.output_stride=12"]),
        ("train", ["data.batch_size=0"]),
        ("train", ["module.scheduler.warmup_steps=-1"]),
        ("train", ["data=voc", "data.root=nowhere"]),
        ("inspect_data", ["data.val_batch_size=0"]),
        ("analyze", ["model=fcn", "model.output_stride=16", "model.fcn_variant=32s"]),
        ("evaluate", ["ckpt_path=gone.ckpt"]),
        ("predict", ["input=x.jpg"]),  # ckpt_path not given
        ("export", ["ckpt_path=gone.ckpt"]),
    ],
)
def test_config_errors_answer_before_anything_heavy(script, overrides, tmp_path: Path) -> None:
    out = probe(script, *overrides, "hydra.run.dir=" + str(tmp_path / "run"), cwd=tmp_path)
    assert out["code"] == 1
    assert out["loaded"] == []


def test_compare_refuses_a_bad_folder_before_anything_heavy(tmp_path: Path) -> None:
    out = probe("compare", str(tmp_path / "missing"), cwd=tmp_path)
    assert out["code"] == 1 and out["loaded"] == []


def test_light_modules_import_no_torch() -> None:
    code = (
        "import sys, segkit.checks, segkit.cli.preflight, segkit.cli.launch, segkit.data, "
        "segkit.analysis, segkit.compare.records, segkit.data.download, segkit.cli.download;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("task", ["evaluate", "inspect_data", "predict", "explore"])
def test_split_only_tasks_load_no_lightning(task: str) -> None:
    """Evaluate, inspect_data, predict and explore get their split from the dataset object
    (``instantiate(cfg.data.dataset).split(...)``), never from the LightningDataModule."""
    code = (
        f"import sys, segkit.tasks.{task}, segkit.data; segkit.data.VOC; segkit.data.Synthetic\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pytorch_lightning', 'lightning')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
