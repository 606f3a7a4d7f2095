"""Library errors name Python arguments, never config keys (checked on the source, AST).

In the library (every package but the edges: ``cli/``, ``tasks/``, ``explore/``) a message says ``output_stride must be 8, 16 or 32, got 7``; the command
line puts the config node before it (``model: ...``, ``segkit.cli.launch.user_message``). This test
reads every ``raise`` in ``src/segkit`` outside the edges: the string literals of the raised
expression (f-string parts included) and of the module-level string constants it names must not
hold a dotted config key (``model.output_stride``, ``data.batch_size``, ``eval.mode``...). It does
not follow a message built in a variable first, nor the ``fix=`` words a dataset hands its
``Layout`` / ``LabelLookup``; those were reworded with the rest.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "segkit"

#: The packages that read config nodes: the shell, the tasks, the explorer (test_architecture's EDGES).
EDGES = {"cli", "tasks", "explore"}

#: A dotted key under a config node of segkit's configs (not a file name, not a method call).
CONFIG_KEY = re.compile(
    r"(?<![\w./-])(model|backbone|data|module|trainer|callbacks|logger|paths|eval|predict|export"
    r"|analyze|inspect|explore|extras|hydra)\.(?!(py|yaml|json|ckpt|log|png|onnx|csv|txt)\b)"
    r"[a-z_]\w*(?![\w(])"
)

#: Modules whose input is a run config, so their messages name its keys (with why).
TAKE_A_CONFIG: dict[str, str] = {
    "training/resume.py": "compares a checkpoint's stored run config with this run's, key by key",
}


def _module_strings(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level ``NAME = <string literals>`` -> those literals."""
    found: dict[str, list[str]] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = _literals(node.value)  # type: ignore[arg-type]
    return found


def _literals(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _config_keys_in_raises(path: Path, root: Path = SRC) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    constants = _module_strings(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        texts = _literals(node.exc)
        for name in ast.walk(node.exc):
            if isinstance(name, ast.Name):
                texts += constants.get(name.id, [])
        for text in texts:
            for match in CONFIG_KEY.finditer(text):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {match.group(0)}")
    return found


def _library_modules() -> list[Path]:
    return [
        p
        for p in sorted(SRC.rglob("*.py"))
        if p.relative_to(SRC).parts[0] not in EDGES
        and p.relative_to(SRC).as_posix() not in TAKE_A_CONFIG
    ]


def test_library_errors_name_no_config_key() -> None:
    found = [hit for path in _library_modules() for hit in _config_keys_in_raises(path)]
    assert found == [], "name the Python argument; the command line adds the config node"


def test_the_scan_sees_config_keys(tmp_path: Path) -> None:
    """The scan itself: it finds keys in f-strings and named constants, not file names or calls."""
    module = tmp_path / "m.py"
    module.write_text(
        'HINT = "set data.batch_size=1"\n'
        "def f(x):\n"
        '    raise ValueError(f"eval.mode must be whole, got {x}")\n'
        "def g():\n"
        '    raise ValueError("bad: " + HINT)\n'
        "def h():\n"
        '    raise ValueError("write model.onnx with torch.save(model.state_dict(), p)")\n'
    )
    hits = [hit.split(": ", 1)[1] for hit in _config_keys_in_raises(module, tmp_path)]
    assert hits == ["eval.mode", "data.batch_size"]


def test_the_exceptions_exist() -> None:
    for module in TAKE_A_CONFIG:
        assert (SRC / module).is_file(), module
