"""The scripts' side of Hydra: a fast pre-flight, lazy heavy imports, and failures in one line.

A script is ``@hydra.main(...) def main(cfg): return run_task("<task>", cfg)`` and
``if __name__ == "__main__": launch(main)``. Before the config is known to be valid only Hydra,
omegaconf, this module and ``segkit.checks`` are imported, so ``--help``, ``--cfg job``, an
unknown key or choice and the builders' own value checks answer in about the time of
``import hydra`` (``benchmarks/bench_cli.py``); ``segkit.tasks.<task>`` (torch, Lightning, timm,
albumentations) is imported inside the job, after :func:`~segkit.tasks.preflight.preflight`.

Failures (lightning-hydra-template's ``task_wrapper`` pattern: the job raises, it never exits):

* A user error (``USER_ERRORS``: wrong value, missing file) leaves the job as :class:`UserError`,
  a ``CompactHydraException`` holding the one-line message. Any other exception (a bug) leaves it
  unchanged. Hydra's launchers catch ``Exception`` per job, so a multirun goes on to its next job.
* :class:`ReportFailures` (a Hydra callback, ``configs/hydra/default.yaml``) prints a failed job's
  one line on stderr as it fails (``error: job #N (overrides): message`` in a multirun) and writes
  it, or a bug's traceback, into the job's own log file (``<run dir>/<task>.log``).
* Exit: a single run that failed with a user error exits 1 after its one line (the callback's
  ``on_run_end``, i.e. after the job and its callbacks have finished); a bug keeps Hydra's report
  (its traceback) and exit 1. A multirun runs every job, then Hydra's sweeper re-raises the first
  failure (Hydra prints that job's overrides and its message) and the exit status is 1; it is 0
  only when every job succeeded. Optuna (``hparams_search``) marks a failed trial FAIL and goes on
  (``hydra.sweeper.max_failure_rate``). A failed process ends without the interpreter's slow
  teardown of torch and Lightning (:func:`exit_promptly`).

``SEGKIT_TRACEBACK=1`` lets a user error through unchanged (with its traceback).

Before a job's work, :func:`apply_extras` applies the ``extras`` group (``configs/extras/``): it
prints a short run header (task, main config choices, overrides, run folder; rank zero only), the
whole config only with ``extras.print_config=true`` (it is saved in the run folder anyway), and
silences Python warnings with ``extras.ignore_warnings=true``.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import re
import shlex
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException, OverrideParseException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from segkit.tasks.config_keys import config_message
from segkit.tasks.configs import cpu_bf16_flags
from segkit.tasks.preflight import preflight

log = logging.getLogger(__name__)

#: Exceptions that carry a complete user-facing message (wrong key, missing file, bad value).
USER_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    FileExistsError,
    ValueError,
    FloatingPointError,
)


class UserError(CompactHydraException):
    """A job's user error as its one-line message (Hydra prints a compact exception without a
    traceback). The original exception is its ``__cause__``."""


def one_line(err: BaseException) -> str:
    """The user-facing message of ``err``. An error raised in a DataLoader worker process reaches
    the main process re-raised by torch as ``Caught <Type> in DataLoader worker process N.\\n
    Original Traceback ...``: the message is the original one, the last line of that traceback."""
    text = str(err)
    match = re.match(r"Caught (\w+) in DataLoader worker process \d+\.\nOriginal Traceback", text)
    if match is None:
        return text
    name = match.group(1)
    lines = text.rstrip("\n").splitlines()
    for i in range(len(lines) - 1, 0, -1):
        head, sep, rest = lines[i].partition(": ")
        if sep and head.rsplit(".", 1)[-1] == name:
            return "\n".join([rest, *lines[i + 1 :]]).strip()
    return text


#: Set once a job has started in this process (``run_task``): a failure before it is Hydra's
#: (config composition), where ``launch`` may add a "did you mean" line.
_JOB_STARTED = False


def run_task(task: str, cfg: DictConfig, *, module: str | None = None) -> Any:
    """Pre-flight check ``cfg``, then import ``module`` (default ``segkit.tasks.<task>``) and call
    its function ``<task>(cfg)``; a user error leaves as :class:`UserError` (see the module doc),
    its message naming config keys where the library named Python arguments (``config_keys``)."""
    global _JOB_STARTED
    _JOB_STARTED = True
    try:
        preflight(task, cfg)
        apply_extras(task, cfg)
        work = getattr(importlib.import_module(module or f"segkit.tasks.{task}"), task)
        return work(cfg)
    except USER_ERRORS as err:
        if os.environ.get("SEGKIT_TRACEBACK") == "1":
            raise
        raise UserError(config_message(one_line(err), task, cfg)) from err


#: Config groups named in the run header, in this order, when the entry config has them.
HEADER_GROUPS: tuple[str, ...] = ("experiment", "model", "backbone", "data", "trainer")


def _rank() -> int:
    """This process's rank from the launchers' environment (0 when not distributed)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies under it (shorter, copyable)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def run_header(task: str, cfg: DictConfig) -> list[str]:
    """The lines a run starts with: what runs (task, group choices, overrides) and where its
    folder is. Outside a Hydra job (a test composing the config) only what is known."""
    from hydra.core.hydra_config import HydraConfig

    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:  # not inside @hydra.main
        return [f"segkit {task}"]
    choices = hydra_cfg.runtime.choices
    shown = [f"{g}={choices[g]}" for g in HEADER_GROUPS if choices.get(g) not in (None, "null")]
    lines = [f"segkit {task}" + (f" ({', '.join(shown)})" if shown else "")]
    overrides = list(hydra_cfg.overrides.task)
    if overrides:
        lines.append(f"  overrides: {' '.join(overrides)}")
    folder = _shown_path(str(hydra_cfg.runtime.output_dir))
    lines.append(f"  run folder: {folder} (config.yaml there; extras.print_config=true prints it)")
    numerics = numerics_line(cfg)
    return lines if numerics is None else [*lines, numerics]


