"""The cells of a sweep: their names, ``plan.json`` at the sweep root, and the command that
runs one cell on its own.

A sweep (``python -m itt.train -m ...``) writes ``plan.json`` before it launches anything, so
that ``python -m itt.status`` and the report can tell finished, failed and missing cells
apart however the sweep ended (format: docs/schemas.md). Several sweeps into the same
directory (say one per encoder, or a rerun with a new seed) add to the plan rather than
replace it; delete the file to start a plan afresh.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from itt.utils import atomic_write_json, utc_now

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
CELL_KEYS = ("model", "intermediate", "target", "seed")

# Variables through which Lightning and torchrun tell a process its place in a DDP group.
# A cell that starts its own DDP group must not inherit them from the process launching it.
DISTRIBUTED_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK",
                   "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "ITT_STAGE1_TRAINING")


def cell_key(cell: dict[str, Any]) -> tuple[str, str, str, int]:
    """(model, intermediate, target, seed) of a cell dict (plan entry or result ``cell``)."""
    return (str(cell.get("model")), str(cell.get("intermediate") or "none"), str(cell.get("target")),
            int(cell.get("seed", 0)))


def format_cell(cell: dict[str, Any]) -> str:
    return " ".join(f"{k}={cell.get(k)}" for k in CELL_KEYS)


def read_plan(sweep_dir: str | Path) -> dict[str, Any] | None:
    """The plan of a sweep directory, or None when it has none (or an unreadable one)."""
    path = Path(sweep_dir) / PLAN_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("Ignoring unreadable %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) and isinstance(data.get("cells"), list) else None


def write_plan(sweep_dir: str | Path, experiment: str, cells: Sequence[dict[str, Any]],
               **fields: Any) -> tuple[int, int]:
    """Add ``cells`` to the plan of ``sweep_dir`` (written atomically). Returns (cells in the
    plan, cells new to it). A cell planned again keeps its place and takes the new entry."""
    sweep_dir = Path(sweep_dir)
    old = read_plan(sweep_dir) or {}
    merged: dict[tuple, dict[str, Any]] = {}
    for cell in old.get("cells", []):
        try:
            merged[cell_key(cell)] = cell
        except (TypeError, ValueError):
            continue
    before = set(merged)
    for cell in cells:
        merged[cell_key(cell)] = dict(cell)
    new = len(set(merged) - before)
    plan = {"schema": "itt.plan/1", "experiment": experiment, **fields,
            "created": old.get("created") or utc_now(), "updated": utc_now(),
            "cells": list(merged.values())}
    atomic_write_json(sweep_dir / PLAN_FILE, plan)
    return len(merged), new


def single_cell_command(task_overrides: Iterable[str], run_dir: str | Path, *,
                        hydra_overrides: Iterable[str] = (), config_name: str | None = None,
                        config_dirs: Iterable[str] = (), module: str = "itt.train") -> list[str]:
    """The command line that runs one cell of a sweep by itself, in ``run_dir``.

    It is a plain (non ``-m``) run of the same app with the cell's overrides, so the cell's
    config is the one the sweep composed; Lightning's DDP launcher re-runs exactly this
    command for the other ranks.
    """
    keep = [o for o in hydra_overrides if not _sweep_only(o)]
    cmd = [sys.executable, "-m", module]
    if config_name:
        cmd += ["--config-name", config_name]
    for d in config_dirs:
        cmd += ["--config-dir", str(d)]
    return cmd + list(task_overrides) + keep + [f"hydra.run.dir='{Path(run_dir)}'"]


def _sweep_only(override: str) -> bool:
    key = override.split("=", 1)[0].lstrip("+~")
    return key.startswith(("hydra/launcher", "hydra/sweeper", "hydra.launcher", "hydra.sweeper",
                           "hydra.sweep", "hydra.run", "hydra.mode", "hydra.job.num", "hydra.job.id"))


def single_process_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) without inherited DDP placement."""
    env = dict(os.environ if base is None else base)
    for name in DISTRIBUTED_ENV:
        env.pop(name, None)
    return env
