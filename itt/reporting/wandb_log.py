"""Optional upload of the report's tables and figures to Weights & Biases.

Only tables and images are sent; no environment values or keys are read into the report,
and a W&B failure never fails the report (the files are already written).
"""
from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Mapping

import pandas as pd

logger = logging.getLogger(__name__)

OFFLINE_MODES = frozenset({"offline", "disabled", "dryrun"})


def wandb_online() -> bool:
    """True when WANDB_MODE does not turn W&B off and the ``wandb`` package is importable."""
    if os.environ.get("WANDB_MODE", "").strip().lower() in OFFLINE_MODES:
        return False
    if os.environ.get("WANDB_DISABLED", "").strip().lower() in {"1", "true", "yes"}:
        return False
    try:
        importlib.import_module("wandb")
    except ImportError:
        return False
    return True


def log_report(tables: Mapping[str, pd.DataFrame], images: Mapping[str, Path],
               project: str | None = None) -> bool:
    """Log ``tables`` (as wandb.Table) and ``images`` to a new run with job_type="report".

    Returns whether anything was logged.
    """
    if not wandb_online():
        logger.info("W&B is offline, disabled or not installed; the report was written to files only")
        return False
    try:
        import wandb

        run = wandb.init(project=project or os.environ.get("WANDB_PROJECT") or "itt",
                         job_type="report")
        payload: dict[str, object] = {}
        for name, frame in tables.items():
            if frame is None or frame.empty:
                continue
            flat = frame.reset_index() if frame.index.name or frame.index.nlevels > 1 else frame
            flat = flat.copy()
            flat.columns = [": ".join(map(str, c)) if isinstance(c, tuple) else str(c)
                            for c in flat.columns]
            payload[name] = wandb.Table(dataframe=flat.astype(object).where(flat.notna(), None))
        for name, path in images.items():
            payload[name] = wandb.Image(str(path))
        run.log(payload)
        run.finish()
        logger.info("logged %d tables/images to W&B", len(payload))
        return True
    except Exception as exc:  # noqa: BLE001 - W&B is best effort; the files exist already
        logger.warning("W&B logging failed (%s: %s); the report files are unaffected",
                       type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return False
