"""A Hydra sweeper for the ITT grid: Hydra's basic cartesian sweep, minus the cells that are
not part of the design, plus a plan of the cells it launches.

The grid is model x intermediate x target x seed, but an intermediate task pairs only with
the targets of its own NLP task (``field`` in the task cards): a sentiment intermediate
task is not run before a topic-classification target. ``pairing: all`` keeps the full
product. Before launching, ``plan.json`` at the sweep root lists every cell (docs/schemas.md)
so that reports and status commands can name the missing ones.
"""


import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


@dataclass
class ITTSweeperConf:
    _target_: str = "hydra_plugins.itt_sweeper.itt_sweeper.ITTSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    pairing: str = "same_field"  # same_field | all


ConfigStore.instance().store(group="hydra/sweeper", name="itt", node=ITTSweeperConf, provider="itt")

_CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _card_field(group: str, name: str) -> Optional[str]:
    path = _CONF_DIR / "task" / f"{name}.yaml"
    if not path.exists():
        return None  # Hydra reports the unknown name (with the known ones) when composing
    card = OmegaConf.load(path)
    return None if card.get("type") == "none" else str(card.get("field", ""))


def keep_cell(choices: Dict[str, str], pairing: str) -> bool:
    """Whether a combination of config-group choices belongs to the grid."""
    if pairing == "all":
        return True
    inter, target = choices.get("intermediate"), choices.get("target")
    if inter in (None, "none") or target is None:
        return True
    fi, ft = _card_field("task", inter), _card_field("task", target)
    return fi is None or ft is None or fi == ft


class ITTSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int], params: Optional[Dict[str, str]] = None,
                 pairing: str = "same_field") -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        if pairing not in ("same_field", "all"):
            raise ValueError(f"hydra.sweeper.pairing must be same_field or all, not {pairing!r}")
        self.pairing = pairing

    def sweep(self, arguments: List[str]) -> Any:
        self._pairing_arguments = arguments
        return super().sweep(arguments)

    def split_arguments(self, overrides: List[Any], max_batch_size: Optional[int]) -> List[List[List[str]]]:  # type: ignore[override]
        batches = BasicSweeper.split_arguments(overrides, None)[0]
        kept = [b for b in batches if keep_cell(self._choices(b), self.pairing)]
        dropped = len(batches) - len(kept)
        if dropped:
            log.info("Sweep: %d cells (%d combinations left out: intermediate and target from different "
                     "fields; hydra.sweeper.pairing=all keeps them)", len(kept), dropped)
        self._write_plan(kept)
        if max_batch_size is None:
            return [kept]
        return [kept[i:i + max_batch_size] for i in range(0, len(kept), max_batch_size)]

    @staticmethod
    def _choices(batch: List[str]) -> Dict[str, str]:
        out = {}
        for item in batch:
            key, _, value = item.partition("=")
            out[key.lstrip("+~")] = value
        return out

    def _write_plan(self, batches: List[List[str]]) -> None:
        cfg = self.config
        if cfg is None:
            return
        base = {"model": cfg.hydra.runtime.choices.get("model"),
                "intermediate": cfg.hydra.runtime.choices.get("intermediate"),
                "target": cfg.hydra.runtime.choices.get("target"), "seed": cfg.get("seed", 0)}
        cells = []
        for batch in batches:
            ch = self._choices(batch)
            cell = dict(base)
            for k in ("model", "intermediate", "target"):
                if k in ch:
                    cell[k] = ch[k]
            if "seed" in ch:
                cell["seed"] = int(ch["seed"])
            cell["overrides"] = list(batch)
            cells.append(cell)
        sweep_dir = Path(str(cfg.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        plan = {"experiment": cfg.get("experiment_name"), "pairing": self.pairing, "cells": cells}
        tmp = sweep_dir / f".plan.json.{os.getpid()}"
        tmp.write_text(json.dumps(plan, indent=1) + "\n")
        os.replace(tmp, sweep_dir / "plan.json")
