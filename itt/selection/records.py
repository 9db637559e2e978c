"""selection.json: read, merge, write (format: docs/schemas.md), and its console table."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Iterable

from itt.utils import atomic_write_json, utc_now

log = logging.getLogger(__name__)

SCHEMA = "itt.selection/1"
SELECTION_FILE = "selection.json"


def entry_key(entry: dict[str, Any]) -> tuple[str, str, int]:
    return (str(entry.get("model")), str(entry.get("target")), int(entry.get("seed", 0)))


def read_selection(path: str | Path) -> dict[str, Any] | None:
    """A selection.json, or None when absent or not one (unreadable files are logged)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("Ignoring unreadable %s: %s", path, exc)
        return None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("itt.selection/") \
            or not isinstance(data.get("entries"), list):
        log.warning("Ignoring %s: not an itt.selection file", path)
        return None
    return data


def write_selection(path: str | Path, experiment: str, entries: Iterable[dict[str, Any]],
                    settings: dict[str, Any], wall_time_s: float) -> dict[str, Any]:
    """Merge ``entries`` into the selection file at ``path`` (an entry for the same model,
    target and seed is replaced) and write it atomically; returns what was written."""
    path = Path(path)
    old = read_selection(path) or {}
    merged = {entry_key(e): e for e in old.get("entries", []) if isinstance(e, dict)}
    for e in entries:
        merged[entry_key(e)] = e
    data = {"schema": SCHEMA, "experiment": experiment, "created": old.get("created") or utc_now(),
            "updated": utc_now(), "settings": settings, "wall_time_s": round(wall_time_s, 3),
            "entries": sorted(merged.values(), key=entry_key)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, data)
    return data


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def format_table(entries: list[dict[str, Any]]) -> str:
    """Markdown tables: per (model, target, seed) each candidate's score (rank) per method,
    then each method's cost."""
    lines: list[str] = []
    for e in entries:
        methods = list(e["methods"])
        lines += [f"### {e['model']} → {e['target']} (seed {e['seed']})", "",
                  "| candidate | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for cand in e["candidates"]:
            cells = []
            for m in methods:
                block = e["methods"][m]
                score, rank = block["scores"].get(cand), block["ranks"].get(cand)
                cells.append(f"{_fmt(score)} ({rank})" if rank else _fmt(score))
            lines.append(f"| {cand} | " + " | ".join(cells) + " |")
        ref = e["methods"].get("logme", {}).get("reference")
        if ref is not None:
            lines.append("| *base encoder* | " + " | ".join(_fmt(ref) if m == "logme" else "" for m in methods)
                         + " |")
        lines += ["", "| method | cost (s) | needs stage 1 | stage-1 training (s) |", "|---|---|---|---|"]
        for m in methods:
            block = e["methods"][m]
            lines.append(f"| {m} | {block['cost_s']:.1f} | {'yes' if block['needs_stage1'] else 'no'} | "
                         f"{_fmt(block.get('stage1_train_s')) if block['needs_stage1'] else '—'} |")
        skipped = {f"{m}: {c}": why for m in methods for c, why in e["methods"][m]["skipped"].items()}
        if skipped:
            lines += [""] + [f"- not scored, {k}: {why}" for k, why in skipped.items()]
        lines.append("")
    return "\n".join(lines)
