"""The package boundaries of docs/architecture.md, checked on the source (AST, no imports run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "segkit"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _violations(rule) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        pkg = _package_of(path)
        for name in sorted(_imports(path)):
            reason = rule(pkg, name)
            if reason:
                found.append(f"{path.relative_to(SRC)} imports {name}: {reason}")
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


def _segkit_pkg(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "segkit" and len(parts) > 1 else None


def test_sources_found():
    assert len(list(SRC.rglob("*.py"))) >= 5


def test_hydra_only_at_the_edges():
    def rule(pkg, name):
        if _top(name) in {"hydra", "omegaconf"} and pkg != "tasks":
            return "Hydra/omegaconf belong in segkit.tasks and scripts/ only"
        return None

    assert _violations(rule) == []


@pytest.mark.parametrize("pkg_name", ["nn", "backbones", "heads", "models"])
def test_no_lightning_in_model_code(pkg_name):
    def rule(pkg, name):
        if pkg == pkg_name and _top(name) in {"lightning", "pytorch_lightning"}:
            return "a Segmentor must be a plain nn.Module usable without Lightning"
        return None

    assert _violations(rule) == []


def test_backbones_and_heads_independent():
    def rule(pkg, name):
        other = _segkit_pkg(name)
        if (pkg, other) in {("backbones", "heads"), ("heads", "backbones")}:
            return "backbones/ and heads/ meet only in models/"
        return None

    assert _violations(rule) == []


def test_the_feature_contract_stands_alone():
    """segkit.features holds the one type backbones/ and heads/ share: standard library only."""
    assert _imports(SRC / "features.py") <= {"__future__", "dataclasses"}


def test_nothing_below_tasks_imports_tasks():
    def rule(pkg, name):
        if pkg != "tasks" and _segkit_pkg(name) == "tasks":
            return "tasks/ is the top layer"
        return None

    assert _violations(rule) == []


def test_compare_reads_files_only():
    """segkit.compare compares finished runs from their files: no torch, no other segkit package."""

    def rule(pkg, name):
        if pkg != "compare":
            return None
        if _top(name) in {"torch", "torchvision", "pytorch_lightning", "lightning", "timm"}:
            return "comparing run folders must not need torch"
        other = _segkit_pkg(name)
        if other not in (None, "compare", "_lazy", "runs"):
            return "segkit.compare stands on its own"
        return None

    assert _violations(rule) == []


#: Modules the command line imports before a config is known to be valid: each may
#: import only the standard library and the names listed (checked on the source; the subprocess
#: test tests/cli/test_cli_import_discipline.py checks what actually gets loaded).
LIGHT_MODULES: dict[str, set[str]] = {
    "checks.py": set(),
    "constants.py": set(),
    "runs.py": set(),
    "progress.py": {"rich"},
    "data/classes.py": {"segkit.constants"},
    "data/camvid_layout.py": set(),
    "tasks/preflight.py": {"omegaconf", "segkit.checks", "segkit.data.camvid_layout"},
    "tasks/cli.py": {
        "hydra",
        "omegaconf",
        "segkit.tasks.preflight",
        "segkit.tasks.configs",  # key_hint composes the config (after Hydra refused it)
        "segkit.tasks.run_folders",  # ClaimRunFolder: the run folder's lock, before the job
    },
    "tasks/configs.py": {"hydra", "omegaconf"},
    "tasks/run_folders.py": {"omegaconf", "segkit.runs"},
}


@pytest.mark.parametrize("module", sorted(LIGHT_MODULES))
def test_light_modules_stay_light(module):
    import sys

    allowed = LIGHT_MODULES[module]
    path = SRC / module
    bad = [
        name
        for name in sorted(_imports(path))
        if _top(name) not in sys.stdlib_module_names
        and name not in allowed
        and _top(name) not in allowed
        and name != "__future__"
    ]
    assert bad == [], f"{module} must stay importable without the heavy stack"