def numerics_line(cfg: DictConfig) -> str | None:
    """``  numerics: ...`` for a training run off the exact float32 path (reduced precision or
    NHWC), with where the choice came from; None otherwise. Torch-free: ``${cpu_precision:}``
    reads /proc/cpuinfo."""
    trainer, module = cfg.get("trainer"), cfg.get("module")
    if trainer is None or module is None:
        return None
    precision = str(trainer.get("precision", "32-true"))
    channels_last = bool(module.get("channels_last", False))
    if precision in ("32-true", "32") and not channels_last:
        return None
    why = ""
    if "cpu_precision" in str(OmegaConf.to_container(trainer, resolve=False).get("precision")):
        flags = cpu_bf16_flags()
        why = f" (this CPU has {', '.join(flags)})" if flags else " (this CPU has no native bf16)"
    layout = ", channels_last" if channels_last else ""
    return (
        f"  numerics: {precision}{why}{layout}; exact float32: trainer.precision=32-true "
        "module.channels_last=false"
    )


def apply_extras(task: str, cfg: DictConfig) -> None:
    """Apply ``cfg.extras`` (see the module docstring) and print the run header."""
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if _rank() != 0:
        return
    print("\n".join(run_header(task, cfg)), flush=True)
    if extras.get("print_config"):
        print(OmegaConf.to_yaml(cfg, resolve=True), file=sys.stderr, flush=True)


def _to_log_files(line: str, exc: BaseException | None = None) -> None:
    """Write ``line`` (and ``exc``'s traceback) to the file handlers of the root logger only: the
    job's log file in the run folder (the console gets the plain line, or Hydra's report)."""
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord(__name__, logging.ERROR, __file__, 0, line, None, exc_info)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
            handler.flush()


class ReportFailures(Callback):
    """Hydra callback: one line per failed job, the error in the job's log, exit 1 for a single
    run's user error (see the module docstring)."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.FAILED:
            return
        err = job_return._return_value  # Hydra's own LogJobReturnCallback reads it the same way
        where = ""
        if config.hydra.mode == RunMode.MULTIRUN:  # Hydra logged the job's overrides at its start
            where = f"job #{config.hydra.job.num} ({config.hydra.runtime.output_dir}): "
        if isinstance(err, UserError):
            line = f"error: {where}{err}"
            print(line, file=sys.stderr, flush=True)
            _to_log_files(line)
            return
        _to_log_files(f"{where}{type(err).__name__}: {err}", err)
        if where:  # Hydra reports only the first failure of a sweep: say where this one is
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            print(f"error: {where}{type(err).__name__}: {first} (traceback in the job's log)",
                  file=sys.stderr, flush=True)  # fmt: skip

    def on_run_end(
        self, config: DictConfig, job_return: JobReturn | None = None, **kwargs: Any
    ) -> None:
        # A single run (never a multirun job): its one line is printed, the job and every
        # on_job_end callback have finished; exiting here spares the user Hydra's repeat of it.
        if (
            job_return is not None
            and job_return.status == JobStatus.FAILED
            and isinstance(job_return._return_value, UserError)
        ):
            raise SystemExit(1)


#: Why an unquoted override value fails Hydra's grammar, for the hint.
UNQUOTABLE = "non-ASCII letters, quotes, brackets, parentheses, '=' or ','"


def _quoted(override: str) -> str | None:
    """``key="value"`` (or ``key='value'``) that Hydra parses back to exactly ``value``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    key, _, value = override.partition("=")
    parser = OverridesParser.create()
    for quote in ('"', "'"):
        candidate = f"{key}={quote}{value.replace(quote, chr(92) + quote)}{quote}"
        try:
            if parser.parse_overrides([candidate])[0].value() == value:
                return candidate
        except OverrideParseException:
            continue
    return None


