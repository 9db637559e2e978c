"""The records of a study, in one place: the cell key, where outputs go, and the files a
cell or a sweep leaves (formats: docs/schemas.md).

* ``result.json`` — a finished cell (written once, atomically; an older result of another
  config in the same directory is kept as ``result.<config_hash>.json``);
* ``error.json`` — a failed cell (what failed, the traceback, the config);
* ``examples.json`` — per-example predictions and gold labels of each test language;
* ``plan.json`` — at a sweep's root: every cell the sweep set out to run.

The cell, the launchers, the sweeper, ``itt.status``, the report and the notebook read and
write these files through this module only. Output locations honour ``ITT_OUTPUT_DIR`` (and
``ITT_ROOT``) exactly as ``conf/paths/default.yaml`` resolves them.
"""
from __future__ import annotations

import json
import logging
import math
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from itt.utils import REPO_ROOT, atomic_write_json, redact, stable_hash, utc_now

log = logging.getLogger(__name__)

RESULT = "result.json"
ERROR = "error.json"
EXAMPLES = "examples.json"
PLAN = "plan.json"
RESULT_SCHEMA = "itt.result/1"
ERROR_SCHEMA = "itt.error/1"
PLAN_SCHEMA = "itt.plan/1"
EXAMPLES_SCHEMA = "itt.examples/1"

#: The config groups that name a cell; with the seed they are its key.
CELL_GROUPS = ("model", "intermediate", "target")
CELL_KEYS = CELL_GROUPS + ("seed",)
NONE = "none"

# Keys that do not change what a cell computes (where files go, how progress is shown).
_NON_SEMANTIC = ("paths", "run", "logger", "hydra")


class MalformedFileError(ValueError):
    """A result/error/plan file does not follow its schema (the message says how)."""


# ----------------------------------------------------------------------------- the cell key
@dataclass(frozen=True, order=True)
class CellKey:
    """(model, intermediate, target, seed): one cell of the grid."""

    model: str
    intermediate: str
    target: str
    seed: int

    @classmethod
    def of(cls, cell: dict[str, Any]) -> "CellKey":
        """From a cell dict (result.json's ``cell``, a plan entry); raises
        MalformedFileError when a field is absent or the seed is not an integer."""
        missing = [k for k in CELL_KEYS if k not in cell]
        if missing:
            raise MalformedFileError(f"cell lacks {', '.join(missing)}")
        seed = cell["seed"]
        if isinstance(seed, bool) or not isinstance(seed, (int, str)) or not str(seed).lstrip("-").isdigit():
            raise MalformedFileError(f"cell.seed is {seed!r}, expected an integer")
        inter = cell["intermediate"]
        return cls(str(cell["model"]), NONE if inter in (None, "None") else str(inter), str(cell["target"]),
                   int(seed))

    @classmethod
    def of_config(cls, cfg: dict[str, Any]) -> "CellKey":
        return cls(cfg["model"]["name"], cfg["intermediate"]["name"], cfg["target"]["name"], int(cfg["seed"]))

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "intermediate": self.intermediate, "target": self.target, "seed": self.seed}

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())


def cell_key(cell: dict[str, Any]) -> tuple[str, str, str, int]:
    """The key of a cell dict as a plain tuple (for dict keys and sorting)."""
    k = CellKey.of(cell)
    return (k.model, k.intermediate, k.target, k.seed)


def format_cell(cell: dict[str, Any]) -> str:
    return " ".join(f"{k}={cell.get(k)}" for k in CELL_KEYS)


# ----------------------------------------------------------------------------- where things go
def output_root() -> Path:
    """``paths.output_dir`` as conf/paths/default.yaml resolves it."""
    out = os.environ.get("ITT_OUTPUT_DIR")
    if out:
        return Path(out)
    return Path(os.environ.get("ITT_ROOT") or REPO_ROOT) / "outputs"


def multirun_root() -> Path:
    return output_root() / "multirun"


def runs_root() -> Path:
    return output_root() / "runs"


def default_result_dirs() -> list[Path]:
    """Where the report and the notebook look when given no directory."""
    return [multirun_root(), runs_root()]


