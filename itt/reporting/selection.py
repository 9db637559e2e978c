"""The report's selection section: the rankings of ``python -m itt.select`` (selection.json)
against the gains the grid measured.

Per (model, target, seed), each method's scores of the candidate intermediate tasks are
compared with the measured gains (metric with ITT minus without, same seed): Spearman's rho,
NDCG@k (relevance: the metric with ITT) and regret@k (itt.selection.ranking). The section
averages them over the (model, target, seed) groups with their standard deviation, adds what
a random pick would give, and says how much of the grid's wall time keeping each method's
top-k candidates would have saved at what regret. Cells that a sweep left out by selection
(plan.json ``selection.left_out``) are listed as not run (selection), not as missing.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from itt.reporting.load import NONE, find_files

log = logging.getLogger(__name__)

SELECTION_FILE = "selection.json"
PLAN_FILE = "plan.json"
CELL = ["experiment", "model", "intermediate", "target", "seed"]


@dataclass
class SelectionSection:
    """What the section adds to the report."""

    markdown: list[str] = field(default_factory=list)
    per_group: pd.DataFrame = field(default_factory=pd.DataFrame)   # one row per method x group
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)     # one row per method
    not_run: pd.DataFrame = field(default_factory=pd.DataFrame)     # cells left out by selection
    figure: Path | None = None

    def drop_not_run(self, missing: pd.DataFrame) -> pd.DataFrame:
        """``missing`` without the cells a sweep left out by selection."""
        if not len(self.not_run) or not len(missing):
            return missing
        left = {tuple(r) for r in self.not_run[CELL].itertuples(index=False)}
        keep = [tuple(r) not in left for r in missing[CELL].itertuples(index=False)]
        return missing[keep].reset_index(drop=True)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("skipping unreadable %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def load_selections(roots: Iterable[Path]) -> list[dict[str, Any]]:
    """Every selection entry under ``roots``, each with its file's experiment."""
    out = []
    for path in find_files([Path(r) for r in roots], SELECTION_FILE):
        data = _read(path)
        if not data or not str(data.get("schema", "")).startswith("itt.selection/"):
            continue
        for e in data.get("entries", []):
            if isinstance(e, dict) and isinstance(e.get("methods"), dict):
                out.append(dict(e, experiment=str(data.get("experiment") or "default"), file=str(path)))
    return out


def load_left_out(roots: Iterable[Path], results: pd.DataFrame) -> pd.DataFrame:
    """Cells that a sweep's selection left out (plan.json) and that have no result."""
    present = {tuple(r) for r in results[CELL].itertuples(index=False)} if len(results) else set()
    rows = []
    for path in find_files([Path(r) for r in roots], PLAN_FILE):
        plan = _read(path) or {}
        sel = plan.get("selection") or {}
        for cell in sel.get("left_out", []) if isinstance(sel, dict) else []:
            try:
                key = (str(plan.get("experiment") or "default"), str(cell["model"]), str(cell["intermediate"]),
                       str(cell["target"]), int(cell["seed"]))
            except (KeyError, TypeError, ValueError):
                continue
            if key not in present:
                rows.append(dict(zip(CELL, key), reason=str(cell.get("reason", "")), plan=str(path)))
    frame = pd.DataFrame(rows, columns=CELL + ["reason", "plan"])
    return frame.drop_duplicates(subset=CELL).reset_index(drop=True)


