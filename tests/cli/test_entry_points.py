"""Console entry points and the conventions users expect around them:
``segkit-<task>`` runs from any directory with the packaged configs, ``paths.root_dir`` comes from
``$SEGKIT_ROOT`` with the current directory as fallback, ``configs/local/default.yaml`` and a
user's config folder (``hydra.searchpath``) are picked up, ``tags`` reach the run folder, and a
built wheel carries the configs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from segkit.cli.configs import CONFIG_DIR, ROOT_ENV, compose_config, project_root

ROOT = Path(__file__).resolve().parents[2]
TINY_DATA = [
    "data.dataset.num_train=4",
    "data.dataset.num_val=2",
    "data.dataset.min_size=40",
    "data.dataset.max_size=48",
    "inspect.grid_samples=2",
]


def console_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: name -> ``module:function``."""
    text = (ROOT / "pyproject.toml").read_text()
    table = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+)\s*=\s*"([\w.]+:\w+)"', table, flags=re.M))


def run_entry(
    target: str, *args: str, cwd: Path, env=None, path=None
) -> subprocess.CompletedProcess:
    """Run the console script ``module:function`` the way its installed wrapper does; ``env``
    entries set to None are removed from the environment."""
    module, func = target.split(":")
    code = f"import sys; from {module} import {func}; sys.exit({func}())"
    search = [str(p) for p in (path or [])] + sys.path
    environ = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(search)}
    environ = {k: v for k, v in environ.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=300, cwd=cwd, env=environ,
    )  # fmt: skip


def test_console_scripts_cover_every_task() -> None:
    scripts = console_scripts()
    tasks = {"train", "eval", "predict", "export", "analyze", "inspect", "compare", "download-voc"}
    tasks |= {"explore", "download-ade20k", "download-camvid"}
    assert set(scripts) == {f"segkit-{t}" for t in tasks}