def report_dir(inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """The report's folder: outputs/report/<name of its single input>, or outputs/report."""
    base = output_root() / "report"
    if len(inputs) == 1:
        name = Path(inputs[0]).resolve().name
        if name and name not in ("multirun", "runs", "outputs"):
            return base / name
    return base


# ----------------------------------------------------------------------------- config hash
def config_hash(cfg: dict[str, Any]) -> str:
    """What a cell computes: its config without paths, run, logger and progress-bar settings,
    and with the *content* of the data files its cards read instead of their paths (an
    edited file changes the hash; the same file at another path does not)."""
    from itt.data.fingerprint import card_fingerprint

    semantic = {k: v for k, v in cfg.items() if k not in _NON_SEMANTIC}
    semantic["model"] = {k: v for k, v in cfg.get("model", {}).items() if k != "resources"}  # cluster requests
    semantic["trainer"] = {k: v for k, v in cfg.get("trainer", {}).items()
                           if k not in ("enable_progress_bar", "progress_bar_refresh_rate")}
    for role in ("intermediate", "target"):
        card = cfg.get(role)
        if isinstance(card, dict) and card.get("type") not in (None, NONE):
            semantic[role] = card_fingerprint(card, cfg["paths"].get("cache_dir"))
    return stable_hash(semantic, 20)


# ----------------------------------------------------------------------------- reading
def read_json(path: str | os.PathLike) -> Any:
    """A JSON file; MalformedFileError (naming the problem) when it is not readable JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise MalformedFileError(f"invalid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedFileError(f"cannot read ({exc})") from None


def _number_or_null(value: Any, where: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise MalformedFileError(f"{where} is {value!r}, expected a number or null")


def validate_result(data: Any) -> dict[str, Any]:
    """The typed model of result.json: raises MalformedFileError naming the first field
    that does not follow docs/schemas.md."""
    if not isinstance(data, dict):
        raise MalformedFileError("top level is not a JSON object")
    schema = data.get("schema")
    if schema is not None and not str(schema).startswith("itt.result/"):
        raise MalformedFileError(f"schema is {schema!r}, expected '{RESULT_SCHEMA}'")
    if data.get("status", "ok") != "ok":
        raise MalformedFileError(f"status is {data.get('status')!r}, expected 'ok'")
    if not isinstance(data.get("cell"), dict):
        raise MalformedFileError("cell is missing or not an object")
    CellKey.of(data["cell"])
    metrics = data.get("metrics")
    if not isinstance(metrics, dict):
        raise MalformedFileError("metrics is missing or not an object")
    _number_or_null(metrics.get("main"), "metrics.main")
    for name in ("per_language", "average"):
        if metrics.get(name) is not None and not isinstance(metrics[name], dict):
            raise MalformedFileError(f"metrics.{name} is {type(metrics[name]).__name__}, expected an object")
    for name in ("config_hash", "finished_at"):
        if name in data and not isinstance(data[name], str):
            raise MalformedFileError(f"{name} is {data[name]!r}, expected a string")
    return data


def validate_error(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedFileError("top level is not a JSON object")
    if not isinstance(data.get("cell"), dict):
        raise MalformedFileError("cell is missing or not an object")
    CellKey.of(data["cell"])
    return data


def _read_checked(path: Path, check: Any) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return check(read_json(path))
    except MalformedFileError as exc:
        raise MalformedFileError(f"{path}: {exc}") from None


def read_result(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The cell's result.json, None when there is none; MalformedFileError when it is broken."""
    return _read_checked(Path(run_dir) / RESULT, validate_result)


def read_error(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The cell's error.json, None when there is none; MalformedFileError when it is broken."""
    return _read_checked(Path(run_dir) / ERROR, validate_error)


def finished_result(run_dir: str | os.PathLike, chash: str) -> dict[str, Any] | None:
    """The result.json of ``run_dir`` when it holds a finished run of this very config."""
    try:
        old = read_result(run_dir)
    except MalformedFileError as exc:
        log.warning("Ignoring %s; the cell runs again", exc)
        return None
    return old if old is not None and old.get("config_hash") == chash else None


def run_dir_state(run_dir: str | os.PathLike) -> tuple[str, str]:
    """(state, detail) of a cell's run directory: finished (when), failed (why), or missing
    (how far an interrupted attempt got)."""
    run_dir = Path(run_dir)
    try:
        result = read_result(run_dir)
    except MalformedFileError as exc:
        return "failed", f"unreadable result: {exc}"
    try:
        error = read_error(run_dir)
    except MalformedFileError as exc:
        error = {"exception": f"unreadable error.json: {exc}"}
    if result is not None:
        if error is None or str(error.get("failed_at", "")) <= str(result.get("finished_at", "")):
            return "finished", str(result.get("finished_at", ""))
    if error is not None:
        return "failed", first_line(error.get("exception")) or "(no message)"
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if ckpt.exists():
        return "missing", f"interrupted in stage 2; resumes from {ckpt}"
    return "missing", "started (no checkpoint yet)" if run_dir.exists() else ""


def first_line(text: Any) -> str:
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return lines[0] if lines else ""


# ----------------------------------------------------------------------------- writing
def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


def write_result(run_dir: str | os.PathLike, result: dict[str, Any],
                 examples: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a finished cell: examples.json (when given), then result.json. A result of
    another config already there is kept as result.<its hash>.json; an error.json of an
    earlier attempt becomes error.resolved.json. Returns the result as written."""
    run_dir = Path(run_dir)
    result = validate_result(_nan_to_none(dict(result, schema=RESULT_SCHEMA)))
    if examples:
        atomic_write_json(run_dir / EXAMPLES, {"schema": EXAMPLES_SCHEMA, "config_hash": result.get("config_hash"),
                                               **examples})
        result["examples"] = EXAMPLES
    path = run_dir / RESULT
    if path.exists():
        try:
            old_hash = str(read_json(path).get("config_hash", "unknown"))
        except (MalformedFileError, AttributeError):
            old_hash = "unreadable"
        if old_hash != result.get("config_hash"):
            os.replace(path, run_dir / f"result.{old_hash}.json")
    atomic_write_json(path, result)
    if (run_dir / ERROR).exists():
        os.replace(run_dir / ERROR, run_dir / "error.resolved.json")
    return result


def write_error(run_dir: str | os.PathLike, cfg: dict[str, Any], exc: BaseException,
                chash: str | None) -> Path:
    """error.json for a failed cell (the config redacted of secrets)."""
    path = Path(run_dir) / ERROR
    atomic_write_json(path, {
        "schema": ERROR_SCHEMA, "status": "failed", "experiment": cfg.get("experiment_name"),
        "cell": CellKey.of_config(cfg).as_dict(), "exception": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "config": redact(cfg), "config_hash": chash, "failed_at": utc_now()})
    return path


def _read_lenient(path: Path, accept: Any) -> dict[str, Any] | None:
    """A JSON file that ``accept`` takes, or None (absent, or unreadable: logged)."""
    if not path.exists():
        return None
    try:
        data = read_json(path)
    except MalformedFileError as exc:
        log.warning("Ignoring unreadable %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) and accept(data) else None


def read_examples(run_dir: str | os.PathLike, config_hash: str | None = None) -> dict[str, Any] | None:
    """examples.json of a cell; None when absent, unreadable, or (given the result's
    ``config_hash``) written by another config than the result beside it (logged)."""
    path = Path(run_dir) / EXAMPLES
    data = _read_lenient(path, lambda d: str(d.get("schema", "")).startswith("itt.examples/"))
    if data is not None and config_hash is not None and data.get("config_hash") != config_hash:
        log.warning("%s: config_hash %s is not its result's %s (a stale file); ignored", path,
                    data.get("config_hash"), config_hash)
        return None
    return data


# ----------------------------------------------------------------------------- plan.json
def read_plan(sweep_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The plan of a sweep directory, or None when it has none (or an unreadable one)."""
    return _read_lenient(Path(sweep_dir) / PLAN, lambda d: isinstance(d.get("cells"), list))


def write_plan(sweep_dir: str | os.PathLike, experiment: str, cells: Sequence[dict[str, Any]],
               **fields: Any) -> tuple[int, int]:
    """Add ``cells`` to the plan of ``sweep_dir`` (written atomically). Returns (cells in the
    plan, cells new to it). A cell planned again keeps its place and takes the new entry."""
    sweep_dir = Path(sweep_dir)
    old = read_plan(sweep_dir) or {}
    merged: dict[tuple, dict[str, Any]] = {}
    for cell in old.get("cells", []):
        try:
            merged[cell_key(cell)] = cell
        except MalformedFileError:
            continue
    before = set(merged)
    for cell in cells:
        merged[cell_key(cell)] = dict(cell)
    new = len(set(merged) - before)
    plan = {"schema": PLAN_SCHEMA, "experiment": experiment, **{k: v for k, v in old.items()
                                                              if k not in ("cells", "schema", "experiment")},
            **fields, "created": old.get("created") or utc_now(), "updated": utc_now(),
            "cells": list(merged.values())}
    atomic_write_json(sweep_dir / PLAN, plan)
    return len(merged), new


def find_files(dirs: Iterable[str | os.PathLike], name: str) -> list[Path]:
    """Every file called ``name`` under ``dirs`` (recursively), each listed once, sorted."""
    seen: set[Path] = set()
    found: list[Path] = []
    for root in map(Path, dirs):
        if root.is_file():
            candidates = [root] if root.name == name else []
        elif root.is_dir():
            candidates = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                if name in filenames:
                    candidates.append(Path(dirpath) / name)
        else:
            candidates = []
        for path in candidates:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                found.append(path)
    return sorted(found)
