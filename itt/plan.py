"""The cells of a sweep: their names, ``plan.json`` at the sweep root, and the command that
runs one cell on its own.

A sweep (``python -m itt.train -m ...``) writes ``plan.json`` before it launches anything, so
that ``python -m itt.status`` and the report can tell finished, failed and missing cells
apart however the sweep ended (format: docs/schemas.md). Several sweeps into the same
directory (say one per encoder, or a rerun with a new seed) add to the plan rather than
replace it; delete the file to start a plan afresh.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Iterable

# plan.json itself (its cells, reading and merging) is a record: itt/records.py owns it.
from itt.records import CELL_KEYS, cell_key, format_cell, read_plan, write_plan
from itt.records import PLAN as PLAN_FILE

log = logging.getLogger(__name__)

__all__ = ["CELL_KEYS", "DISTRIBUTED_ENV", "PLAN_FILE", "cell_key", "format_cell", "read_plan",
           "single_cell_command", "single_process_env", "write_plan"]


# Variables through which Lightning and torchrun tell a process its place in a DDP group.
# A cell that starts its own DDP group must not inherit them from the process launching it.
DISTRIBUTED_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK",
                   "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "ITT_STAGE1_TRAINING")


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
