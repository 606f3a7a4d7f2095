"""The scripts' side of Hydra: a fast pre-flight, lazy heavy imports, and failures in one line.

A script is ``@hydra.main(...) def main(cfg): return run_task("<task>", cfg)`` and
``if __name__ == "__main__": launch(main)``. Before the config is known to be valid only Hydra,
omegaconf, this module and ``segkit.checks`` are imported, so ``--help``, ``--cfg job``, an
unknown key or choice and the builders' own value checks answer in about the time of
``import hydra`` (``benchmarks/bench_cli.py``); ``segkit.tasks.<task>`` (torch, Lightning, timm,
albumentations) is imported inside the job, after :func:`~segkit.cli.preflight.preflight`.

Failures (lightning-hydra-template's ``task_wrapper`` pattern: the job raises, it never exits):

* A user error (``USER_ERRORS``: wrong value, missing file) leaves the job as :class:`UserError`,
  a ``CompactHydraException`` holding the one-line message, led by the config node it came from
  when known (:func:`user_message`: ``model: output_stride must be 8, 16 or 32, got 7``). Any other exception (a bug) leaves it
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

Refused before Hydra writes anything (:class:`ClaimRunFolder`, the first callback: after the
config is composed, before ``.hydra/*`` and the job's log): a run folder another run holds
(``run_folders.lock_run_folder``), the folder of a finished run, a training over an earlier run's
``last.ckpt``, a model override a checkpoint task would ignore. Before that, a command line Hydra
refuses for a mistyped key or group option prints one "did you mean" line instead of Hydra's block
(:func:`launch`). After the task module is imported and before the task runs, every ``_target_``
node's keys are checked against its target's signature
(:func:`~segkit.cli.hints.check_target_arguments`).

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
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException, InstantiationException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from segkit.cli.configs import cpu_bf16_flags
from segkit.cli.hints import (
    check_target_arguments,
    composition_hint,
    override_hint,
    unexpected_argument,
)
from segkit.cli.preflight import (
    check_checkpoint_overrides,
    error_node,
    preflight,
)
from segkit.cli.run_folders import (
    launching_process,
    lock_run_folder,
    refuse_earlier_sweep,
    refuse_rerun,
    refuse_training_over,
)

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


def user_message(err: BaseException) -> str:
    """The line a user error is reported with: ``<node>: <message>`` when the config node it came
    from is known (Hydra's ``full_key`` of the node ``instantiate`` was building, the node the
    pre-flight or the task was reading: :func:`~segkit.cli.preflight.config_node`), else the
    message alone. The message names the Python arguments of that node's target, i.e. its keys
    (``model: output_stride must be 8, 16 or 32, got 7``)."""
    node = error_node(err)
    return f"{node}: {one_line(err)}" if node else one_line(err)


#: Set once Hydra has composed the config in this process (``ClaimRunFolder``) or a job has
#: started (``run_task``): a failure before it is Hydra's (config composition), where ``launch``
#: may turn Hydra's message into a "did you mean" line.
_JOB_STARTED = False


def run_task(task: str, cfg: DictConfig, *, module: str | None = None) -> Any:
    """Pre-flight check ``cfg``, then import ``module`` (default ``segkit.tasks.<task>``) and call
    its function ``<task>(cfg)``; a user error leaves as :class:`UserError` (see the module doc),
    its line led by the config node it came from when known (:func:`user_message`)."""
    global _JOB_STARTED
    _JOB_STARTED = True
    try:
        preflight(task, cfg, _command_line_overrides())
        apply_extras(task, cfg)
        work = getattr(importlib.import_module(module or f"segkit.tasks.{task}"), task)
        check_target_arguments(cfg)  # the task module has imported the targets' packages
        return work(cfg)
    except USER_ERRORS as err:
        if os.environ.get("SEGKIT_TRACEBACK") == "1":
            raise
        raise UserError(user_message(err)) from err
    except InstantiationException as err:
        line = unexpected_argument(err)
        if line is None or os.environ.get("SEGKIT_TRACEBACK") == "1":
            raise
        raise UserError(line) from err


def _command_line_overrides() -> list[str]:
    """The job's overrides (``hydra.overrides.task``); none outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not inside @hydra.main (a test composing the config)
        return []


#: Config groups named in the run header, in this order, when the entry config has them.
HEADER_GROUPS: tuple[str, ...] = ("experiment", "model", "backbone", "data", "trainer")


