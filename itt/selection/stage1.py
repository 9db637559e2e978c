"""The stage-1 models the selection methods read: looked up in the content-addressed cache
that the grid's cells fill, and trained into it on request.

Every import of the stage-1 cache and of the cell's stage-1 training is here, so that a move
of that code touches this file only.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itt.config import apply_card_settings
from itt.cell import stage1 as _train_or_reuse
from itt.stage1_cache import load_encoder_state, load_head_state, read_meta, stage1_dir, stage1_key
from itt.stage1_cache import ready as stage1_ready

log = logging.getLogger(__name__)

__all__ = ["Stage1", "locate", "ensure", "load_encoder_state", "load_head_state", "apply_card_settings"]


@dataclass
class Stage1:
    """Where the stage-1 model of one cell config lives, and what its training cost."""

    key: str
    path: Path
    ready: bool
    train_s: float | None = None      # wall time of its training (from the cache's metadata)
    trained_now: bool = False


def locate(cfg: dict[str, Any]) -> Stage1:
    """The stage-1 model of a cell config (with the card settings applied, as a cell does)."""
    key = stage1_key(cfg)
    path = stage1_dir(cfg["paths"]["cache_dir"], key)
    ready = stage1_ready(path)
    train_s = None
    if ready:
        try:
            train_s = read_meta(path).get("wall_time_s")
        except (OSError, ValueError) as exc:
            log.warning("Stage-1 metadata of %s unreadable: %s", path, exc)
    return Stage1(key=key, path=path, ready=ready, train_s=train_s)


def ensure(cfg: dict[str, Any], run_dir: Path) -> Stage1:
    """The stage-1 model of a cell config, trained now (under the cache's lock, exactly as a
    cell of the grid trains it) when the cache lacks it."""
    from itt.data.cards import card_from_config

    found = locate(cfg)
    if found.ready:
        return found
    inter = card_from_config(cfg["intermediate"], "intermediate")
    quiet = dict(cfg, logger={"type": "none"})
    t0 = time.perf_counter()
    _train_or_reuse(quiet, inter, run_dir)
    found = locate(cfg)
    found.trained_now = True
    if found.train_s is None:
        found.train_s = round(time.perf_counter() - t0, 3)
    return found
