"""Tables computed from the one-row-per-cell frame of :func:`itt.reporting.load.scan`.

Numeric tables (``gain_table``, ``per_language_table``, ``xtreme_table``,
``domain_comparison``, ``pretraining_comparison``) are tidy and go to CSV as they are;
``paper_table`` and ``per_language_view`` are display tables of formatted strings.
"""
from __future__ import annotations

import logging
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from itt.reporting.formatting import MARKS, MISSING, fmt_mean_std, fmt_p, fmt_value, mark
from itt.records import MalformedFileError, read_examples, read_json
from itt.reporting.load import CELL_KEY, NONE, format_cell
from itt.reporting.stats import (
    HELPS,
    HURTS,
    METRICS as EXAMPLE_METRICS,
    UNDECIDED,
    GainStats,
    adjust,
    gain_stats,
    mean_std,
    seed_gain_stats,
)


logger = logging.getLogger(__name__)

#: ``hierarchical``: :func:`itt.reporting.stats.gain_stats` over seeds and test examples where
#: every paired cell has its examples.json (a paired t-test over seeds elsewhere);
#: ``ttest``: the paired t-test over seeds everywhere.
REPORT_TESTS: tuple[str, ...] = ("hierarchical", "ttest")

XTREME_BENCHMARKS = frozenset({"xtreme-r", "xtreme"})
SETTING_ORDER = {"domain": 0, "cross_lingual": 1, "xtreme": 2}

GAIN_COLUMNS: list[str] = [
    "experiment", "model", "pretraining", "field", "setting", "benchmark", "target",
    "target_domain", "intermediate", "intermediate_domain", "same_domain", "metric",
    "majority", "zero_shot", "without_mean", "without_std", "without_n",
    "with_mean", "with_std", "with_n", "gain", "gain_std", "ci_low", "ci_high", "n_pairs",
    "n_examples", "p_value", "p_adjusted", "verdict", "test", "significance",
]

# XTREME-R's task categories (Ruder et al., 2021); XTREME's PAWS-X and BUCC are placed in
# the category they had there. Names are matched by prefix after dropping punctuation.
XTREME_GROUPS: dict[str, tuple[str, ...]] = {
    "classification": ("xnli", "xcopa", "pawsx"),
    "structured_prediction": ("udpos", "pos", "panx", "wikiann", "ner"),
    "question_answering": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("tatoeba", "mewslix", "lareqa", "bucc"),
}
_FIELD_GROUPS = {
    "nli": "classification", "reasoning": "classification", "paraphrase": "classification",
    "text_classification": "classification", "sentiment": "classification",
    "tagging": "structured_prediction", "qa": "question_answering", "retrieval": "retrieval",
}
_GROUP_ORDER = list(XTREME_GROUPS) + ["other"]


# --------------------------------------------------------------------------- helpers


def fmt_gain_ci(gain: float, low: float, high: float, digits: int = 3) -> str:
    """``+0.050 [+0.012, +0.088]``; the interval is left out where there is none."""
    text = fmt_value(gain, digits, signed=True)
    if text == MISSING or math.isnan(low) or math.isnan(high):
        return text
    return f"{text} [{fmt_value(low, digits, signed=True)}, {fmt_value(high, digits, signed=True)}]"


def fmt_verdict(verdict: str) -> str:
    """``helps ▲`` / ``hurts ▼`` / ``undecided``; – where no test exists."""
    if not verdict:
        return MISSING
    return f"{verdict} {MARKS[verdict]}" if verdict in MARKS else verdict


def _nanmean(values: Iterable[Any]) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else math.nan


def _first(values: Iterable[Any]) -> Any:
    for v in values:
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            return v
    return None


def model_label(experiment: str, model: str, multi_experiment: bool) -> str:
    return f"{experiment}/{model}" if multi_experiment else model


def has_multiple_experiments(frame: pd.DataFrame) -> bool:
    return frame["experiment"].nunique() > 1 if len(frame) else False


def _target_sort_key(field: str, setting: str, target: str) -> tuple:
    """Paper order: domain targets, then cross-lingual, then XTREME; by field within."""
    return (SETTING_ORDER.get(setting, len(SETTING_ORDER)), setting, field, target)


def is_xtreme(frame: pd.DataFrame) -> pd.Series:
    """Rows whose target belongs to XTREME-R / XTREME."""
    return frame["benchmark"].map(lambda b: str(b).lower() in XTREME_BENCHMARKS if b else False)


