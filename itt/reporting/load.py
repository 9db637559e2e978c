"""Find and parse result.json / error.json / plan.json files (formats: docs/schemas.md).

Loading is forgiving by design: a malformed file is skipped with a warning that names it,
so that one broken cell never hides the finished ones. The caller decides whether an
empty result set is fatal.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from itt.errors import ITTError
# File names, the typed checks of each file and where outputs lie: itt/records.py.
from itt.records import ERROR as ERROR_FILE
from itt.records import PLAN as PLAN_FILE
from itt.records import RESULT as RESULT_FILE
from itt.records import MalformedFileError, default_result_dirs, find_files, first_line, read_json, validate_result

__all__ = ["ERROR_FILE", "PLAN_FILE", "RESULT_FILE", "MalformedFileError", "find_files", "first_line",
           "NONE", "CELL_KEY", "Scan", "scan", "parse_result", "parse_error", "parse_plan", "format_cell",
           "ReportInputError", "normalize_intermediate"]

logger = logging.getLogger(__name__)

NONE = "none"
DEFAULT_EXPERIMENT = "default"

#: Identifies one cell of the grid (a cell is one fine-tuning run).
CELL_KEY: list[str] = ["experiment", "model", "intermediate", "target", "seed"]

RESULT_COLUMNS: list[str] = [
    "experiment", "model", "pretraining", "architecture",
    "intermediate", "intermediate_field", "intermediate_domain",
    "target", "field", "setting", "benchmark", "target_domain", "train_language",
    "same_domain", "seed", "value", "metric", "main_metric",
    "per_language", "average", "majority", "zero_shot", "status", "finished_at", "path",
]
FAILURE_COLUMNS: list[str] = [
    "experiment", "model", "intermediate", "target", "seed", "exception", "failed_at", "path",
]
PLAN_COLUMNS: list[str] = ["experiment", "model", "intermediate", "target", "seed", "path"]

PathLike = str | os.PathLike


class ReportInputError(ITTError):
    """The report has nothing to work on: no results found, or none readable."""


@dataclass
class Scan:
    """Everything found under the searched directories."""

    results: pd.DataFrame
    failures: pd.DataFrame
    plans: pd.DataFrame
    malformed: list[tuple[Path, str]] = field(default_factory=list)
    searched: list[Path] = field(default_factory=list)
    absent: list[Path] = field(default_factory=list)
    superseded_failures: int = 0
    duplicates: int = 0

    @property
    def n_result_files(self) -> int:
        return len(self.results) + self.duplicates


# --------------------------------------------------------------------------- discovery


def _as_paths(dirs: PathLike | Iterable[PathLike] | None) -> list[Path]:
    if dirs is None:
        return default_result_dirs()
    if isinstance(dirs, (str, os.PathLike)):
        return [Path(dirs)]
    return [Path(d) for d in dirs]


# --------------------------------------------------------------------------- helpers


def normalize_intermediate(value: Any) -> str:
    """Map the spellings of "no intermediate task" (null, "none", "") to ``"none"``."""
    if isinstance(value, dict):
        value = value.get("name")
    if value is None:
        return NONE
    text = str(value).strip()
    return NONE if text.lower() in {"", "none", "null"} else text


def _number(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedFileError(f"{where} is {value!r}, expected a number")
    return float(value)


def _seed(value: Any) -> int:
    if isinstance(value, bool):
        raise MalformedFileError(f"cell.seed is {value!r}, expected an integer")
    try:
        seed = int(value)
    except (TypeError, ValueError):
        raise MalformedFileError(f"cell.seed is {value!r}, expected an integer") from None
    if seed != value and str(seed) != str(value):
        raise MalformedFileError(f"cell.seed is {value!r}, expected an integer")
    return seed


def _dict(value: Any, where: str, required: bool = False) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise MalformedFileError(f"{where} is {type(value).__name__}, expected an object")
    return value


def _metric_value(block: dict, metric: str, where: str) -> float:
    """The ``metric`` of a metrics-like block ({main, per_language, average})."""
    if metric == "main":
        return _number(block.get("main"), f"{where}.main")
    average = _dict(block.get("average"), f"{where}.average")
    if metric in average:
        return _number(average[metric], f"{where}.average.{metric}")
    per_language = _dict(block.get("per_language"), f"{where}.per_language")
    values = [
        _number(scores[metric], f"{where}.per_language.{lang}.{metric}")
        for lang, scores in per_language.items()
        if isinstance(scores, dict) and metric in scores
    ]
    return sum(values) / len(values) if values else math.nan


def _baseline(baselines: dict, name: str, metric: str) -> float:
    block = baselines.get(name)
    if block is None:
        return math.nan
    if isinstance(block, (int, float)) and not isinstance(block, bool):
        return float(block)
    return _metric_value(_dict(block, f"baselines.{name}"), metric, f"baselines.{name}")


# --------------------------------------------------------------------------- parsers


def parse_result(path: Path, metric: str = "main") -> dict[str, Any]:
    """One result.json as a flat row; raises :class:`MalformedFileError` naming the problem."""
    data = validate_result(read_json(path))
    schema = data.get("schema")
    if schema is not None and not str(schema).startswith("itt.result/"):
        raise MalformedFileError(f"schema is {schema!r}, expected 'itt.result/1'")
    status = data.get("status", "ok")
    if status != "ok":
        raise MalformedFileError(f"status is {status!r}, expected 'ok'")

    cell = _dict(data.get("cell"), "cell", required=True)
    model = _dict(data.get("model"), "model")
    inter = _dict(data.get("intermediate"), "intermediate")
    target = _dict(data.get("target"), "target")
    metrics = _dict(data.get("metrics"), "metrics", required=True)
    baselines = _dict(data.get("baselines"), "baselines")

    model_name = cell.get("model") or model.get("name")
    target_name = cell.get("target") or target.get("name")
    if not model_name:
        raise MalformedFileError("cell.model is missing")
    if not target_name:
        raise MalformedFileError("cell.target is missing")
    if "seed" not in cell:
        raise MalformedFileError("cell.seed is missing")
    if "main" not in metrics:
        raise MalformedFileError("metrics.main is missing")

    intermediate = normalize_intermediate(cell.get("intermediate", inter.get("name")))
    main_metric = target.get("main_metric") or "main"
    value = _metric_value(metrics, metric, "metrics")
    metric_name = main_metric if metric == "main" else metric

    per_language: dict[str, dict[str, float]] = {}
    for lang, scores in _dict(metrics.get("per_language"), "metrics.per_language").items():
        scores = _dict(scores, f"metrics.per_language.{lang}", required=True)
        per_language[str(lang)] = {
            str(k): _number(v, f"metrics.per_language.{lang}.{k}") for k, v in scores.items()
        }
    average = {
        str(k): _number(v, f"metrics.average.{k}")
        for k, v in _dict(metrics.get("average"), "metrics.average").items()
    }

    inter_domain = inter.get("domain") if intermediate != NONE else None
    target_domain = target.get("domain")
    same_domain = (
        None if intermediate == NONE or not inter_domain or not target_domain
        else inter_domain == target_domain
    )
    return {
        "experiment": str(data.get("experiment") or DEFAULT_EXPERIMENT),
        "model": str(model_name),
        "pretraining": str(model.get("pretraining") or "unknown"),
        "architecture": model.get("architecture"),
        "intermediate": intermediate,
        "intermediate_field": inter.get("field") if intermediate != NONE else None,
        "intermediate_domain": inter_domain,
        "target": str(target_name),
        "field": str(target.get("field") or "unknown"),
        "setting": str(target.get("setting") or "unknown"),
        "benchmark": target.get("benchmark"),
        "target_domain": target_domain,
        "train_language": target.get("train_language"),
        "same_domain": same_domain,
        "seed": _seed(cell["seed"]),
        "value": value,
        "metric": metric_name,
        "main_metric": main_metric,
        "per_language": per_language,
        "average": average,
        "majority": _baseline(baselines, "majority", metric),
        "zero_shot": _baseline(baselines, "zero_shot", metric),
        "status": "ok",
        "finished_at": str(data.get("finished_at") or ""),
        "path": str(path),
    }


def parse_error(path: Path) -> dict[str, Any]:
    """One error.json as a flat row (the exception reduced to its first line)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise MalformedFileError("top level is not a JSON object")
    cell = _dict(data.get("cell"), "cell", required=True)
    exception = first_line(data.get("exception"))
    if not exception:
        lines = [ln for ln in str(data.get("traceback") or "").splitlines() if ln.strip()]
        exception = lines[-1].strip() if lines else "(no exception message)"
    seed = cell.get("seed")
    return {
        "experiment": str(data.get("experiment") or DEFAULT_EXPERIMENT),
        "model": str(cell.get("model") or "?"),
        "intermediate": normalize_intermediate(cell.get("intermediate")),
        "target": str(cell.get("target") or "?"),
        "seed": _seed(seed) if seed is not None else -1,
        "exception": exception,
        "failed_at": str(data.get("failed_at") or ""),
        "path": str(path),
    }


