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


#: The packages above the library: the shell, the tasks and the explorer the explore task serves.
EDGES = {"cli", "tasks", "explore"}


def test_hydra_only_at_the_edges():
    def rule(pkg, name):
        if _top(name) in {"hydra", "omegaconf"} and pkg not in EDGES:
            return "Hydra/omegaconf belong in segkit.cli, segkit.tasks, segkit.explore and scripts/"
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


def test_the_library_imports_no_edge():
    def rule(pkg, name):
        if pkg not in EDGES and _segkit_pkg(name) in EDGES:
            return "cli/, tasks/ and explore/ stand on the library, never under it"
        return None

    assert _violations(rule) == []


TASKS = SRC / "tasks"
#: The eight tasks: each ``tasks/<name>.py`` holds ``<name>(cfg)``, which ``run_task`` imports.
TASK_NAMES = {"train", "evaluate", "predict", "export", "analyze", "compare", "inspect_data",
              "explore"}  # fmt: skip
#: The one module of tasks/ that is not a task: the prelude that opens a checkpoint for inference.
PRELUDE = "checkpoints"


def _task_modules_imported(path: Path) -> set[str]:
    """The modules of ``segkit.tasks`` that ``path`` imports, however it is spelled: ``import
    segkit.tasks.x``, ``from segkit.tasks.x import f``, ``from segkit.tasks import x``, relative
    ``from .x import f`` / ``from . import x``, at the top or inside a function."""
    package = path.relative_to(SRC.parent).with_suffix("").parts[:-1]  # ("segkit", "tasks")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            modules = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[:2] == ["segkit", "tasks"] and len(parts) > 2:
                found.add(parts[2])
    return found


def test_tasks_holds_the_tasks_and_the_prelude():
    modules = {p.stem for p in TASKS.glob("*.py")} - {"__init__"}
    assert modules == TASK_NAMES | {PRELUDE}


def test_no_task_imports_another_task():
    """A task is a plain function of its config. What two tasks share lives in the prelude or
    below it, never in another task; the explorer uses the prelude only. Running tasks one after
    another is the shell's (``cli/fill.py``: ``compare --fill`` evaluates and analyses)."""
    found = []
    for path in sorted([*TASKS.glob("*.py"), *(SRC / "explore").rglob("*.py")]):
        for module in sorted(_task_modules_imported(path)):
            if module in TASK_NAMES and not (path.parent == TASKS and module == path.stem):
                found.append(f"{path.relative_to(SRC)} imports segkit.tasks.{module}")
    assert found == [], "a task module imports another task module"


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
    "cli/__init__.py": {"segkit.cli.configs", "segkit.cli.run_folders"},
    "cli/preflight.py": {"omegaconf", "segkit.checks", "segkit.data.camvid_layout"},
    "cli/launch.py": {
        "hydra",
        "omegaconf",
        "segkit.cli.hints",
        "segkit.cli.preflight",
        "segkit.cli.configs",  # the run header's CPU flags
        "segkit.cli.run_folders",  # ClaimRunFolder: the run folder's lock, before the job
    },
    "cli/hints.py": {
        "hydra",
        "omegaconf",
        "segkit.cli.preflight",
        "segkit.cli.configs",  # key_hint composes the config (after Hydra refused it)
    },
    "cli/configs.py": {"hydra", "omegaconf"},
    "cli/run_folders.py": {"omegaconf", "segkit.runs"},
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
