"""The folders the README names are the ones the commands write: each README command annotated
`# -> logs/<name>/runs|multiruns/...` composes to that task_name and folder kind, every other
`logs/<name>/runs|multiruns/` folder in the README is one of those, and the demo's picture is named
as scripts/demo.py writes it (its folder: tests/first_hour/test_demo.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ARROW = re.compile(r"^python scripts/(\w+)\.py (.*?)#\s*(?:.*;\s*)?-> (logs/[^\s`]+)", re.M)
#: A Hydra run or multirun folder named in the README; not one chosen on the line itself
#: (hydra.run.dir=... / hydra.sweep.dir=...: the user's own name).
LOGS = re.compile(r"(?<![\w.]dir=)logs/([\w<>]+)/(runs|multiruns)/")


def _arrows() -> list[tuple[str, list[str], str]]:
    found = [(m[1], shlex.split(m[2]), m[3]) for m in ARROW.finditer(README)]
    assert len(found) >= 4, "the README's first-hour commands lost their '# -> logs/...' notes"
    return found


def _folder(script: str, args: list[str]) -> str:
    """``logs/<task_name>/runs`` or ``.../multiruns`` that ``script args`` writes into, from the
    composed config's (unresolved) hydra.run.dir / hydra.sweep.dir and its task_name."""
    multirun = "-m" in args
    overrides = [a for a in args if a != "-m" and "<" not in a]  # placeholders: not composable
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(script, overrides=overrides, return_hydra_config=True)
    raw = OmegaConf.to_container(cfg.hydra, resolve=False)
    pattern = raw["sweep"]["dir"] if multirun else raw["run"]["dir"]
    kind = "multiruns" if multirun else "runs"
    assert f"/${{task_name}}/{kind}/" in pattern  # the folder layout the README describes
    return f"logs/{cfg.task_name}/{kind}"


@pytest.mark.parametrize("script,args,written", _arrows(), ids=lambda x: str(x)[:40])
def test_annotated_command_writes_where_the_readme_says(script, args, written) -> None:
    assert written.startswith(_folder(script, args) + "/"), (script, args, written)


def test_every_named_logs_folder_is_written_by_a_readme_command() -> None:
    written = {"/".join(w.split("/")[:3]) for _, _, w in _arrows()}
    for name, kind in set(LOGS.findall(README)):
        if name in ("<task>", "<task_name>"):
            continue
        assert f"logs/{name}/{kind}" in written, (
            f"README names logs/{name}/{kind}: no command writes it"
        )


def test_readme_names_the_demo_picture_the_demo_writes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("segkit_demo", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)  # type: ignore[union-attr]
    assert f"`logs/demo/<time>/{demo.PICTURE}`" in README


def test_readme_activates_the_venv_before_its_first_bare_command() -> None:
    """`make demo` / `make test` build .venv; the commands after them say `python` and `segkit-*`,
    which only reach segkit inside the activated venv: the README says so before the first one."""
    activate = README.find("source .venv/bin/activate")
    first = re.search(r"^(python scripts/|segkit-)", README, re.M)
    assert activate != -1, "the README never says to activate .venv"
    assert first is not None and activate < first.start()


def test_a_first_hour_command_runs_as_typed_in_the_activated_venv() -> None:
    """What a user types: a fresh bash in the checkout, `source .venv/bin/activate`, then the
    README's command (`--help`: the command line itself, without a training)."""
    import os
    import subprocess

    venv = ROOT / ".venv" / "bin" / "activate"
    if not venv.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{venv} is missing: make test creates it")
        pytest.skip(f"{venv} is missing (make test / make demo create it)")
    (line,) = [m[0] for m in ARROW.finditer(README) if "model=fcn" in m[0]][:1]
    command = line.split("#")[0].strip() + " --help"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", f"source .venv/bin/activate && {command}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "segkit" in done.stdout.lower() or "train" in done.stdout.lower()