def parse_plan(path: Path) -> list[dict[str, Any]]:
    """The planned cells of one plan.json."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise MalformedFileError("expected an object with a 'cells' list")
    experiment = str(data.get("experiment") or DEFAULT_EXPERIMENT)
    rows = []
    for i, cell in enumerate(data["cells"]):
        cell = _dict(cell, f"cells[{i}]", required=True)
        if not cell.get("model") or not cell.get("target") or "seed" not in cell:
            raise MalformedFileError(f"cells[{i}] needs model, target and seed")
        rows.append({
            "experiment": str(cell.get("experiment") or experiment),
            "model": str(cell["model"]),
            "intermediate": normalize_intermediate(cell.get("intermediate")),
            "target": str(cell["target"]),
            "seed": _seed(cell["seed"]),
            "path": str(path),
        })
    return rows


# --------------------------------------------------------------------------- scanning


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    if "seed" in frame:
        frame["seed"] = frame["seed"].astype("int64")
    return frame


def scan(dirs: PathLike | Iterable[PathLike] | None = None, metric: str = "main") -> Scan:
    """Read every result/error/plan file under ``dirs`` (default: outputs/multirun, outputs/runs).

    Malformed files are skipped and listed in ``Scan.malformed`` (and logged). When the same
    cell has several result.json files the latest ``finished_at`` wins; an error.json whose
    cell also has a result is an earlier failure that a re-run fixed and is dropped.
    """
    roots = _as_paths(dirs)
    searched = [r for r in roots if r.exists()]
    absent = [r for r in roots if not r.exists()]
    for root in absent:
        logger.warning("results directory %s does not exist", root)
    malformed: list[tuple[Path, str]] = []

    results: dict[tuple, dict[str, Any]] = {}
    duplicates = 0
    for path in find_files(searched, RESULT_FILE):
        try:
            row = parse_result(path, metric)
        except MalformedFileError as exc:
            logger.warning("skipping malformed %s: %s", path, exc)
            malformed.append((path, str(exc)))
            continue
        key = tuple(row[k] for k in CELL_KEY)
        if key in results:
            duplicates += 1
            old = results[key]
            keep, drop = (row, old) if row["finished_at"] >= old["finished_at"] else (old, row)
            logger.warning("cell %s has two results; using %s, ignoring %s",
                           format_cell(dict(zip(CELL_KEY, key))), keep["path"], drop["path"])
            results[key] = keep
        else:
            results[key] = row

    failures: list[dict[str, Any]] = []
    superseded = 0
    for path in find_files(searched, ERROR_FILE):
        try:
            row = parse_error(path)
        except MalformedFileError as exc:
            logger.warning("malformed %s: %s", path, exc)
            malformed.append((path, str(exc)))
            failures.append({"experiment": "?", "model": "?", "intermediate": "?", "target": "?",
                             "seed": -1, "exception": f"unreadable error.json: {exc}",
                             "failed_at": "", "path": str(path)})
            continue
        if tuple(row[k] for k in CELL_KEY) in results:
            superseded += 1
            logger.info("%s is superseded by a later result of the same cell", path)
            continue
        failures.append(row)

    plans: list[dict[str, Any]] = []
    for path in find_files(searched, PLAN_FILE):
        try:
            plans.extend(parse_plan(path))
        except MalformedFileError as exc:
            logger.warning("skipping malformed %s: %s", path, exc)
            malformed.append((path, str(exc)))

    result_frame = _frame(list(results.values()), RESULT_COLUMNS)
    if len(result_frame):
        result_frame = result_frame.sort_values(
            ["experiment", "model", "target", "intermediate", "seed"], kind="stable"
        ).reset_index(drop=True)
    if metric != "main" and len(result_frame):
        absent_metric = int(result_frame["value"].isna().sum())
        if absent_metric:
            logger.warning("metric %r is missing in %d of %d results (left empty)",
                           metric, absent_metric, len(result_frame))
    failure_frame = _frame(failures, FAILURE_COLUMNS)
    plan_frame = _frame(plans, PLAN_COLUMNS).drop_duplicates(subset=CELL_KEY).reset_index(drop=True)
    return Scan(result_frame, failure_frame, plan_frame, malformed, searched, absent,
                superseded, duplicates)


def format_cell(cell: dict[str, Any]) -> str:
    """``model=… intermediate=… target=… seed=…`` (with the experiment when not the default)."""
    text = (f"model={cell.get('model')} intermediate={cell.get('intermediate')} "
            f"target={cell.get('target')} seed={cell.get('seed')}")
    experiment = cell.get("experiment")
    if experiment and experiment != DEFAULT_EXPERIMENT:
        text = f"experiment={experiment} {text}"
    return text
