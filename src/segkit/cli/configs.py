"""Where segkit's Hydra configs live, and the one way to compose them outside ``@hydra.main``.

``CONFIG_DIR`` is ``segkit/configs`` inside the package: in a wheel the YAML files themselves
(``[tool.setuptools.package-data]``), in a source checkout or an editable install a symlink to the
repository's ``configs/``. The console entry points (``segkit.cli.entry``), ``scripts/`` and
``benchmarks/`` all read the configs from there, so a command runs from any directory.

Light: standard library and Hydra only (``segkit.cli.entry`` imports it before a config is
known to be valid).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
#: Environment variable that sets ``paths.root_dir`` (``configs/paths/default.yaml``): the folder
#: that holds ``data/`` and ``logs/``. Unset: the directory the command was started from.
ROOT_ENV = "SEGKIT_ROOT"


#: Resolver for DataLoader worker defaults: ``${workers:4}`` = at most 4, and no more than the CPUs
#: this process may run on (more workers than CPUs only adds context switches, and torch warns).
WORKERS_RESOLVER = "workers"


def workers(limit: int | str) -> int:
    """``min(limit, CPUs this process may use)``, at least 1: the default ``data.num_workers``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(int(limit), cpus))


#: Resolver for the CPU trainer's precision: ``${cpu_precision:}`` = ``bf16-mixed`` where the
#: processor computes bfloat16 natively, else ``32-true``.
CPU_PRECISION_RESOLVER = "cpu_precision"
#: /proc/cpuinfo flags of native bfloat16 arithmetic: AVX512-BF16 (Cooper Lake, Zen 4 and later)
#: and AMX-BF16 (Sapphire Rapids and later), the two oneDNN uses for bf16 convolutions and matmuls.
BF16_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """The :data:`BF16_FLAGS` this processor reports, read from ``/proc/cpuinfo`` without torch
    (a config resolves before the task imports it). Empty when the file is unreadable (not Linux):
    then the CPU trainer stays in float32, the safe choice."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return [f for f in BF16_FLAGS if f in flags]
    return []


def cpu_precision() -> str:
    """Lightning's ``precision`` for the CPU trainer: ``bf16-mixed`` where this processor has
    AVX512-BF16 or AMX-BF16 (1.2-1.3x per training step, measured in docs/benchmarks.md), else
    ``32-true``. ``trainer.precision=32-true`` keeps the exact float32 path anywhere."""
    return "bf16-mixed" if cpu_bf16_flags() else "32-true"


def register_resolvers() -> None:
    """Register ``workers`` and ``cpu_precision`` with OmegaConf (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(WORKERS_RESOLVER):
        OmegaConf.register_new_resolver(WORKERS_RESOLVER, workers)
    if not OmegaConf.has_resolver(CPU_PRECISION_RESOLVER):
        OmegaConf.register_new_resolver(CPU_PRECISION_RESOLVER, cpu_precision)


def project_root() -> Path:
    """``$SEGKIT_ROOT``, else the current directory: what ``paths.root_dir`` resolves to in a run."""
    return Path(os.environ.get(ROOT_ENV) or Path.cwd())


def config_folder(name: str, config_dir: str | Path | None = None) -> Path:
    """The folder holding the entry config ``<name>.yaml`` (default :data:`CONFIG_DIR`).

    Raises:
        FileNotFoundError: the file is missing (a broken install, or a checkout whose
            ``src/segkit/configs`` symlink was not created), named with the fix.
    """
    folder = Path(config_dir) if config_dir is not None else CONFIG_DIR
    if not (folder / f"{name}.yaml").is_file():
        raise FileNotFoundError(
            f"config {folder / f'{name}.yaml'} not found: segkit's configs are missing from this "
            "install; reinstall it (pip install -e . in a checkout, whose src/segkit/configs must "
            "be the symlink to configs/) or pass the right config_dir"
        )
    return folder


def compose_config(
    name: str,
    overrides: Sequence[str] = (),
    *,
    config_dir: str | Path | None = None,
    return_hydra_config: bool = False,
) -> DictConfig:
    """Compose the entry config ``name`` (``train``, ``evaluate``, ...) with ``overrides``, as the
    command line would. ``paths.root_dir`` is set to :func:`project_root` first (Hydra's
    ``${hydra:runtime.cwd}`` exists only inside ``@hydra.main``); an override of it wins."""
    from hydra import compose, initialize_config_dir

    folder = config_folder(name, config_dir)
    with initialize_config_dir(config_dir=str(folder.resolve()), version_base="1.3"):
        return compose(
            name,
            overrides=[f"paths.root_dir={project_root()}", *overrides],
            return_hydra_config=return_hydra_config,
        )


__all__ = [
    "BF16_FLAGS",
    "CONFIG_DIR",
    "ROOT_ENV",
    "compose_config",
    "config_folder",
    "cpu_bf16_flags",
    "cpu_precision",
    "project_root",
]