def _cell_times(paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per result.json: stage-2 + evaluation seconds, and its stage-1 model (key, training s)."""
    out = {}
    for p in paths:
        data = _read(Path(p)) or {}
        wall = data.get("wall_time_s") or {}
        s1 = data.get("stage1") or {}
        train_s = s1.get("trained_wall_time_s") if s1.get("reused") else s1.get("wall_time_s")
        out[p] = {"stage2_s": float(wall.get("stage2") or 0.0) + float(wall.get("eval") or 0.0),
                  "stage1_key": s1.get("key"), "stage1_s": float(train_s or 0.0)}
    return out


def score_rankings(df: pd.DataFrame, entries: list[dict[str, Any]], k: int) -> pd.DataFrame:
    """One row per (method, experiment, model, target, seed) with rho, NDCG@k, regret@1 and
    regret@k, the method's pick, the best candidate and their gains."""
    from itt.selection.ranking import ndcg_at_k, order, regret_at_k, spearman

    rows = []
    for e in entries:
        key = (e["experiment"], str(e["model"]), str(e["target"]), int(e.get("seed", 0)))
        cells = df[(df["experiment"] == key[0]) & (df["model"] == key[1]) & (df["target"] == key[2])
                   & (df["seed"] == key[3])]
        base = cells[cells["intermediate"] == NONE]["value"]
        if base.empty or not math.isfinite(float(base.iloc[0])):
            continue
        with_itt = {str(r.intermediate): float(r.value) for r in cells.itertuples()
                    if r.intermediate != NONE and str(r.intermediate) in e.get("candidates", [])
                    and math.isfinite(float(r.value))}
        if len(with_itt) < 2:
            continue
        gains = {c: v - float(base.iloc[0]) for c, v in with_itt.items()}
        best = max(gains, key=lambda c: gains[c])
        for method, block in e["methods"].items():
            scores = {c: block.get("scores", {}).get(c) for c in with_itt}
            picked = order(scores)
            rows.append({
                "method": method, "experiment": key[0], "model": key[1], "target": key[2], "seed": key[3],
                "candidates": len(with_itt), "scored": len(picked),
                "spearman": spearman(scores, gains),
                f"ndcg@{k}": ndcg_at_k(scores, with_itt, k) if picked else math.nan,
                "regret@1": regret_at_k(scores, gains, 1), f"regret@{k}": regret_at_k(scores, gains, k),
                "pick": picked[0] if picked else None, "pick_gain": gains[picked[0]] if picked else math.nan,
                "best": best, "best_gain": gains[best], "cost_s": float(block.get("cost_s") or 0.0),
                "needs_stage1": bool(block.get("needs_stage1")),
                # no score for any candidate: the method cannot choose and every candidate runs
                "top": picked if picked else sorted(with_itt)})
        # a random pick, in expectation (exact, not sampled)
        g = np.array(list(gains.values()))
        rel = np.clip(np.array(list(with_itt.values())), 0, None)
        ideal = np.sort(rel)[::-1][:k]
        idcg = float(sum(r / math.log2(i + 2) for i, r in enumerate(ideal)))
        exp_dcg = float(rel.mean() * sum(1 / math.log2(i + 2) for i in range(min(k, len(rel)))))
        kk = min(k, len(g))
        # E[max of a random k-subset]: the i-th largest is the subset's max with prob C(n-i, k-1)/C(n, k)
        srt = np.sort(g)[::-1]
        probs = [math.comb(len(g) - 1 - i, kk - 1) / math.comb(len(g), kk) for i in range(len(g))]
        rows.append({"method": "random pick", "experiment": key[0], "model": key[1], "target": key[2],
                     "seed": key[3], "candidates": len(g), "scored": len(g), "spearman": 0.0,
                     f"ndcg@{k}": exp_dcg / idcg if idcg > 0 else math.nan,
                     "regret@1": float(g.max() - g.mean()),
                     f"regret@{k}": float(g.max() - float(np.dot(srt, probs))),
                     "pick": None, "pick_gain": float(g.mean()), "best": best, "best_gain": gains[best],
                     "cost_s": 0.0, "needs_stage1": False, "top": []})
    return pd.DataFrame(rows)


def _mean_sd(values: pd.Series) -> str:
    v = values.dropna().astype(float)
    if v.empty:
        return "—"
    return f"{v.mean():+.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():+.3f}"


def time_saved(df: pd.DataFrame, per_group: pd.DataFrame, k: int) -> dict[str, tuple[float, float, float]]:
    """Per method: (grid seconds, seconds with the method's top-k only incl. its own cost,
    fraction saved). Stage-1 training counts once per stage-1 model; a method that reads
    stage-1 models needs every candidate's."""
    scored = df[df["path"].notna()]
    times = _cell_times(scored["path"])
    groups = {(r.experiment, r.model, r.target, int(r.seed)) for r in per_group.itertuples()}
    grid_cells = [r for r in scored.itertuples() if (r.experiment, r.model, r.target, int(r.seed)) in groups]
    if not grid_cells:
        return {}

    def total(cells: list, all_stage1: bool) -> float:
        s2 = sum(times[c.path]["stage2_s"] for c in cells)
        keys = {times[c.path]["stage1_key"]: times[c.path]["stage1_s"] for c in
                (grid_cells if all_stage1 else cells) if times[c.path]["stage1_key"]}
        return s2 + sum(keys.values())

    full = total(grid_cells, True)
    out = {}
    for method, rows in per_group.groupby("method"):
        if method == "random pick":
            continue
        keep = {(r.experiment, r.model, r.target, int(r.seed), c) for r in rows.itertuples() for c in r.top[:k]}
        kept = [c for c in grid_cells if c.intermediate == NONE or
                (c.experiment, c.model, c.target, int(c.seed), c.intermediate) in keep]
        cost = float(rows["cost_s"].sum())
        with_method = total(kept, bool(rows["needs_stage1"].any())) + cost
        out[str(method)] = (full, with_method, 1.0 - with_method / full if full > 0 else math.nan)
    return out


def plot_scores_vs_gains(per_method: dict[str, list[tuple[float, float, str]]], path: Path) -> None:
    """One panel per method: the score (standardised within each model x target) against the
    measured gain."""
    from itt.reporting.plots import _new_figure, _save

    methods = list(per_method)
    fig = _new_figure(3.2 * max(1, len(methods)), 3.2)
    axes = fig.subplots(1, max(1, len(methods)), squeeze=False)[0]
    for ax, m in zip(axes, methods):
        pts = per_method[m]
        labels = sorted({p[2] for p in pts})
        for lab in labels:
            xs = [p[0] for p in pts if p[2] == lab]
            ys = [p[1] for p in pts if p[2] == lab]
            ax.scatter(xs, ys, label=lab, s=22)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_title(m)
        ax.set_xlabel("score (z within model × target)")
    axes[0].set_ylabel("measured gain")
    axes[-1].legend(fontsize=6, loc="best")
    _save(fig, path)


def _points(df: pd.DataFrame, entries: list[dict[str, Any]]) -> dict[str, list[tuple[float, float, str]]]:
    out: dict[str, list[tuple[float, float, str]]] = {}
    for e in entries:
        cells = df[(df["experiment"] == e["experiment"]) & (df["model"] == str(e["model"]))
                   & (df["target"] == str(e["target"])) & (df["seed"] == int(e.get("seed", 0)))]
        base = cells[cells["intermediate"] == NONE]["value"]
        if base.empty:
            continue
        value = {str(r.intermediate): float(r.value) for r in cells.itertuples() if r.intermediate != NONE}
        for m, block in e["methods"].items():
            sc = {c: s for c, s in (block.get("scores") or {}).items()
                  if s is not None and math.isfinite(s) and c in value}
            if len(sc) < 2:
                continue
            arr = np.array(list(sc.values()))
            sd = arr.std() or 1.0
            for c, s in sc.items():
                out.setdefault(m, []).append(((s - arr.mean()) / sd, value[c] - float(base.iloc[0]),
                                              f"{e['model']}→{e['target']}"))
    return out


def selection_section(df: pd.DataFrame, roots: Iterable[os.PathLike | str], fig_dir: Path,
                      k: int = 2) -> SelectionSection:
    """The section (markdown lines, tables, figure); empty markdown when no selection.json
    and no selection in any plan.json is found."""
    from itt.reporting.render import to_markdown

    roots = [Path(r) for r in roots]
    section = SelectionSection(not_run=load_left_out(roots, df))
    entries = load_selections(roots)
    md: list[str] = []
    if entries:
        per_group = score_rankings(df, entries, k)
        section.per_group = per_group
        md += ["## Which intermediate task? Selection against the grid", ""]
        if per_group.empty:
            md += ["selection.json found, but no target has a no-ITT result and two or more scored "
                   "candidates with results yet.", ""]
        else:
            saved1, saved = time_saved(df, per_group, 1), time_saved(df, per_group, k)
            rows = []
            for method, g in per_group.groupby("method", sort=False):
                frac1 = saved1.get(str(method), (math.nan, math.nan, math.nan))[2]
                full, with_m, frac = saved.get(str(method), (math.nan, math.nan, math.nan))
                rows.append({"method": method, "groups ranked": int(g["regret@1"].notna().sum()),
                             "Spearman ρ": _mean_sd(g["spearman"]),
                             f"NDCG@{k}": _mean_sd(g[f"ndcg@{k}"]), "regret@1": _mean_sd(g["regret@1"]),
                             f"regret@{k}": _mean_sd(g[f"regret@{k}"]),
                             "method cost (s)": f"{g['cost_s'].sum():.1f}",
                             "needs stage 1": "yes" if g["needs_stage1"].any() else "no",
                             "saved, top-1": "—" if math.isnan(frac1) else f"{100 * frac1:.0f}%",
                             f"grid time with top-{k} (s)": "—" if math.isnan(with_m) else f"{with_m:.0f} / {full:.0f}",
                             f"saved, top-{k}": "—" if math.isnan(frac) else f"{100 * frac:.0f}%"})
            section.summary = pd.DataFrame(rows)
            md += [f"Each method ranks the candidate intermediate tasks of a target before training "
                   f"(`python -m itt.select`); here the rankings meet the measured gains (metric with "
                   f"ITT − without, same seed). Mean ± std over {per_group[['model', 'target', 'seed']].drop_duplicates().shape[0]} "
                   f"(model, target, seed) groups. NDCG@{k}: relevance = the metric with ITT. "
                   f"regret@k: best gain − best gain among the method's top k. Random pick: the "
                   f"expectation of a uniformly random ranking. Grid time: wall seconds of the cells "
                   f"(stage 1 once per stage-1 model) when only the baselines and each target's top-1 "
                   f"or top-{k} run, plus the method's own cost, against the whole grid (saved: the "
                   f"share of the grid's time not spent); a method that reads stage-1 models needs all "
                   f"of them. A method's cost and the cells' times are wall times on the same machine.", "",
                   to_markdown(section.summary, index=False), ""]
            detail = per_group[per_group["method"] != "random pick"][
                ["method", "model", "target", "seed", "spearman", f"ndcg@{k}", "regret@1", "pick", "pick_gain",
                 "best", "best_gain"]]
            md += ["### Per target", "", to_markdown(detail.round(3), index=False), ""]
            pts = _points(df, entries)
            if pts:
                section.figure = fig_dir / "selection_scores_vs_gain.png"
                plot_scores_vs_gains(pts, section.figure)
                md += [f"![predicted score against measured gain](figures/{section.figure.name})", ""]
    if len(section.not_run):
        if not md:
            md += ["## Which intermediate task? Selection against the grid", ""]
        md += ["### Not run (selection)", ""]
        md += [f"- model={r.model} intermediate={r.intermediate} target={r.target} seed={r.seed}: {r.reason}"
               for r in section.not_run.itertuples()]
        md.append("")
    section.markdown = md
    return section