# --------------------------------------------------------------------------- statistics


@lru_cache(maxsize=4096)
def load_examples(result_path: str) -> dict[str, Any] | None:
    """The ``target`` block of the examples.json beside a result.json, or None.

    None (with a logged warning) when the file belongs to another config (its config_hash
    differs from result.json's) or does not parse; None silently when there is none. The
    cell is then tested over seeds only.
    """
    result = Path(result_path)
    try:
        want = read_json(result).get("config_hash")
    except (MalformedFileError, AttributeError) as exc:
        logger.warning("%s: unreadable (%s); its cell is tested over seeds only", result, exc)
        return None
    data = read_examples(result.parent, want)
    target = (data or {}).get("target")
    return target if isinstance(target, dict) and target else None


def _seed_examples(frame: pd.DataFrame, lang: str | None) -> dict[int, dict[str, Any]]:
    out = {}
    for seed, path in zip(frame["seed"], frame["path"]):
        ex = load_examples(str(path)) if path else None
        if ex is not None and (lang is None or lang in ex):
            out[int(seed)] = ex if lang is None else {lang: ex[lang]}
    return out


def cell_stats(itt: pd.DataFrame, base: pd.DataFrame, values_itt: dict[int, float],
               values_base: dict[int, float], metric: str, test: str = "hierarchical",
               alpha: float = 0.05, lang: str | None = None) -> GainStats:
    """The gain's statistics for one (model, target, intermediate) and, with ``lang``, one
    language: seeds paired; the hierarchical bootstrap when ``test == "hierarchical"``, the
    metric is one it recomputes and every paired seed has examples on both sides, else the
    paired t-test over the seeds' scores."""
    if test not in REPORT_TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {', '.join(REPORT_TESTS)}")
    seeds = sorted(s for s in set(values_itt) & set(values_base)
                   if not math.isnan(values_itt[s]) and not math.isnan(values_base[s]))
    if test == "hierarchical" and metric in EXAMPLE_METRICS and seeds:
        ex_itt, ex_base = _seed_examples(itt, lang), _seed_examples(base, lang)
        if all(s in ex_itt and s in ex_base for s in seeds):
            try:
                return _cached_gain_stats(tuple(str(p) for p in _paths(itt, seeds)),
                                          tuple(str(p) for p in _paths(base, seeds)),
                                          metric, alpha, lang)
            except ValueError as exc:
                logger.warning("%s: %s; tested over seeds only", lang or "all languages", exc)
    return seed_gain_stats([values_itt[s] for s in seeds], [values_base[s] for s in seeds],
                           alpha=alpha)


def _paths(frame: pd.DataFrame, seeds: list[int]) -> list[str]:
    by_seed = {int(s): p for s, p in zip(frame["seed"], frame["path"])}
    return [by_seed[s] for s in seeds]


@lru_cache(maxsize=4096)
def _cached_gain_stats(itt_paths: tuple[str, ...], base_paths: tuple[str, ...], metric: str,
                       alpha: float, lang: str | None) -> GainStats:
    def pick(path: str) -> dict[str, Any]:
        ex = load_examples(path) or {}
        return ex if lang is None else {lang: ex[lang]}

    return gain_stats([pick(p) for p in itt_paths], [pick(p) for p in base_paths], metric,
                      alpha=alpha, languages=None if lang is None else [lang])


def _apply_correction(rows: list[dict[str, Any]], stats: list[GainStats | None], correction: str,
                      alpha: float) -> None:
    """Holm / BH over the rows that have a test; fills p_adjusted, verdict, significance."""
    idx = [i for i, st in enumerate(stats) if st is not None]
    for i, st in zip(idx, adjust([stats[i] for i in idx], correction, alpha)):
        rows[i].update(p_adjusted=st.p_adjusted, verdict=st.verdict,
                       significance="" if st.verdict == UNDECIDED else st.verdict)


# --------------------------------------------------------------------------- gains


