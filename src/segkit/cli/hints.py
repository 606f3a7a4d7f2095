"""The command line's one-line hints, in place of Hydra's or a constructor's block of text: an
override that only needs quoting (``override_hint``), a "did you mean" for a mistyped key or group
option (``composition_hint``: ``key_hint``, ``group_hint``), and a config key its ``_target_`` does
not take (``check_target_arguments`` before the task runs, ``unexpected_argument`` for a node the
task builds itself). Light: Hydra, omegaconf and the pre-flight only (``key_hint`` composes the
config, after Hydra refused it).
"""

from __future__ import annotations

import re
import shlex
import sys
from typing import Any

from hydra.errors import InstantiationException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from segkit.cli.preflight import CommandLineError, ignored_by_checkpoint


def hydra_full_key(err: InstantiationException) -> str | None:
    """The config node Hydra was instantiating when ``err`` was raised. hydra-core 1.3 has no
    attribute for it: ``instantiate`` ends its message with a ``full_key: <node>`` line (none for
    the root of a plain container)."""
    _, found, key = str(err).rpartition("\nfull_key: ")
    key = key.strip()
    return key if found and key and not any(c.isspace() for c in key) else None


def unexpected_argument(err: InstantiationException) -> str | None:
    """One line for ``instantiate``'s "unexpected keyword argument" failure (a node the task
    builds itself, e.g. a checkpoint's stored config), naming the config key; else None."""
    cause = err.__cause__
    name = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    if not isinstance(cause, TypeError) or name is None:
        return None
    node = hydra_full_key(err)
    target = re.search(r"Error in call to target '([^']+)'", str(err))
    where = f"{node}.{name.group(1)}" if node else name.group(1)
    what = target.group(1) if target else "its _target_"
    return f"{where} is not an argument of {what}: remove it, or correct its name"


def _parameters(target: str) -> list[str] | None:
    """The keyword parameters of ``_target_`` ``target``; None when it takes ``**kwargs``, or
    cannot be found (then ``instantiate`` reports it)."""
    import inspect

    from hydra._internal.utils import _locate

    try:
        signature = inspect.signature(_locate(target))
    except Exception:  # noqa: BLE001 - instantiate reports a target it cannot build
        return None
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _target_nodes(node: Any, path: str = "") -> list[tuple[str, DictConfig]]:
    """``(dotted path, node)`` of every config node with a ``_target_``, outermost first."""
    out: list[tuple[str, DictConfig]] = []
    if not isinstance(node, DictConfig):
        return out
    if "_target_" in node:
        out.append((path, node))
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            out += _target_nodes(child, f"{path}.{key}" if path else str(key))
    return out


def check_target_arguments(cfg: DictConfig) -> None:
    """CommandLineError (a ValueError) for a key of a ``_target_`` node that its target does not take (a mistyped
    ``+trainer.max_step=100``): one line naming the config key, before the task builds anything,
    instead of the constructor's ``unexpected keyword argument`` traceback after it."""
    import difflib

    if "torch" not in sys.modules:
        return  # a task that builds nothing with torch (a stand-in in tests): no import for this
    for path, node in _target_nodes(cfg):
        target = node.get("_target_")
        params = _parameters(str(target)) if isinstance(target, str) else None
        if params is None:
            continue
        for key in node:
            if str(key).startswith("_") or key in params:
                continue
            where = f"{path}.{key}" if path else str(key)
            close = difflib.get_close_matches(str(key), params, n=2, cutoff=0.6)
            guess = " or ".join(f"{path}.{c}" if path else c for c in close)
            hint = f"did you mean {guess}? " if close else ""
            raise CommandLineError(
                f"{where} is not an argument of {target}: {hint}(a config key under "
                f"{path or 'the config'} must be one of its arguments; `--cfg job --package "
                f"{path or '_global_'}` shows them as configured)"
            )


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

    from segkit.cli.configs import compose_config

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


def group_hint(hydra_message: str) -> str | None:
    """For Hydra's "Could not find 'model/deeplab'" (a config group given an option it lacks), the
    one line to print instead of its block and config search path: the closest options, and all
    of them. None for any other message."""
    import difflib

    missing = re.search(r"Could not find '([^']+)'", hydra_message)
    listed = re.search(r"Available options in '([^']+)':\n((?:\t.*\n?)*)", hydra_message)
    if missing is None or listed is None:
        return None
    group = listed.group(1)
    choice = missing.group(1).removeprefix(f"{group}/")
    options = [line.strip() for line in listed.group(2).splitlines() if line.strip()]
    if not options:
        return None
    close = [o for o in options if o.startswith(choice)]
    close += [
        o for o in difflib.get_close_matches(choice, options, n=3, cutoff=0.6) if o not in close
    ]
    every = ", ".join(options)
    if close:
        guess = " or ".join(f"{group}={o}" for o in close[:3])
        return f"there is no {group} {choice!r}; did you mean {guess}? (options: {every})"
    return f"there is no {group} {choice!r}; the options are {every} (configs/{group}/)"


def composition_hint(config: str, overrides: list[str], hydra_message: str) -> str | None:
    """The one line that replaces Hydra's message when it refused the command line: a wrong
    group option (:func:`group_hint`) or a mistyped key (:func:`key_hint`; Hydra's own advice,
    "To append to your config use +key=value", would add the mistyped key and crash later)."""
    hint = group_hint(hydra_message)
    no_group = re.search(
        r"Could not override '([^']+)'\. No match in the defaults list", hydra_message
    )
    if hint is None and no_group is not None:  # backbone=x for evaluate: it has no such group
        group = no_group.group(1)
        given = [o for o in overrides if o.split("=", 1)[0].split("@", 1)[0] == group]
        hint = ignored_by_checkpoint(config, given[0]) if given else None
    if hint is None and "Could not override" in hydra_message:
        hint = key_hint(config, overrides)
    return hint


__all__ = [
    "UNQUOTABLE",
    "check_target_arguments",
    "composition_hint",
    "group_hint",
    "key_hint",
    "override_hint",
    "unexpected_argument",
]