def _rank() -> int:
    """This process's rank from the launchers' environment (0 when not distributed)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def shown_path(path: str) -> str:
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
    folder = shown_path(str(hydra_cfg.runtime.output_dir))
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
    echo(*run_header(task, cfg))
    if extras.get("print_config"):
        print(OmegaConf.to_yaml(cfg, resolve=True), file=sys.stderr, flush=True)


def echo(*lines: str) -> None:
    """Print ``lines`` on the console as they are (a run's header, what it wrote) and write them
    to the job's log file, ``<run dir>/<task>.log``, so that the log tells what the run did."""
    print("\n".join(lines), flush=True)
    for line in lines:
        _to_log_files(line, level=logging.INFO)


def _to_log_files(
    line: str, exc: BaseException | None = None, *, level: int = logging.ERROR
) -> None:
    """Write ``line`` (and ``exc``'s traceback) to the file handlers of the root logger only: the
    job's log file in the run folder (the console gets the plain line, or Hydra's report)."""
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord(__name__, level, __file__, 0, line, None, exc_info)
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


def _refuse(err: BaseException) -> None:
    """End the process with ``err``'s one line, before Hydra has written anything."""
    print(f"error: {err}", file=sys.stderr, flush=True)
    raise SystemExit(1)


#: ``paths.output_dir`` as configs/paths/default.yaml sets it: the run folder itself.
DEFAULT_OUTPUT_DIR = "${hydra:runtime.output_dir}"


def _run_folders(config: DictConfig) -> list[Path]:
    """The run folder, then ``paths.output_dir`` when the command line moved it elsewhere (where
    the task writes its outputs: two runs given the same one would share it too)."""
    folders = [Path(str(config.hydra.run.dir)).absolute()]
    paths = config.get("paths")
    if isinstance(paths, DictConfig) and "output_dir" in paths:
        raw = OmegaConf.to_container(paths, resolve=False).get("output_dir")
        if raw != DEFAULT_OUTPUT_DIR:
            output = Path(str(paths.output_dir)).absolute()
            if output != folders[0]:
                folders.append(output)
    return folders


class ClaimRunFolder(Callback):
    """Hydra callback (``configs/hydra/default.yaml``, first): after the config is composed and
    before Hydra writes into the run folder (``.hydra/``, the job's log), the launching process
    holds the folder for this run (``run_folders.lock_run_folder``: a second run in it is refused
    with the holder's PID; DDP / torchrun ranks > 0 share it) and a training that would write over
    an earlier run's checkpoints is refused. So a refused run leaves the earlier run's record
    (``.hydra/overrides.yaml`` read by ``cli.trials``, its log) byte for byte as it was.
    A multirun holds its sweep folder, refused when it holds an earlier sweep's jobs."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _JOB_STARTED
        _JOB_STARTED = True
        _release_stderr()
        from hydra.core.hydra_config import HydraConfig

        try:  # an override the task would ignore: refused before any folder is made
            task = str(config.hydra.job.config_name)
            check_checkpoint_overrides(task, config, list(config.hydra.overrides.task))
        except ValueError as err:
            _refuse(err)
        # ${hydra:runtime.cwd} (paths.*) needs Hydra's config set, as run_job sets it next
        HydraConfig.instance().set_config(config)
        folders = _run_folders(config)
        try:
            if launching_process():  # DDP / torchrun ranks > 0 join the folder of their rank 0
                for folder in folders:
                    lock_run_folder(folder)
                training = "trainer" in config
                if training:  # its checkpoints would overwrite the earlier run's
                    refuse_training_over(folders[-1], config.get("ckpt_path"))
                for folder in folders:  # its config and metrics would overwrite the earlier's
                    refuse_rerun(folder, resuming=training and bool(config.get("ckpt_path")))
        except FileExistsError as err:
            _refuse(err)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _JOB_STARTED
        _JOB_STARTED = True
        _release_stderr()
        folder = Path(str(config.hydra.sweep.dir)).absolute()
        try:
            if launching_process():
                lock_run_folder(folder)
                refuse_earlier_sweep(folder)
        except FileExistsError as err:
            _refuse(err)


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


class _HeldStderr:
    """``sys.stderr`` while Hydra composes the config: what is written is kept, so that a
    composition failure's message can be replaced by segkit's one line (:func:`launch`); once the
    config is composed (``ClaimRunFolder``) or the command ends, it is written out and later
    writes go straight through (a handler that took this object as its stream keeps working)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.held: list[str] | None = []

    def write(self, text: str) -> int:
        if self.held is None:
            return self.real.write(text)
        self.held.append(text)
        return len(text)

    def flush(self) -> None:
        if self.held is None:
            self.real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def release(self, text: str | None = None) -> None:
        """Write ``text`` (default: what was held) and let later writes through."""
        if self.held is None:
            return
        out = "".join(self.held) if text is None else text
        self.held = None
        if sys.stderr is self:
            sys.stderr = self.real
        self.real.write(out)
        self.real.flush()


_HELD: _HeldStderr | None = None


def _release_stderr(text: str | None = None) -> None:
    if _HELD is not None:
        _HELD.release(text)


def launch(main: Callable[[], Any], *, config: str | None = None) -> None:
    """Run a ``@hydra.main`` entry point from a script's ``__main__`` block: first check its
    overrides with Hydra's own argument and override parsers (a value that only needs quoting gets
    a one-line hint instead of a grammar error), and exit promptly when it fails. When Hydra
    refuses the command line before any job started (config composition) and ``config`` names the
    entry config, a wrong group option or a mistyped key gets one "did you mean" line instead of
    Hydra's message (:func:`composition_hint`)."""
    global _HELD
    from hydra._internal.utils import get_args_parser  # the parser hydra.main itself uses

    args = get_args_parser().parse_args(sys.argv[1:])
    hint = override_hint(list(args.overrides))
    if hint is not None:
        print(f"error: {hint}", file=sys.stderr)
        raise SystemExit(1)
    if config is None:
        exit_promptly(main)
        return
    _HELD = _HeldStderr(sys.stderr)
    sys.stderr = _HELD  # type: ignore[assignment]
    try:
        main()
    except SystemExit as stop:
        if stop.code not in (None, 0):
            if not _JOB_STARTED and _HELD.held is not None:
                suggestion = composition_hint(config, list(args.overrides), "".join(_HELD.held))
                if suggestion is not None:
                    _release_stderr(f"error: {suggestion}\n")
            _release_stderr()
            exit_now(stop.code)
        raise
    finally:
        _release_stderr()


__all__ = [
    "HEADER_GROUPS",
    "ClaimRunFolder",
    "USER_ERRORS",
    "ReportFailures",
    "UserError",
    "apply_extras",
    "echo",
    "exit_now",
    "exit_promptly",
    "launch",
    "one_line",
    "numerics_line",
    "run_header",
    "shown_path",
    "run_task",
    "user_message",
]