def gain_table(df: pd.DataFrame, test: str = "hierarchical", alpha: float = 0.05,
               include_baseline_only: bool = False, correction: str = "holm") -> pd.DataFrame:
    """One row per (experiment, model, target, intermediate): without/with ITT and the gain.

    ``gain`` is the mean of the seed-paired differences (with − without) when at least one
    seed is paired, else the difference of the two means (and ``p_value`` is NaN); so it
    equals ``with_mean − without_mean`` whenever no seed is missing. ``ci_low``/``ci_high``,
    ``p_value``, ``n_examples`` and ``test`` come from :func:`cell_stats` (test examples and
    seeds where examples.json exists); ``p_adjusted`` corrects ``p_value`` over every row of
    the table (``correction``: holm, bh or none) and ``verdict`` (helps / hurts / undecided)
    and ``significance`` (helps / hurts / "") follow it at ``alpha``. ``majority`` and
    ``zero_shot`` are means over the cells that report them. With ``include_baseline_only``
    a target that has no ITT cell for a model gets one row with an empty ``intermediate``.
    """
    rows: list[dict[str, Any]] = []
    stats: list[GainStats | None] = []
    if df.empty:
        return pd.DataFrame(columns=GAIN_COLUMNS)
    for (experiment, model, target), group in df.groupby(
            ["experiment", "model", "target"], sort=True):
        base = group[group["intermediate"] == NONE]
        base_values = {int(k): float(v) for k, v in zip(base["seed"], base["value"])}
        b_mean, b_std, b_n = mean_std(base["value"])
        common = {
            "experiment": experiment, "model": model,
            "pretraining": _first(group["pretraining"]),
            "field": _first(group["field"]), "setting": _first(group["setting"]),
            "benchmark": _first(group["benchmark"]), "target": target,
            "target_domain": _first(group["target_domain"]), "metric": _first(group["metric"]),
            "majority": _nanmean(group["majority"]),
            "without_mean": b_mean, "without_std": b_std, "without_n": b_n,
        }
        intermediates = sorted(set(group["intermediate"]) - {NONE})
        if not intermediates and include_baseline_only:
            rows.append({**common, "intermediate": None, "intermediate_domain": None,
                         "same_domain": None, "zero_shot": math.nan, "with_mean": math.nan,
                         "with_std": math.nan, "with_n": 0, "gain": math.nan,
                         "gain_std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                         "n_pairs": 0, "n_examples": 0, "p_value": math.nan,
                         "p_adjusted": math.nan, "verdict": "", "test": "", "significance": ""})
            stats.append(None)
        for inter in intermediates:
            itt = group[group["intermediate"] == inter]
            w_mean, w_std, w_n = mean_std(itt["value"])
            itt_values = {int(k): float(v) for k, v in zip(itt["seed"], itt["value"])}
            st = cell_stats(itt, base, itt_values, base_values, common["metric"], test, alpha)
            seeds = sorted(set(itt_values) & set(base_values))
            diffs = [itt_values[k] - base_values[k] for k in seeds]
            if st.n_seeds:
                gain, gain_std, _ = mean_std(diffs)
            else:
                gain, gain_std = w_mean - b_mean, math.nan
            rows.append({
                **common, "intermediate": inter,
                "intermediate_domain": _first(itt["intermediate_domain"]),
                "same_domain": _first(itt["same_domain"]),
                "zero_shot": _nanmean(itt["zero_shot"]),
                "with_mean": w_mean, "with_std": w_std, "with_n": w_n,
                "gain": gain, "gain_std": gain_std, "ci_low": st.ci_low, "ci_high": st.ci_high,
                "n_pairs": st.n_seeds, "n_examples": st.n_examples, "p_value": st.p,
                "p_adjusted": st.p_adjusted, "verdict": st.verdict, "test": st.test,
                "significance": "",
            })
            stats.append(st)
    _apply_correction(rows, stats, correction, alpha)
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)