def override_hint(overrides: list[str]) -> str | None:
    """A one-line hint for the first override Hydra's parser rejects, when quoting fixes it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for i, override in enumerate(overrides):
        try:
            parser.parse_overrides([override])
            continue
        except OverrideParseException:
            pass
        if "=" not in override and i > 0 and "=" in overrides[i - 1]:
            # The shell split a value with spaces: `data.root=/my data` -> two arguments.
            fixed = _quoted(f"{overrides[i - 1]} {override}")
            reason = "it has no '=': the shell split a value with spaces into two arguments"
        elif "=" not in override:
            return None  # not a value problem: Hydra's own message says what is wrong
        else:
            fixed = _quoted(override)
            reason = f"unquoted values cannot hold {UNQUOTABLE}"
        if fixed is None:
            return None
        return (
            f"Hydra cannot parse the override {override!r} ({reason}); quote the value for Hydra "
            f"inside the shell's quotes: {shlex.quote(fixed)}"
        )
    return None


def exit_now(code: int | str | None) -> None:
    """End the process with ``code`` after the ``atexit`` handlers (log files, loggers, DataLoader
    worker processes), skipping the interpreter's finalization: tearing down the modules of torch,
    Lightning and timm takes seconds after the error message was printed (1.8-4.8 s measured on 2
    loaded cores, ``benchmarks/bench_cli.py``) and nothing of the failed run needs it."""
    if isinstance(code, str):  # SystemExit("message") prints the message and exits 1
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()  # what a normal exit runs first (logging.shutdown, multiprocessing...)
    os._exit(1 if code is None else int(code))


def exit_promptly(main: Callable[[], Any]) -> None:
    """Run ``main``; when it exits with a failure status, exit at once (:func:`exit_now`)."""
    try:
        main()
    except SystemExit as stop:
        if stop.code not in (None, 0):
            exit_now(stop.code)
        raise


def _config_keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key path of a plain (container) config."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            out.append(path)
            out += _config_keys(value, f"{path}.")
    return out


def key_hint(config: str, overrides: list[str]) -> str | None:
    """A "did you mean" for the first plain ``a.b=value`` override whose key the config lacks (a
    typo: Hydra's own message suggests appending it with ``+``): the closest existing keys of the
    config composed with the other overrides. None when every key exists or that compose fails."""
    import difflib

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    from segkit.tasks.configs import compose_config

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        return None
    dotted = [
        (text, o)
        for text, o in zip(overrides, parsed, strict=True)
        if o.type == OverrideType.CHANGE
        and "." in o.key_or_group
        and not o.key_or_group.startswith("hydra.")
    ]
    others = [text for text, o in zip(overrides, parsed, strict=True) if text not in dict(dotted)]
    try:
        cfg = OmegaConf.to_container(compose_config(config, others), resolve=False)
    except Exception:  # noqa: BLE001 - Hydra has already reported this failure
        return None
    keys = _config_keys(cfg)
    for _, o in dotted:
        key = o.key_or_group
        if key in keys:
            continue
        close = difflib.get_close_matches(key, keys, n=3, cutoff=0.75)
        if close:
            return f"there is no config key {key!r}; did you mean {' or '.join(close)}?"
        parent = key.rsplit(".", 1)[0]
        if parent in keys:
            return f"there is no config key {key!r}; `--cfg job` lists the keys of {parent!r}"
        return None
    return None


def launch(main: Callable[[], Any], *, config: str | None = None) -> None:
    """Run a ``@hydra.main`` entry point from a script's ``__main__`` block: first check its
    overrides with Hydra's own argument and override parsers (a value that only needs quoting gets
    a one-line hint instead of a grammar error), and exit promptly when it fails. When Hydra
    refuses the command line before any job started (config composition) and ``config`` names the
    entry config, a mistyped key gets a "did you mean" line (:func:`key_hint`) after Hydra's."""
    from hydra._internal.utils import get_args_parser  # the parser hydra.main itself uses

    args = get_args_parser().parse_args(sys.argv[1:])
    hint = override_hint(list(args.overrides))
    if hint is not None:
        print(f"error: {hint}", file=sys.stderr)
        raise SystemExit(1)
    try:
        exit_promptly(main) if config is None else main()
    except SystemExit as stop:
        if stop.code not in (None, 0) and config is not None:
            if not _JOB_STARTED:
                suggestion = key_hint(config, list(args.overrides))
                if suggestion is not None:
                    print(f"hint: {suggestion}", file=sys.stderr)
            exit_now(stop.code)
        raise


__all__ = [
    "HEADER_GROUPS",
    "USER_ERRORS",
    "ReportFailures",
    "UserError",
    "apply_extras",
    "exit_now",
    "exit_promptly",
    "key_hint",
    "launch",
    "one_line",
    "override_hint",
    "numerics_line",
    "run_header",
    "run_task",
]
