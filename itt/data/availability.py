"""Which offline-suite datasets a sweep can use: a task whose built files are absent is left
out of the plan (with one warning naming the fix) instead of failing cell after cell.

Only the offline suite's datasets (:data:`itt.assets.catalog.CATALOG`) are checked; hub
datasets and other local cards load (or fail with their own message) when a cell runs.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

STSB_DEFAULT = "../shared/data/stsb-multi-mt"


def missing_offline_data(task_names: Iterable[str], assets_root: str | os.PathLike) -> dict[str, str]:
    """``{task: why and how to fix}`` for offline-suite tasks whose data files are not built.

    A dataset counts as built when the asset manifest lists it and every file it lists
    exists. The STS benchmark sets are only built when the stsb-multi-mt folder exists, so
    their fix names it (``ITT_STSB_DIR`` or ../shared/data/stsb-multi-mt); the others name
    ``python -m itt.assets fetch``.
    """
    from itt.assets import catalog, store

    specs = {s.name: s for s in catalog.CATALOG if s.kind == "dataset"}
    names = [n for n in dict.fromkeys(task_names) if n in specs]
    if not names:
        return {}
    root = Path(assets_root)
    entries = (store.load_manifest(root) if root.is_dir() else {}).get("assets", {})
    out: dict[str, str] = {}
    for name in names:
        entry = entries.get(name) or {}
        files = entry.get("files") or {}
        if files and all((root / rel).is_file() for rel in files):
            continue
        if specs[name].needs_stsb:
            found, _ = store.stsb_dir()
            if found is None:
                out[name] = (f"its data is built from the STS benchmark (stsb-multi-mt), which is not "
                             f"there: put the folder at {STSB_DEFAULT} or point ITT_STSB_DIR at it, "
                             f"then run `python -m itt.assets fetch`")
                continue
        out[name] = f"its data files are not built in {root}: run `python -m itt.assets fetch`"
    return out


def leave_out_missing(jobs: list[list[str]], assets_root: str | os.PathLike) -> tuple[list[list[str]], int]:
    """The sweep's jobs (override lists) without those whose intermediate or target task has
    no data (:func:`missing_offline_data`), and how many were left out; one warning per
    cause (the STS sets share one)."""
    tasks = [o.split("=", 1)[1] for job in jobs for o in job
             if o.split("=", 1)[0].lstrip("+~") in ("intermediate", "target") and "=" in o]
    missing = missing_offline_data(tasks, assets_root)
    if not missing:
        return jobs, 0
    kept = [job for job in jobs
            if not any(o.split("=", 1)[0].lstrip("+~") in ("intermediate", "target")
                       and o.split("=", 1)[-1] in missing for o in job)]
    by_reason: dict[str, list[str]] = {}
    for name, why in missing.items():
        by_reason.setdefault(why, []).append(name)
    for why, names in by_reason.items():
        log.warning("%d cells with %s left out of the plan: %s.", sum(
            any(o.split("=", 1)[-1] in names for o in job) for job in jobs), " / ".join(sorted(names)), why)
    return kept, len(jobs) - len(kept)