def paper_table(df: pd.DataFrame, test: str = "hierarchical", alpha: float = 0.05,
                digits: int = 3, correction: str = "holm") -> pd.DataFrame:
    """The paper-style table: rows = encoders, columns = (field, setting, target, column).

    Per target: ``majority`` (where reported), ``no ITT``, and per intermediate task X
    ``zero-shot X`` (where reported), ``ITT X`` (``mean ± std`` over seeds, with ``(n=k)``
    where a cell has fewer seeds than the fullest one of the target), ``gain X`` (mean
    with its 95% CI), ``p X`` (corrected over the table, see :func:`gain_table`) and
    ``verdict X`` (helps ▲ / hurts ▼ / undecided).
    """
    gains = gain_table(df, test, alpha, include_baseline_only=True, correction=correction)
    if gains.empty:
        return pd.DataFrame()
    multi = has_multiple_experiments(gains)
    gains = gains.assign(label=[model_label(e, m, multi)
                                for e, m in zip(gains["experiment"], gains["model"])])
    n_full = gains.groupby("target")[["without_n", "with_n"]].max().max(axis=1).to_dict()

    targets = (gains.groupby("target")[["field", "setting"]].first().reset_index()
               .sort_values("target"))
    order = sorted(targets.itertuples(index=False),
                   key=lambda t: _target_sort_key(t.field, t.setting, t.target))
    columns: list[tuple[str, str, str, str]] = []
    cells: dict[tuple[str, tuple], str] = {}
    for t in order:
        tg = gains[gains["target"] == t.target]
        prefix = (t.field, t.setting, t.target)
        if tg["majority"].notna().any():
            columns.append((*prefix, "majority"))
        columns.append((*prefix, "no ITT"))
        inters = sorted(i for i in tg["intermediate"].dropna().unique())
        for inter in inters:
            it = tg[tg["intermediate"] == inter]
            if it["zero_shot"].notna().any():
                columns.append((*prefix, f"zero-shot {inter}"))
            columns += [(*prefix, f"ITT {inter}"), (*prefix, f"gain {inter}"),
                        (*prefix, f"p {inter}"), (*prefix, f"verdict {inter}")]
        for row in tg.itertuples(index=False):
            cells[(row.label, (*prefix, "majority"))] = fmt_value(row.majority, digits)
            cells[(row.label, (*prefix, "no ITT"))] = fmt_mean_std(
                row.without_mean, row.without_std, row.without_n, digits, n_full[t.target])
            if row.intermediate is None or (isinstance(row.intermediate, float)):
                continue
            inter = row.intermediate
            cells[(row.label, (*prefix, f"zero-shot {inter}"))] = fmt_value(row.zero_shot, digits)
            cells[(row.label, (*prefix, f"ITT {inter}"))] = fmt_mean_std(
                row.with_mean, row.with_std, row.with_n, digits, n_full[t.target])
            cells[(row.label, (*prefix, f"gain {inter}"))] = fmt_gain_ci(
                row.gain, row.ci_low, row.ci_high, digits)
            cells[(row.label, (*prefix, f"p {inter}"))] = fmt_p(row.p_adjusted)
            cells[(row.label, (*prefix, f"verdict {inter}"))] = fmt_verdict(row.verdict)

    labels = sorted(gains["label"].unique())
    data = [[cells.get((label, col), MISSING) for col in columns] for label in labels]
    index = pd.Index(labels, name="experiment/model" if multi else "model")
    cols = pd.MultiIndex.from_tuples(columns, names=["field", "setting", "target", "column"])
    return pd.DataFrame(data, index=index, columns=cols)