@pytest.mark.parametrize("name", sorted(console_scripts()))
def test_console_script_answers_help_from_another_directory(name: str, tmp_path: Path) -> None:
    proc = run_entry(console_scripts()[name], "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout or "== Configuration groups ==" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # --help writes nothing


def test_root_dir_from_env_else_cwd(tmp_path: Path) -> None:
    train = console_scripts()["segkit-train"]
    show = ["--cfg", "job", "--resolve", "--package", "paths"]
    here = run_entry(train, *show, cwd=tmp_path, env={ROOT_ENV: None})
    assert here.returncode == 0, here.stderr[-2000:]
    assert yaml.safe_load(here.stdout)["data_dir"] == f"{tmp_path}/data"
    there = run_entry(train, *show, cwd=tmp_path, env={ROOT_ENV: "/srv/segkit"})
    assert yaml.safe_load(there.stdout)["log_dir"] == "/srv/segkit/logs"


def test_compose_config_reads_segkit_root(monkeypatch, tmp_path: Path) -> None:
    """compose_config (scripts, benchmarks, compare --fill) follows the rule of the CLI."""
    monkeypatch.delenv(ROOT_ENV, raising=False)
    assert compose_config("train").paths.root_dir == str(Path.cwd()) == str(project_root())
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    assert compose_config("evaluate").paths.data_dir == f"{tmp_path}/data"
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml not found"):
        compose_config("nope")


def test_multirun_folder_follows_segkit_root(monkeypatch, tmp_path: Path) -> None:
    """The sweep folder resolves before Hydra's runtime (no paths.*): it reads $SEGKIT_ROOT too."""
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    cfg = compose_config("train", return_hydra_config=True)
    assert str(cfg.hydra.sweep.dir).startswith(f"{tmp_path}/logs/train/multiruns/")


@pytest.mark.slow  # a real inspect_data process (synthetic data, torch import): ~25 s, loaded machine
def test_inspect_runs_from_another_directory_with_tags_local_and_searchpath(
    tmp_path: Path,
) -> None:
    """A user's folder on hydra.searchpath brings its own local/default.yaml (picked up because
    it exists) and experiment; the run lands under $SEGKIT_ROOT, tags in its config.yaml."""
    mine, root, cwd = tmp_path / "my-configs", tmp_path / "root", tmp_path / "elsewhere"
    (mine / "local").mkdir(parents=True)
    (mine / "local" / "default.yaml").write_text("# @package _global_\nseed: 7\n")
    cwd.mkdir()
    args = [f"hydra.searchpath=[file://{mine}]", "tags=[smoke,entry]", *TINY_DATA]
    proc = run_entry(console_scripts()["segkit-inspect"], *args, cwd=cwd, env={ROOT_ENV: str(root)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (root / "logs" / "inspect_data" / "runs").iterdir()
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())  # inspect saves no other
    assert config["tags"] == ["smoke", "entry"] and config["seed"] == 7
    assert (run / "inspect_data.log").is_file()  # the job is named after its entry config
    assert (root / "data" / "synthetic").is_dir() and list(cwd.iterdir()) == []


def test_local_default_beats_experiment_not_command_line(tmp_path: Path) -> None:
    """local/default.yaml (here from a searchpath folder) is merged after the experiment."""
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "default.yaml").write_text(
        "# @package _global_\ntags: [laptop]\ndata:\n  num_workers: 3\n"
    )
    search = f"hydra.searchpath=[file://{tmp_path}]"
    cfg = compose_config("train", [search, "experiment=quickstart"])
    assert list(cfg.tags) == ["laptop"] and cfg.data.num_workers == 3  # quickstart says 0
    cfg = compose_config("train", [search, "experiment=quickstart", "data.num_workers=1"])
    assert cfg.data.num_workers == 1


def test_tags_reach_compare_records(tmp_path: Path) -> None:
    """A training run's config.yaml (written by the train task's save_config) holds its tags;
    compare reads them into its records (records.json)."""
    from segkit.cli.jobs import save_config
    from segkit.compare.records import build_records, find_run_folders
    from segkit.tasks.compare import record_json

    run = tmp_path / "run"
    overrides = [f"paths.output_dir={run}", "experiment=quickstart", "tags=[baseline,os16]"]
    save_config(compose_config("train", overrides), run)
    (run / "metrics.json").write_text(json.dumps({"val/mIoU_best": 0.5, "output_stride": 16}))
    (rec,) = build_records(find_run_folders([tmp_path]))
    assert rec.tags == ["baseline", "os16"] and record_json(rec)["tags"] == rec.tags


def test_wheel_carries_the_configs_and_runs_without_the_checkout(tmp_path: Path) -> None:
    """Build a wheel from a copy of the sources (pip, no dependencies), then run segkit-train
    --cfg job from the unpacked wheel alone, in another directory."""
    src = tmp_path / "src-copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (src / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(["cp", "-a", str(ROOT / "src"), str(ROOT / "configs"), str(src)], check=True)
    isolation = []
    try:
        import setuptools  # noqa: F401  (present: build offline with it, as the editable install did)

        isolation = ["--no-build-isolation"]
    except ImportError:
        pass
    wheels = tmp_path / "wheels"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", str(wheels), "."]
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = wheels.glob("segkit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        zf.extractall(tmp_path / "site")
    shipped = {n.removeprefix("segkit/configs/") for n in names if n.startswith("segkit/configs/")}
    expected = {str(p.relative_to(CONFIG_DIR)) for p in CONFIG_DIR.rglob("*.yaml")}
    assert expected and shipped == expected
    for name, target in console_scripts().items():
        assert f"{name} = {target}" in entry_points
    site = tmp_path / "site"
    code = "import segkit, sys; print(segkit.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    other = tmp_path / "other"
    other.mkdir()
    proc = run_entry(
        console_scripts()["segkit-train"], "--cfg", "job", "experiment=quickstart",
        cwd=other, path=[site],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "crop_size: 96" in proc.stdout


def test_missing_packaged_configs_are_one_line(monkeypatch, tmp_path: Path, capsys) -> None:
    import segkit.cli.configs as configs
    from segkit.cli import entry

    monkeypatch.setattr(configs, "CONFIG_DIR", tmp_path / "gone")
    with pytest.raises(SystemExit) as stop:
        entry.train()
    err = capsys.readouterr().err
    assert stop.value.code == 1 and err.count("\n") == 1
    assert f"{tmp_path}/gone/train.yaml not found" in err and "pip install -e ." in err
