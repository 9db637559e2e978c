"""Item 5: what a sweep costs beyond its cells.

* Stage-1 sharing: the trainings a grid runs with itt's stage-1 cache against those a
  naive grid would run (every cell training its own intermediate model). A count, computed
  from the grid's plan: the sweeper's cells (``keep_cell``: the grid minus cross-field
  pairs) and, per cell, ``itt.stage1_cache.stage1_key`` of the config the cell composes.
* Start-up: the imports a cell's process pays before it trains, against a bare Python
  start, in fresh processes, interleaved.
* The sweep itself (K cells sequentially against the local launcher's workers) is
  benchmarks/bench_sweep.py, run from benchmarks/run.py.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import REPO_ROOT, Goal, Section, Settings, interleave


def _field(group: str, choice: str) -> str | None:
    """A task card's ``field`` as written (None for ``none`` and for cards without one)."""
    from omegaconf import OmegaConf

    path = REPO_ROOT / "conf" / group / f"{choice}.yaml"
    if not path.exists():
        return None
    card = OmegaConf.load(path)
    if card.get("type") == "none" or card.get("field") is None:
        return None
    return str(card.get("field"))


def grid_cells(experiment: str) -> tuple[list[dict[str, str]], str]:
    """The cells a ``-m experiment=<name>`` sweep launches: the experiment's sweeper params,
    minus the pairs the ITT sweeper leaves out (``ITTSweeper.keep``: an intermediate task
    pairs with the targets of its own field; ``none`` with every target)."""
    from omegaconf import OmegaConf

    exp = OmegaConf.load(REPO_ROOT / "conf" / "experiment" / f"{experiment}.yaml")
    sweeper = OmegaConf.to_container(exp.get("hydra", {}).get("sweeper", {}) or {}, resolve=False) or {}
    params = {k: [v.strip() for v in str(val).split(",")] for k, val in (sweeper.get("params") or {}).items()}
    pairing = str(sweeper.get("pairing", "same_field"))
    cells = []
    for model in params.get("model", [""]):
        for inter in params.get("intermediate", ["none"]):
            for target in params.get("target", [""]):
                fi, ft = _field("intermediate", inter), _field("target", target)
                if pairing != "all" and inter != "none" and fi is not None and ft is not None and fi != ft:
                    continue
                for seed in params.get("seed", ["0"]):
                    cells.append({"model": model, "intermediate": inter, "target": target, "seed": seed})
    return cells, pairing


def stage1_counts(experiment: str) -> dict[str, Any]:
    """Trainings of a grid with and without the stage-1 cache.

    One config is composed per (model, intermediate task) pair and ``stage1_key`` computed
    for each seed of the grid on it: the key depends on the seed only through ``cfg["seed"]``,
    so this equals composing every cell, in a fraction of the time."""
    from itt import stage1_cache
    from itt.config import apply_card_settings
    from itt.config import compose, to_dict

    cells, pairing = grid_cells(experiment)
    composed: dict[tuple[str, str], dict[str, Any]] = {}
    keys: set[str] = set()
    with_inter = [c for c in cells if c["intermediate"] != "none"]
    for c in with_inter:
        pair = (c["model"], c["intermediate"])
        if pair not in composed:
            composed[pair] = to_dict(compose([f"experiment={experiment}", f"model={c['model']}",
                                              f"intermediate={c['intermediate']}", f"target={c['target']}",
                                              "logger=none"]))
        cfg = dict(composed[pair], seed=int(c["seed"]))
        keys.add(stage1_cache.stage1_key(apply_card_settings(cfg)))
    naive = len(cells) + len(with_inter)
    shared = len(cells) + len(keys)
    return {"experiment": experiment, "pairing": pairing, "cells": len(cells), "cells_with_stage1": len(with_inter),
            "stage1_unique": len(keys), "naive_trainings": naive, "shared_trainings": shared,
            "saving": 1 - shared / naive if naive else 0.0}


def grid(settings: Settings, wl: Any = None) -> Section:
    sec = Section("grid", "5b. Stage-1 cache: trainings of a grid with and without sharing", settings.command("grid"))
    experiments = ["smoke"] if settings.quick else ["smoke", "mini", "paper", "xtreme_r"]
    rows = []
    start = time.perf_counter()
    for exp in experiments:
        if not (REPO_ROOT / "conf" / "experiment" / f"{exp}.yaml").exists():
            continue
        try:
            got = stage1_counts(exp)
        except Exception as exc:  # noqa: BLE001 - one broken experiment config must not hide the others
            rows.append([f"`{exp}`", "failed", f"{type(exc).__name__}: {str(exc)[:80]}", "", "", "", ""])
            continue
        sec.data[exp] = got
        stage1_saved = 1 - got["stage1_unique"] / got["cells_with_stage1"] if got["cells_with_stage1"] else 0.0
        rows.append([f"`{exp}`", got["cells"], got["cells_with_stage1"], got["stage1_unique"],
                     f"{got['naive_trainings']} → {got['shared_trainings']}", f"{100 * got['saving']:.0f}%",
                     f"{100 * stage1_saved:.0f}%"])
    sec.add("Counted from each grid's plan (the ITT sweeper's cells; `stage1_key` of each cell's composed "
            f"config), not timed; {time.perf_counter() - start:.1f} s to compose them.", "")
    sec.table(["grid", "cells", "cells with an intermediate task", "distinct stage-1 models",
               "trainings (stage 1 + stage 2): naive → with the cache", "trainings saved",
               "stage-1 trainings saved"], rows)
    savings = [v["saving"] for v in sec.data.values() if isinstance(v, dict) and "saving" in v]
    if savings:
        sec.goals.append(Goal("stage-1 trainings saved by the cache (median over grids)",
                              statistics.median(savings), None, unit="share"))
    return sec


# ----------------------------------------------------------------------------- start-up
_IMPORTS = {
    "bare Python": "pass",
    "import torch": "import torch",
    "a cell's imports": ("import itt.train, itt.cell, itt.stages, itt.models.module, itt.data.batching; "
                         "import pytorch_lightning, transformers, datasets"),
}


def startup(settings: Settings, wl: Any = None) -> Section:
    sec = Section("startup", "5c. Process start-up (imports) per cell", settings.command("startup"))

    def spawn(code: str) -> Any:
        def run(r: int) -> dict[str, float]:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, capture_output=True)
            return {"seconds": time.perf_counter() - start}
        return run

    rounds = 1 if settings.quick else 2
    imports = {k: v for k, v in _IMPORTS.items() if k != "a cell's imports"} if settings.quick else _IMPORTS
    res = interleave({name: spawn(code) for name, code in imports.items()}, rounds, settings.log)
    med = {name: statistics.median(r["seconds"] for r in runs) for name, runs in res.items()}
    base = med["bare Python"]
    sec.add(f"Fresh processes, {rounds} round(s), interleaved; wall time from start to exit.", "")
    sec.table(["process", "seconds (median)", "beyond a bare Python start"],
              [[name, f"{s:.2f}", f"{s - base:+.2f} s"] for name, s in med.items()])
    sec.add("The Hydra app (`python -m itt.train`) runs the cells of a basic sweep in its own process, and the "
            "local launcher's workers are long-lived, so a sweep pays these imports once per process, not per "
            "cell; K cells started as K separate commands pay them K times.", "")
    sec.data.update(medians=med)
    heaviest = list(med)[-1]
    sec.goals.append(Goal(f"start-up beyond bare Python ({heaviest})", med[heaviest] - base, None,
                          higher_is_better=False, unit="s"))
    return sec