def compact_table(gains: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """One display row per (model, target, intermediate) from :func:`gain_table`: majority,
    no ITT, zero-shot, ITT (means over seeds), gain [95% CI], corrected p and verdict;
    domain targets first, then cross-lingual, then XTREME (the console's table)."""
    columns = ["model", "target", "intermediate", "majority", "no ITT", "zero-shot", "ITT",
               "gain [95% CI]", "p (corr.)", "verdict", "seeds"]
    rows = gains[gains["intermediate"].map(lambda i: isinstance(i, str))]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    multi = has_multiple_experiments(rows)
    rows = rows.assign(sort_key=[(_target_sort_key(f or "", st or "", t), m) for f, st, t, m in
                             zip(rows["field"], rows["setting"], rows["target"], rows["model"])])
    out = []
    for r in sorted(rows.itertuples(index=False), key=lambda r: (r.sort_key, r.intermediate)):
        out.append([model_label(r.experiment, r.model, multi), r.target, r.intermediate,
                    fmt_value(r.majority, digits), fmt_value(r.without_mean, digits),
                    fmt_value(r.zero_shot, digits), fmt_value(r.with_mean, digits),
                    fmt_gain_ci(r.gain, r.ci_low, r.ci_high, digits), fmt_p(r.p_adjusted),
                    fmt_verdict(r.verdict), str(int(r.n_pairs))])
    return pd.DataFrame(out, columns=columns)


def design_table(df: pd.DataFrame) -> pd.DataFrame:
    """What the tests rest on, per target: languages, test examples per language (min–max
    over cells when they differ) and the seeds that ran."""
    columns = ["target", "languages", "test examples per language", "seeds"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for target, group in df.groupby("target", sort=True):
        sizes: dict[str, set[int]] = {}
        for per_language in group["per_language"]:
            for lang, scores in (per_language or {}).items():
                if isinstance(scores, dict) and scores.get("n") is not None:
                    sizes.setdefault(lang, set()).add(int(scores["n"]))
        parts = []
        for lang, ns in sizes.items():
            lo, hi = min(ns), max(ns)
            parts.append(f"{lang} {lo}" if lo == hi else f"{lang} {lo}–{hi}")
        rows.append({"target": target, "languages": len(sizes) or MISSING,
                     "test examples per language": ", ".join(parts) or MISSING,
                     "seeds": ", ".join(str(int(s)) for s in sorted(group["seed"].unique()))})
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- per language


def cross_lingual_targets(df: pd.DataFrame) -> list[str]:
    """Targets evaluated in more than one language (or marked cross-lingual / XTREME)."""
    if df.empty:
        return []
    multi_lang = df["per_language"].map(lambda d: isinstance(d, dict) and len(d) > 1)
    mask = multi_lang | (df["setting"] == "cross_lingual") | is_xtreme(df)
    return sorted(df.loc[mask, "target"].unique())


def languages(frame: pd.DataFrame) -> list[str]:
    """Languages in order of first appearance (result.json keeps eval_languages order)."""
    seen: dict[str, None] = {}
    for per_language in frame["per_language"]:
        for lang in per_language or {}:
            seen.setdefault(lang, None)
    return list(seen)


def _lang_values(frame: pd.DataFrame, lang: str) -> dict[int, float]:
    out = {}
    for seed, metric, per_language in zip(frame["seed"], frame["metric"], frame["per_language"]):
        value = (per_language or {}).get(lang, {}).get(metric)
        if value is not None:
            out[int(seed)] = float(value)
    return out


def per_language_table(df: pd.DataFrame, target: str | None = None,
                       test: str = "hierarchical", alpha: float = 0.05,
                       correction: str = "holm") -> pd.DataFrame:
    """Tidy per-language scores: one row per (experiment, model, target, intermediate, language).

    ``gain``, its CI and ``p_value`` compare each ITT row with the same model's no-ITT row
    of that language (:func:`cell_stats` on that language's examples), NaN on the no-ITT
    rows themselves; ``p_adjusted`` and ``verdict`` correct over every row of this table
    (a family apart from the main table's).
    """
    columns = ["experiment", "model", "target", "intermediate", "language", "metric",
               "mean", "std", "n", "gain", "ci_low", "ci_high", "p_value", "p_adjusted",
               "verdict", "significance"]
    frame = df if target is None else df[df["target"] == target]
    rows: list[dict[str, Any]] = []
    stats: list[GainStats | None] = []
    for (experiment, model, tgt), group in frame.groupby(["experiment", "model", "target"],
                                                         sort=True):
        langs = languages(group)
        base = group[group["intermediate"] == NONE]
        inters = [NONE] + sorted(set(group["intermediate"]) - {NONE})
        for inter in inters:
            sub = group[group["intermediate"] == inter]
            if sub.empty:
                continue
            for lang in langs:
                values = _lang_values(sub, lang)
                if not values:
                    continue
                mean, std, n = mean_std(values.values())
                metric = _first(sub["metric"])
                row = {"experiment": experiment, "model": model, "target": tgt,
                       "intermediate": inter, "language": lang, "metric": metric,
                       "mean": mean, "std": std, "n": n, "gain": math.nan, "ci_low": math.nan,
                       "ci_high": math.nan, "p_value": math.nan, "p_adjusted": math.nan,
                       "verdict": "", "significance": ""}
                st = None
                if inter != NONE:
                    base_values = _lang_values(base, lang)
                    seeds = sorted(set(values) & set(base_values))
                    if seeds:
                        st = cell_stats(sub, base, values, base_values, metric, test, alpha, lang)
                        row.update(gain=float(np.mean([values[k] - base_values[k] for k in seeds])),
                                   ci_low=st.ci_low, ci_high=st.ci_high, p_value=st.p)
                rows.append(row)
                stats.append(st)
    _apply_correction(rows, stats, correction, alpha)
    return pd.DataFrame(rows, columns=columns)


def per_language_view(df: pd.DataFrame, target: str, test: str = "hierarchical",
                      alpha: float = 0.05, digits: int = 3,
                      tidy: pd.DataFrame | None = None, main: pd.DataFrame | None = None) -> pd.DataFrame:
    """Display table for one target: rows (model, row), columns languages + ``avg``.

    Rows per model: ``no ITT``, ``ITT X`` (mean ± std over seeds) and ``gain X`` (paired
    mean difference, ▲/▼ where the corrected test says helps / hurts). ``avg`` is the cell's
    main metric. ``tidy`` (:func:`per_language_table`) and ``main`` (:func:`gain_table`)
    pass tables already computed over the whole report, so that the corrections cover the
    same families as there; by default they are computed for this target alone.
    """
    frame = df[df["target"] == target]
    tidy = (per_language_table(df, target, test, alpha) if tidy is None
            else tidy[tidy["target"] == target])
    if tidy.empty:
        return pd.DataFrame()
    multi = has_multiple_experiments(frame)
    langs = languages(frame)
    main = (gain_table(frame, test, alpha, include_baseline_only=True) if main is None
            else main[main["target"] == target])
    n_full = int(tidy["n"].max())
    records: dict[tuple[str, str], dict[str, str]] = {}
    for row in tidy.itertuples(index=False):
        label = model_label(row.experiment, row.model, multi)
        name = "no ITT" if row.intermediate == NONE else f"ITT {row.intermediate}"
        records.setdefault((label, name), {})[row.language] = fmt_mean_std(
            row.mean, row.std, row.n, digits, n_full)
        if row.intermediate != NONE:
            records.setdefault((label, f"gain {row.intermediate}"), {})[row.language] = (
                fmt_value(row.gain, digits, signed=True) + mark(row.significance))
    for row in main.itertuples(index=False):
        label = model_label(row.experiment, row.model, multi)
        records.setdefault((label, "no ITT"), {})["avg"] = fmt_mean_std(
            row.without_mean, row.without_std, row.without_n, digits, n_full)
        if isinstance(row.intermediate, str):
            records.setdefault((label, f"ITT {row.intermediate}"), {})["avg"] = fmt_mean_std(
                row.with_mean, row.with_std, row.with_n, digits, n_full)
            records.setdefault((label, f"gain {row.intermediate}"), {})["avg"] = (
                fmt_value(row.gain, digits, signed=True) + mark(row.significance))

    def order(key: tuple[str, str]) -> tuple:
        label, name = key
        kind = 0 if name == "no ITT" else 1
        inter = name.split(" ", 1)[1] if kind else ""
        return (label, kind, inter, name.startswith("gain"))

    keys = sorted(records, key=order)
    index = pd.MultiIndex.from_tuples(keys, names=["model", "row"])
    cols = langs + ["avg"]
    return pd.DataFrame([[records[k].get(c, MISSING) for c in cols] for k in keys],
                        index=index, columns=pd.Index(cols, name="language"))


# --------------------------------------------------------------------------- XTREME-R


def xtreme_group(target: str, field: str | None = None) -> str:
    """The XTREME-R task category of a target (by name, falling back to its NLP field)."""
    key = re.sub(r"[^a-z0-9]", "", target.lower())
    for group, prefixes in XTREME_GROUPS.items():
        if any(key.startswith(p) for p in prefixes):
            return group
    return _FIELD_GROUPS.get(field or "", "other")


def xtreme_table(df: pd.DataFrame) -> pd.DataFrame:
    """XTREME-R leaderboard form for cells whose target.benchmark is xtreme-r / xtreme.

    Rows (model, intermediate); columns: each task's main metric averaged over seeds, then
    ``<category> avg`` per task category, ``overall`` (the mean over tasks, as the official
    scorer's ``all_task`` and ``python -m itt.metrics.xtreme_r`` compute it) and ``n_tasks``.
    """
    frame = df[is_xtreme(df)] if len(df) else df
    if frame.empty:
        return pd.DataFrame()
    multi = has_multiple_experiments(frame)
    frame = frame.assign(label=[model_label(e, m, multi)
                                for e, m in zip(frame["experiment"], frame["model"])])
    groups = {t: xtreme_group(t, f) for t, f in
              frame.groupby("target")["field"].first().items()}
    tasks = sorted(groups, key=lambda t: (_GROUP_ORDER.index(groups[t]), t))
    scores = frame.groupby(["label", "intermediate", "target"])["value"].mean().unstack("target")
    scores = scores.reindex(columns=tasks)
    out = scores.copy()
    group_cols = []
    for group in _GROUP_ORDER:
        members = [t for t in tasks if groups[t] == group]
        if members:
            col = f"{group} avg"
            out[col] = scores[members].mean(axis=1, skipna=True)
            group_cols.append(col)
    out["overall"] = out[[t for t in tasks if t in out.columns]].mean(axis=1, skipna=True)
    out["n_tasks"] = scores.notna().sum(axis=1).astype(int)
    out.index = out.index.set_names(["experiment/model" if multi else "model", "intermediate"])
    # The no-ITT row first within each model.
    order = sorted(out.index, key=lambda k: (k[0], k[1] != NONE, k[1]))
    out = out.loc[order]
    out.columns.name = None
    return out


def _gain_summary(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    def summarise(g: pd.DataFrame) -> pd.Series:
        mean, std, n = mean_std(g["gain"])
        return pd.Series({
            "n_task_pairs": n, "mean_gain": mean, "std_gain": std,
            "helps": int((g["verdict"] == HELPS).sum()),
            "hurts": int((g["verdict"] == HURTS).sum()),
            "undecided": int((g["verdict"] == UNDECIDED).sum()),
            "task_pairs": ", ".join(f"{i}→{t}" for i, t in zip(g["intermediate"], g["target"])),
        })

    records = []
    for key, g in rows.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        records.append({**dict(zip(by, key)), **summarise(g).to_dict()})
    return pd.DataFrame(records, columns=by + ["n_task_pairs", "mean_gain", "std_gain",
                                               "helps", "hurts", "undecided", "task_pairs"])


def domain_comparison(df: pd.DataFrame, test: str = "hierarchical", alpha: float = 0.05,
                      xtreme_only: bool = False, gains: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean gain over the no-ITT baseline by (model, same/different domain).

    A (intermediate → target) pair is ``same`` when intermediate.domain == target.domain,
    ``different`` when both are known and differ, ``unknown`` otherwise. ``mean_gain`` and
    ``std_gain`` are over the pairs' mean gains; ``helps``/``hurts``/``undecided`` count the
    verdicts of :func:`gain_table` (``gains``, when given, is that table for ``df``).
    """
    frame = df[is_xtreme(df)] if (xtreme_only and len(df)) else df
    if gains is None:
        gains = gain_table(frame, test, alpha)
    else:
        gains = gains[gains["intermediate"].map(lambda i: isinstance(i, str))]
        if xtreme_only:
            gains = gains[gains["benchmark"].map(
                lambda b: str(b).lower() in XTREME_BENCHMARKS if b else False)]
    if gains.empty:
        return pd.DataFrame(columns=["model", "domain", "n_task_pairs", "mean_gain",
                                     "std_gain", "helps", "hurts", "undecided", "task_pairs"])
    multi = has_multiple_experiments(gains)
    gains = gains.assign(
        model=[model_label(e, m, multi) for e, m in zip(gains["experiment"], gains["model"])],
        domain=gains["same_domain"].map(
            lambda s: "unknown" if s is None or (isinstance(s, float) and math.isnan(s))
            else ("same" if s else "different")),
    )
    return _gain_summary(gains, ["model", "domain"])


def pretraining_comparison(df: pd.DataFrame, test: str = "hierarchical",
                           alpha: float = 0.05, gains: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean gain per model.pretraining tag (text / code / multilingual), overall and per setting.

    ``setting == "all"`` rows pool every target; the others split by target setting.
    ``gains``, when given, is :func:`gain_table` of ``df``.
    """
    if gains is None:
        gains = gain_table(df, test, alpha)
    else:
        gains = gains[gains["intermediate"].map(lambda i: isinstance(i, str))]
    columns = ["pretraining", "setting", "n_models", "n_task_pairs", "mean_gain", "std_gain",
               "helps", "hurts", "undecided", "task_pairs"]
    if gains.empty:
        return pd.DataFrame(columns=columns)
    pooled = gains.assign(setting="all")
    both = pd.concat([pooled, gains], ignore_index=True)
    summary = _gain_summary(both, ["pretraining", "setting"])
    n_models = both.groupby(["pretraining", "setting"])["model"].nunique()
    summary["n_models"] = [int(n_models[(p, s)])
                           for p, s in zip(summary["pretraining"], summary["setting"])]
    summary["_order"] = summary["setting"].map(
        lambda s: -1 if s == "all" else SETTING_ORDER.get(s, len(SETTING_ORDER)))
    summary = summary.sort_values(["pretraining", "_order", "setting"]).drop(columns="_order")
    return summary[columns].reset_index(drop=True)


# --------------------------------------------------------------------------- failures / gaps


def missing_cells(results: pd.DataFrame, failures: pd.DataFrame,
                  plans: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cells expected but with neither a result nor an error.json.

    Expected are the cells of every plan.json, and the seed-counterparts of finished cells:
    an ITT cell at seed s expects the no-ITT cell at seed s of the same model and target,
    and a no-ITT cell expects every intermediate task that target has results for.
    """
    columns = ["experiment", "model", "intermediate", "target", "seed", "reason"]
    present = {tuple(r) for r in results[CELL_KEY].itertuples(index=False)} if len(results) else set()
    failed = {tuple(r) for r in failures[CELL_KEY].itertuples(index=False)} if len(failures) else set()
    known = present | failed
    reasons: dict[tuple, list[str]] = {}

    if plans is not None and len(plans):
        for cell in plans[CELL_KEY].itertuples(index=False):
            key = tuple(cell)
            if key not in known:
                reasons.setdefault(key, []).append("planned in plan.json")

    if len(results):
        for (experiment, model, target), group in results.groupby(
                ["experiment", "model", "target"], sort=True):
            by_inter = {i: set(g["seed"]) for i, g in group.groupby("intermediate")}
            inters = sorted(set(by_inter) - {NONE})
            for inter in inters:
                for seed in sorted(by_inter[inter]):
                    key = (experiment, model, NONE, target, int(seed))
                    if key not in known:
                        reasons.setdefault(key, []).append(
                            f"no-ITT counterpart of the {inter} cell of seed {seed}")
            for seed in sorted(by_inter.get(NONE, set())):
                for inter in inters:
                    key = (experiment, model, inter, target, int(seed))
                    if key not in known:
                        reasons.setdefault(key, []).append(
                            f"ITT counterpart of the no-ITT cell of seed {seed}")

    rows = [dict(zip(CELL_KEY, key), reason="; ".join(why))
            for key, why in sorted(reasons.items(), key=lambda kv: tuple(map(str, kv[0])))]
    return pd.DataFrame(rows, columns=columns)


def failure_lines(failures: pd.DataFrame) -> list[str]:
    """``FAILED <cell>: <first line of the exception>  (<path>)`` per failed cell."""
    return [f"FAILED {format_cell(r)}: {r['exception']}  ({r['path']})"
            for r in failures.to_dict("records")]


def missing_lines(missing: pd.DataFrame) -> list[str]:
    """``MISSING <cell>: <why it was expected>`` per missing cell."""
    return [f"MISSING {format_cell(r)}: {r['reason']}" for r in missing.to_dict("records")]


# --------------------------------------------------------------------------- tidy export


def cells_long(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell × source × language × metric (the ``cells.csv`` format).

    ``source``: ``model`` (the fine-tuned cell), ``majority`` or ``zero_shot`` baselines.
    ``scope``: ``main`` (the reported main metric), ``average`` (metrics.average) or
    ``language`` (metrics.per_language; ``n`` is that language's example count).
    """
    ids = ["experiment", "model", "pretraining", "intermediate", "intermediate_domain",
           "target", "field", "setting", "benchmark", "target_domain", "seed"]
    columns = ids + ["source", "scope", "language", "metric", "value", "n"]
    rows: list[dict[str, Any]] = []
    for rec in df.to_dict("records"):
        base = {k: rec[k] for k in ids}
        rows.append({**base, "source": "model", "scope": "main", "language": "",
                     "metric": rec["metric"], "value": rec["value"], "n": None})
        for metric, value in (rec["average"] or {}).items():
            rows.append({**base, "source": "model", "scope": "average", "language": "",
                         "metric": metric, "value": value, "n": None})
        for lang, scores in (rec["per_language"] or {}).items():
            n = scores.get("n")
            for metric, value in scores.items():
                if metric == "n":
                    continue
                rows.append({**base, "source": "model", "scope": "language", "language": lang,
                             "metric": metric, "value": value, "n": n})
        for source in ("majority", "zero_shot"):
            value = rec[source]
            if value is not None and not math.isnan(value):
                rows.append({**base, "source": source, "scope": "main", "language": "",
                             "metric": rec["metric"], "value": value, "n": None})
    out = pd.DataFrame(rows, columns=columns)
    out["n"] = out["n"].astype("Int64")
    return out
