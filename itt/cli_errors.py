"""One line for every config or data mistake, and the exit codes of the entry points.

Hydra reports a composition error over several lines with its own exit code 1, and an
OmegaConf validation error names the schema class rather than the file. The entry points
run their Hydra app through :func:`run_app`, which turns each mistake into one line naming
the file (or the command line), the key and the nearest valid key, and exits with
:data:`EXIT_CONFIG`. A genuine bug still shows its traceback.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Any, Callable

from itt.errors import ITTError, SweepFailed
from itt.schema import nearest, valid_keys

EXIT_CONFIG = 2      # a config, card or data mistake: nothing was run
EXIT_FAILED = 1      # the run started and some cell failed (error.json names it)

_IN_FILE = re.compile(r"^In '([^']+)': (\w+) raised while composing config:\s*(.*)$", re.S)
_FULL_KEY = re.compile(r"full_key: ([\w.\[\]-]+)")
_NOT_IN = re.compile(r"Key '([^']+)' (?:not in|is not in)")
_VALUE = re.compile(r"Value '([^']*)' (?:of type '(\w+)' )?could not be converted to (\w+)")
_MISSING_OPTION = re.compile(r"Could not find '([^']+)/([^'/]+)'")
_OPTION_LINE = re.compile(r"^\t(\S+)$", re.M)
_OVERRIDE = re.compile(r"(?:Could not override '([^']+)'|Error merging override (\S+?)=(\S*))")


def _file_of(config_path: str) -> str:
    group, _, name = config_path.partition("/")
    if group in ("intermediate", "target"):
        return f"conf/task/{name}.yaml"
    return f"conf/{config_path}.yaml" if name else f"conf/{group}.yaml"


def _key_hint(full_key: str) -> str:
    parent, _, leaf = full_key.rpartition(".")
    options = valid_keys(parent)
    hint = nearest(leaf, options) if options else None
    if hint:
        return f" (did you mean '{parent + '.' if parent else ''}{hint}'?)"
    return f"; valid keys of {parent or 'the config'}: {', '.join(options)}" if options else ""


def _describe(body: str, where: str) -> str | None:
    key = _FULL_KEY.search(body)
    full_key = key.group(1) if key else None
    value = _VALUE.search(body)
    if value and full_key:
        return f"{where}: {full_key}={value.group(1)!r} is not a valid {value.group(3).lower()}."
    missing = _NOT_IN.search(body)
    if missing:
        full_key = full_key or missing.group(1)
        return f"{where}: unknown key '{full_key}'{_key_hint(full_key)}."
    if "Cannot convert" in body and full_key:
        first = body.strip().splitlines()[0]
        return f"{where}: {full_key}: {first}"
    if "Cannot merge" in body:
        return f"{where}: a block has the wrong shape ({body.strip().splitlines()[0]}); see itt/schema.py."
    return None


def explain(exc: BaseException) -> str | None:
    """The one-line message for a user mistake, or None for anything else (a bug)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, ITTError):
        return str(exc)
    text = str(exc)
    cause = exc.__cause__
    body = text + ("\n" + str(cause) if cause is not None else "")
    if isinstance(exc, MissingConfigException) or _MISSING_OPTION.search(text):
        m = _MISSING_OPTION.search(text)
        if m:
            group, name = m.group(1), m.group(2)
            folder = "task" if group in ("intermediate", "target") else group
            # Hydra lists the options it knows (conf/ and plugins) after "Available options".
            listed = text.split("Available options", 1)[1].split("Config search path", 1)[0] \
                if "Available options" in text else ""
            options = _OPTION_LINE.findall(listed)
            hint = nearest(name, options)
            return (f"unknown {group} '{name}' ({group}={name}): no conf/{folder}/{name}.yaml"
                    + (f"; did you mean '{hint}'?" if hint else f"; available: {', '.join(options)}"))
        return text.strip().splitlines()[0]
    if isinstance(exc, OverrideParseException):
        return f"command line: {text.strip().splitlines()[0]}"
    if isinstance(exc, ConfigCompositionException):
        m = _IN_FILE.match(text.strip())
        if m:
            return _describe(m.group(3) + "\n" + (str(cause) if cause else ""), _file_of(m.group(1))) or \
                f"{_file_of(m.group(1))}: {m.group(3).strip().splitlines()[0]}"
        o = _OVERRIDE.search(text)
        if o:
            line = _describe(body, "command line")
            if line:
                return line
        return text.strip().splitlines()[0]
    if isinstance(exc, OmegaConfBaseException):
        return _describe(body, "config")
    return None


def run_app(app: Callable[[], Any]) -> Any:
    """Run a ``@hydra.main`` app; a user mistake ends it with one line and exit code 2, a
    sweep with failed cells with exit code 1 after the others finished."""
    # Let Hydra raise instead of printing its own multi-line report and exiting 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        return app()
    except SweepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except Exception as exc:
        line = explain(exc)
        if line is None or os.environ.get("ITT_TRACEBACK"):
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
