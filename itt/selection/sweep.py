"""Selection inside a sweep: keep the top-k predicted intermediate tasks per target.

    python -m itt.train -m experiment=select_mini hydra.sweeper.select=semb hydra.sweeper.top_k=2

For every (model, target, seed) of the grid the candidate intermediate tasks are scored with
one method (scores already in the sweep's ``selection.json`` are reused, others computed and
added to it); the cells of the candidates ranked below ``top_k`` are left out of the launch
and written into ``plan.json`` under ``selection.left_out``, each with its reason, so that the
report shows them as not run (selection) rather than missing. Baseline cells
(``intermediate=none``) are always kept.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

from itt.errors import ConfigError

log = logging.getLogger(__name__)

Cell = dict[str, Any]


def _group(cell: Cell) -> tuple[str, str, int]:
    return (str(cell["model"]), str(cell["target"]), int(cell.get("seed", 0)))


def _is_baseline(cell: Cell) -> bool:
    return str(cell.get("intermediate")) in ("none", "None", "")


def _cached_scores(data: dict[str, Any] | None, group: tuple[str, str, int], method: str,
                   candidates: list[str]) -> dict[str, float | None] | None:
    """Scores of ``method`` for every candidate from a selection file, or None."""
    from itt.selection.records import entry_key

    for e in (data or {}).get("entries", []):
        if entry_key(e) != group or method not in e.get("methods", {}):
            continue
        block = e["methods"][method]
        known = set(block.get("scores", {})) | set(block.get("skipped", {}))
        if set(candidates) <= known:
            return {c: block["scores"].get(c) for c in candidates}
    return None


def apply_selection(jobs: Sequence[Sequence[str]], cells: Sequence[Cell], method: str, top_k: int,
                    compose_job: Callable[[Sequence[str]], dict[str, Any]], sweep_dir: Path,
                    write: bool = True) -> tuple[list[Sequence[str]], list[Cell], dict[str, Any]]:
    """The jobs and cells that stay, and the plan fields that record what was left out.

    ``compose_job`` gives a job's resolved cell config (a plain dict, no ``hydra`` node).
    With ``write`` false (a dry run) computed scores are not written to selection.json."""
    from itt.selection.records import SELECTION_FILE, read_selection, write_selection
    from itt.selection.run import METHODS, Question, Settings, select

    if method not in METHODS:
        raise ConfigError(f"hydra.sweeper.select must be one of {', '.join(METHODS)}, not {method!r}.")
    if int(top_k) < 1:
        raise ConfigError(f"hydra.sweeper.top_k must be a positive integer, got {top_k!r}.")
    groups: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for i, cell in enumerate(cells):
        if not _is_baseline(cell):
            groups[_group(cell)].append(i)
    path = Path(sweep_dir) / SELECTION_FILE
    existing = read_selection(path)
    scores: dict[tuple[str, str, int], dict[str, float | None]] = {}
    todo: list[Question] = []
    for group, idx in groups.items():
        cands = [str(cells[i]["intermediate"]) for i in idx]
        cached = _cached_scores(existing, group, method, cands)
        if cached is not None:
            scores[group] = cached
            continue
        from itt.selection.stage1 import apply_card_settings

        cfgs = {str(cells[i]["intermediate"]): apply_card_settings(compose_job(jobs[i])) for i in idx}
        todo.append(Question(model=group[0], target=group[1], seed=group[2], cfgs=cfgs))
    if todo:
        t0 = time.perf_counter()
        log.info("Selection: scoring %d (model, target, seed) group(s) with %s", len(todo), method)
        entries = select(todo, Settings(methods=(method,), train_stage1=True), Path(sweep_dir) / ".selection")
        for q, e in zip(todo, entries):
            scores[(q.model, q.target, q.seed)] = dict(e["methods"][method]["scores"])
        if write:
            write_selection(path, str(todo[0].any_cfg.get("experiment_name")), entries,
                            {"methods": [method], "train_stage1": True, "source": "sweeper"},
                            time.perf_counter() - t0)

    from itt.selection.ranking import order

    drop: dict[int, str] = {}
    for group, idx in groups.items():
        ranked = order(scores[group])
        if not ranked:
            log.warning("Selection: %s scored no candidate of model=%s target=%s seed=%s; all of them run",
                        method, *group)
            continue
        for i in idx:
            cand = str(cells[i]["intermediate"])
            if cand in ranked[:top_k]:
                continue
            score = scores[group].get(cand)
            why = (f"{method} rank {ranked.index(cand) + 1} of {len(ranked)} (score {score:.4g}); "
                   f"hydra.sweeper.top_k={top_k}") if cand in ranked else \
                f"no {method} score (see selection.json); hydra.sweeper.top_k={top_k}"
            drop[i] = why
    kept_jobs = [j for i, j in enumerate(jobs) if i not in drop]
    kept_cells = [c for i, c in enumerate(cells) if i not in drop]
    left_out = [{**{k: v for k, v in cells[i].items() if k != "overrides"}, "reason": why}
                for i, why in sorted(drop.items())]
    log.info("Selection (%s, top %d): %d cell(s) left out, %d kept", method, top_k, len(left_out), len(kept_cells))
    for cell in left_out:
        log.info("  not run (selection): model=%s intermediate=%s target=%s seed=%s: %s", cell["model"],
                 cell["intermediate"], cell["target"], cell["seed"], cell["reason"])
    fields = {"selection": {"method": method, "top_k": int(top_k), "file": SELECTION_FILE, "left_out": left_out}}
    return kept_jobs, kept_cells, fields


def sweep_config_composer(sweeper: Any) -> Callable[[Sequence[str]], dict[str, Any]]:
    """A job's resolved cell config, composed by the sweeper's config loader as Hydra composes
    it for the job (the ``hydra`` node dropped before resolving)."""
    from omegaconf import OmegaConf, open_dict

    def compose(job: Sequence[str]) -> dict[str, Any]:
        cfg = sweeper.hydra_context.config_loader.load_sweep_config(sweeper.config, list(job))
        with open_dict(cfg):
            cfg.pop("hydra", None)
        data = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(data, dict)
        return data

    return compose


def select_for_sweep(sweeper: Any, jobs: list, cells: list) -> tuple[list, list, dict[str, Any]]:
    """The sweeper's one call: (jobs, cells, plan fields) after ``hydra.sweeper.select`` /
    ``top_k``; unchanged, with no plan fields, when no selection is asked for."""
    method = getattr(sweeper, "select", None)
    if not method:
        return jobs, cells, {}
    from omegaconf import OmegaConf

    top_k = getattr(sweeper, "top_k", None)
    if top_k is None:
        raise ConfigError("hydra.sweeper.select is set but hydra.sweeper.top_k is not: set how many "
                          "intermediate tasks to keep per target, e.g. hydra.sweeper.top_k=2.")
    dry = bool(OmegaConf.select(sweeper.config, "run.dry_run", default=False))
    return apply_selection(jobs, cells, str(method), int(top_k), sweep_config_composer(sweeper),
                           Path(str(sweeper.config.hydra.sweep.dir)), write=not dry)
