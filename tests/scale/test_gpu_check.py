"""scripts/gpu_check.py on a machine without CUDA: its one-line refusal, its arguments, the commands
it would run (their Hydra overrides compose), and the figures it reads from real benchmark and
training outputs into its result file."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from helpers.scale import ROOT, quiet_env
from segkit.cli.jobs import instantiate_group

spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
sys.modules["gpu_check"] = gpu_check  # its dataclass looks its module up there
spec.loader.exec_module(gpu_check)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: run make gpu-check")
def test_without_cuda_it_says_so_in_one_line_and_fails(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          env=quiet_env(), timeout=120)  # fmt: skip
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: gpu-check needs a CUDA GPU and this machine has none")
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--steps", "0"], "--steps must be >= 1, got 0"),
     (["--steps", "10"], "--steps must be >= 20"),
     (["--batch-size", "0"], "--batch-size must be >= 1"),
     (["--gpus", "-1"], "--gpus must be >= 1")],
)  # fmt: skip
def test_bad_arguments_are_refused(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        gpu_check.parse(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_the_plan_asks_for_what_the_check_is_about(tmp_path: Path) -> None:
    args = gpu_check.parse([])
    assert (args.steps, args.batch_size, args.crop, args.gpus) == (300, 8, 513, None)
    steps = {s.name: s.argv for s in gpu_check.plan(args, 4, tmp_path)}
    assert list(steps) == ["backbones", "eval", "train"]
    for bench in ("backbones", "eval"):
        assert steps[bench][steps[bench].index("--device") + 1] == "cuda"
    train = steps["train"]
    for override in ("backbone=xception65", "model=deeplabv3plus", "data.crop_size=513",
                     "trainer.precision=bf16-mixed", "module.channels_last=true",
                     "trainer.benchmark=true", "compile=true", "trainer.strategy=ddp",
                     "trainer.devices=4", "trainer.max_steps=300"):  # fmt: skip
        assert override in train, override
    # every override is a key or choice the train config has (a renamed key fails here, not on
    # the GPU machine), and the memory monitor it adds is instantiable
    overrides = [a for a in train[2:] if not a.startswith("hydra.")]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.root_dir={tmp_path}",
                                          f"paths.output_dir={tmp_path}"])  # fmt: skip
    assert cfg.trainer.accelerator == "gpu" and cfg.model.output_stride == 16
    assert cfg.data.dataset.min_size == 375 and cfg.data.dataset.max_size == 500  # VOC size
    names = [type(c).__name__ for c in instantiate_group(cfg.callbacks)]
    assert "DeviceStatsMonitor" in names


def test_dry_run_prints_the_commands(capsys) -> None:
    assert gpu_check.main(["--dry-run", "--steps", "40"]) == 0
    out = capsys.readouterr().out
    assert "# train" in out and "trainer.max_steps=40" in out and "bench_eval.py" in out


def test_eval_ratio_from_a_real_bench_eval_table() -> None:
    """bench_eval's own output (tiny, on the CPU), so a change of its table breaks this test."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_eval.py"),
                           "--device", "cpu", "--images", "2", "--batch-size", "2", "--size", "32",
                           "--min-size", "32", "--max-size", "40", "--rounds", "1"],
                          capture_output=True, text=True, env=quiet_env(), timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = gpu_check.eval_ratio(proc.stdout)
    assert figures is not None, proc.stdout
    one, many = figures["images_per_s_batch1"], figures["images_per_s_batch8"]
    assert one > 0 and many > 0
    assert figures["batch8_vs_batch1"] == pytest.approx(many / one, rel=1e-2)
    assert gpu_check.eval_ratio("no table here") is None


def test_result_file_from_a_real_training_run(run_train, tmp_path: Path) -> None:
    """The training figures come from a real run folder (CPU: throughput, but no GPU memory) with
    the plan's DeviceStatsMonitor override; the result file has the schema's keys."""
    run = tmp_path / "train"
    proc = run_train("trainer.max_steps=6", "callbacks.throughput.window=2",
                     "+callbacks.device_stats._target_=pytorch_lightning.callbacks.DeviceStatsMonitor",
                     "+callbacks.device_stats.cpu_stats=false", f"hydra.run.dir={run}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = gpu_check.train_figures(run, world_size=2)
    assert figures["images_per_s"] == pytest.approx(2 * figures["images_per_s_per_gpu"], rel=1e-3)
    assert figures["images_per_s_per_gpu"] > 0 and figures["peak_memory_gib"] is None
    assert figures["global_step"] == 6

    args = gpu_check.parse(["--gpus", "2"])
    table = "| 32x32 fixed | 10.0 | 30.0 | 3.00x | 2.9x | identical |"
    steps = [{"name": "backbones", "command": ["x"], "returncode": 0, "stdout": "", "wall_s": 1.0,
              "log": "b.log"},
             {"name": "eval", "command": ["y"], "returncode": 0, "stdout": table, "wall_s": 1.0,
              "log": "e.log"},
             {"name": "train", "command": ["z"], "returncode": 0, "stdout": "", "wall_s": 9.0,
              "log": "t.log"}]  # fmt: skip
    result = gpu_check.build_result(steps, args=args, gpus=2, machine_info={"gpus": []},
                                    out=tmp_path)  # fmt: skip
    gpu_check.write_atomic(tmp_path / "gpu_check.json", result)
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["schema"] == "segkit.gpu_check/1" and saved["ok"] is True
    assert saved["eval"]["batch8_vs_batch1"] == 3.0
    assert saved["train"]["images_per_s"] == figures["images_per_s"]
    assert {"precision", "channels_last", "compile", "cudnn_benchmark", "gpus"} <= set(
        saved["train"]
    )
    assert all("stdout" not in s for s in saved["steps"])
    steps[2]["returncode"] = 1  # a failed training: no figures, not ok
    failed = gpu_check.build_result(steps, args=args, gpus=2, machine_info={}, out=tmp_path)
    assert failed["ok"] is False and "images_per_s" not in failed["train"]
