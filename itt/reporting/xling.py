"""The report's cross-lingual section: zero-shot transfer scored as XTREME-R scores it, and
intermediate tasks from the target's own domain against intermediate tasks from others.

Which cells: those whose target trains on one language and is tested on others too (the
XTREME protocol: fine-tune on English, evaluate every language in one run), e.g.
``experiment=xling_domain_mini``. Scores follow XTREME (Hu et al., ICML 2020, §4–5) and
XTREME-R (Ruder et al., EMNLP 2021, §3): each language's score in the task's metric, the
average over the languages other than the training language, and the cross-lingual
transfer gap, the training-language score minus that average (XTREME's Table 3; positive
when the model does worse on the other languages).

Gains over no intermediate training are tested in two scopes: the training language
(``en``) and zero-shot (the mean over the other languages, the quantity whose gap XTREME-R
reports). The statistics are :mod:`itt.reporting.stats`' (the default report's): the
hierarchical paired bootstrap over seeds and test examples where every cell of a pair wrote
its ``examples.json``, else the paired t-test over seeds; p-values are corrected over each
table's family of comparisons (Holm by default), and a comparison whose corrected p is not
below alpha is ``undecided``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from itt.reporting.formatting import MISSING, fmt_mean_std, fmt_p, fmt_value
from itt.reporting.load import NONE
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
from itt.reporting.tables import fmt_gain_ci, fmt_verdict, load_examples

logger = logging.getLogger(__name__)

SAME = "same domain"
OTHER_SAME_FIELD = "other domain, same field"
OTHER = "other domain and field"
SAME_OTHER_FIELD = "same domain, other field"
RELATION_ORDER: tuple[str, ...] = (SAME, SAME_OTHER_FIELD, OTHER_SAME_FIELD, OTHER)
ZERO_SHOT = "zero-shot"
SAME_BETTER = "same domain better"
OTHER_BETTER = "other domain better"

TRANSFER_COLUMNS: list[str] = [
    "experiment", "model", "target", "intermediate", "intermediate_domain", "relation", "metric",
    "source_language", "languages", "n_seeds", "source_mean", "source_std", "other_mean",
    "other_std", "gap_mean", "gap_std", "per_language",
]
GAIN_COLUMNS: list[str] = [
    "experiment", "model", "target", "target_domain", "intermediate", "intermediate_domain",
    "relation", "scope", "languages", "metric", "without_mean", "with_mean", "gain", "ci_low",
    "ci_high", "p_value", "p_adjusted", "verdict", "n_seeds", "n_examples", "test",
]
VERSUS_COLUMNS: list[str] = [
    "experiment", "model", "target", "scope", "languages", "metric", "same", "other",
    "other_relation", "same_gain", "other_gain", "difference", "ci_low", "ci_high", "p_value",
    "p_adjusted", "verdict", "n_seeds", "n_examples", "test",
]
SUMMARY_COLUMNS: list[str] = [
    "scope", "relation", "comparisons", "mean_gain", "min_gain", "max_gain", "helps", "hurts",
    "undecided",
]


# --------------------------------------------------------------------------- which cells


def source_language(train_language: Any) -> str | None:
    """The one training language of a card's ``train_language`` (a string or a one-element
    list), else None (several training languages: not zero-shot transfer)."""
    if isinstance(train_language, str) and train_language:
        return train_language
    if isinstance(train_language, (list, tuple)) and len(train_language) == 1:
        return str(train_language[0])
    return None


def zero_shot_cells(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of a result frame (:func:`itt.reporting.load.scan`) whose target trains on
    one language and reports at least one other: the cells this section scores. Adds
    ``source_language``."""
    if df.empty:
        return df.assign(source_language=pd.Series(dtype=object))
    src = [source_language(t) for t in df["train_language"]]
    keep = [isinstance(s, str) and any(lang != s for lang in (pl or {}))
            for s, pl in zip(src, df["per_language"])]
    return df.assign(source_language=src)[keep].reset_index(drop=True)


def relation(inter_domain: Any, target_domain: Any, inter_field: Any, target_field: Any) -> str:
    """How an intermediate task relates to the target: same domain (``domain`` tags equal)
    or other domain, each split by whether the ``field`` (NLP task) is the same."""
    if not inter_domain or not target_domain:
        return ""
    same_field = bool(inter_field) and inter_field == target_field
    if inter_domain == target_domain:
        return SAME if same_field else SAME_OTHER_FIELD
    return OTHER_SAME_FIELD if same_field else OTHER


def _languages(group: pd.DataFrame, src: str) -> tuple[list[str], list[str]]:
    """(every language every cell of the group reports, in first-seen order; those other
    than ``src``)."""
    shared: list[str] | None = None
    for pl in group["per_language"]:
        langs = list(pl or {})
        shared = langs if shared is None else [lang for lang in shared if lang in langs]
    shared = shared or []
    return shared, [lang for lang in shared if lang != src]


def _score(per_language: dict, langs: Sequence[str], metric: str) -> float:
    vals = [per_language.get(lang, {}).get(metric, math.nan) for lang in langs]
    arr = np.asarray([math.nan if v is None else v for v in vals], dtype=float)
    return float(arr.mean()) if arr.size and not np.isnan(arr).any() else math.nan


def _metric(group: pd.DataFrame) -> str:
    return str(group["metric"].iloc[0])


def _relation_of(rows: pd.DataFrame) -> str:
    r = rows.iloc[0]
    return relation(r["intermediate_domain"], r["target_domain"], r["intermediate_field"], r["field"])


# --------------------------------------------------------------------------- transfer


def transfer_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, model, target, intermediate) of the zero-shot cells:
    the training-language score, the average over the other languages and the transfer gap
    (training language − that average), each computed per seed, then mean ± std over seeds;
    ``per_language``: {language: mean over seeds}."""
    cells = zero_shot_cells(df)
    rows: list[dict[str, Any]] = []
    for (experiment, model, target), group in cells.groupby(["experiment", "model", "target"], sort=True):
        src = str(group["source_language"].iloc[0])
        langs, others = _languages(group, src)
        metric = _metric(group)
        for inter in _intermediate_order(group):
            sub = group[group["intermediate"] == inter]
            source = [_score(pl, [src], metric) for pl in sub["per_language"]]
            other = [_score(pl, others, metric) for pl in sub["per_language"]]
            gap = [s - o for s, o in zip(source, other)]
            s_mean, s_std, n = mean_std(source)
            o_mean, o_std, _ = mean_std(other)
            g_mean, g_std, _ = mean_std(gap)
            per_lang = {lang: mean_std(_score(pl, [lang], metric) for pl in sub["per_language"])[0]
                        for lang in langs}
            rows.append({
                "experiment": experiment, "model": model, "target": target, "intermediate": inter,
                "intermediate_domain": None if inter == NONE else sub["intermediate_domain"].iloc[0],
                "relation": "" if inter == NONE else _relation_of(sub), "metric": metric,
                "source_language": src, "languages": ",".join(others), "n_seeds": n,
                "source_mean": s_mean, "source_std": s_std, "other_mean": o_mean,
                "other_std": o_std, "gap_mean": g_mean, "gap_std": g_std, "per_language": per_lang,
            })
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


def _intermediate_order(group: pd.DataFrame) -> list[str]:
    """none first, then by relation (same domain first), then by name."""
    inters = sorted(set(group["intermediate"]))
    rank = {}
    for inter in inters:
        if inter == NONE:
            rank[inter] = (-1, inter)
        else:
            rel = _relation_of(group[group["intermediate"] == inter])
            rank[inter] = (RELATION_ORDER.index(rel) if rel in RELATION_ORDER else len(RELATION_ORDER), inter)
    return sorted(inters, key=rank.__getitem__)


def transfer_view(transfer: pd.DataFrame, target: str) -> pd.DataFrame:
    """Display table of one target: rows = model / intermediate (relation); columns = each
    language (mean over seeds), the average over the other languages and the gap (± std)."""
    sub = transfer[transfer["target"] == target]
    if sub.empty:
        return pd.DataFrame()
    multi = sub["experiment"].nunique() > 1
    src = str(sub["source_language"].iloc[0])
    langs = list(sub["per_language"].iloc[0])
    records, index = [], []
    for r in sub.itertuples(index=False):
        model = f"{r.experiment}/{r.model}" if multi else r.model
        label = "no ITT" if r.intermediate == NONE else f"{r.intermediate} ({r.relation or '?'})"
        index.append((model, label))
        rec = {lang: fmt_value(r.per_language.get(lang, math.nan)) for lang in langs}
        rec[f"avg non-{src}"] = fmt_mean_std(r.other_mean, r.other_std, r.n_seeds)
        rec[f"gap ({src} − avg)"] = fmt_mean_std(r.gap_mean, r.gap_std, r.n_seeds, signed=True)
        rec["seeds"] = r.n_seeds
        records.append(rec)
    return pd.DataFrame(records, index=pd.MultiIndex.from_tuples(index, names=["model", "intermediate"]))


# --------------------------------------------------------------------------- statistics


@dataclass
class _Side:
    """The cells of one condition of one (experiment, model, target), by seed."""

    values: dict[int, dict]                  # seed -> per_language
    examples: dict[int, dict | None]         # seed -> examples.json's target block, or None


def _side(rows: pd.DataFrame) -> _Side:
    values, examples = {}, {}
    for seed, pl, path in zip(rows["seed"], rows["per_language"], rows["path"]):
        values[int(seed)] = pl or {}
        examples[int(seed)] = load_examples(str(path)) if path else None
    return _Side(values, examples)


def compare(a: _Side, b: _Side, languages: Sequence[str], metric: str, alpha: float,
            resamples: int, use_examples: bool = True) -> GainStats:
    """a − b in ``metric`` averaged over ``languages``, paired by seed: the hierarchical
    bootstrap (:func:`gain_stats`) when ``use_examples``, every paired seed has examples for
    those languages on both sides and the metric is one it recomputes, else the paired
    t-test over seeds."""
    seeds = sorted(s for s in set(a.values) & set(b.values)
                   if not math.isnan(_score(a.values[s], languages, metric))
                   and not math.isnan(_score(b.values[s], languages, metric)))

    def has(side: _Side, s: int) -> bool:
        ex = side.examples.get(s)
        return ex is not None and all(lang in ex for lang in languages)

    if use_examples and seeds and metric in EXAMPLE_METRICS and all(has(a, s) and has(b, s) for s in seeds):
        try:
            return gain_stats([{lang: a.examples[s][lang] for lang in languages} for s in seeds],  # type: ignore[index]
                              [{lang: b.examples[s][lang] for lang in languages} for s in seeds],  # type: ignore[index]
                              metric, alpha=alpha, languages=list(languages), resamples=resamples)
        except ValueError as exc:
            logger.warning("%s: %s; tested over seeds only", ",".join(languages), exc)
    return seed_gain_stats([_score(a.values[s], languages, metric) for s in seeds],
                           [_score(b.values[s], languages, metric) for s in seeds], alpha=alpha)


def _scopes(src: str, others: list[str]) -> list[tuple[str, list[str]]]:
    scopes = [(src, [src])]
    if others:
        scopes.append((ZERO_SHOT, others))
    return scopes


def _correct(rows: list[dict[str, Any]], stats: list[GainStats], correction: str, alpha: float,
             labels: dict[str, str] | None = None) -> None:
    for row, st in zip(rows, adjust(stats, correction, alpha)):
        verdict = st.verdict
        row.update(p_adjusted=st.p_adjusted, verdict=(labels or {}).get(verdict, verdict))


def domain_gain_table(df: pd.DataFrame, alpha: float = 0.05, correction: str = "holm",
                      resamples: int = 5_000, use_examples: bool = True) -> pd.DataFrame:
    """The gain of every intermediate task over no ITT on the zero-shot cells, in the
    training language and zero-shot (mean over the other languages): mean over seeds,
    95% CI, p, p corrected over the whole table, verdict helps / hurts / undecided."""
    cells = zero_shot_cells(df)
    rows: list[dict[str, Any]] = []
    stats: list[GainStats] = []
    for (experiment, model, target), group in cells.groupby(["experiment", "model", "target"], sort=True):
        base_rows = group[group["intermediate"] == NONE]
        if base_rows.empty:
            continue
        src = str(group["source_language"].iloc[0])
        _, others = _languages(group, src)
        metric = _metric(group)
        base = _side(base_rows)
        for inter in _intermediate_order(group):
            if inter == NONE:
                continue
            itt_rows = group[group["intermediate"] == inter]
            itt = _side(itt_rows)
            for scope, langs in _scopes(src, others):
                st = compare(itt, base, langs, metric, alpha, resamples, use_examples)
                rows.append({
                    "experiment": experiment, "model": model, "target": target,
                    "target_domain": itt_rows["target_domain"].iloc[0], "intermediate": inter,
                    "intermediate_domain": itt_rows["intermediate_domain"].iloc[0],
                    "relation": _relation_of(itt_rows), "scope": scope, "languages": ",".join(langs),
                    "metric": metric,
                    "without_mean": mean_std(_score(v, langs, metric) for v in base.values.values())[0],
                    "with_mean": mean_std(_score(v, langs, metric) for v in itt.values.values())[0],
                    "gain": st.mean, "ci_low": st.ci_low, "ci_high": st.ci_high, "p_value": st.p,
                    "p_adjusted": math.nan, "verdict": UNDECIDED, "n_seeds": st.n_seeds,
                    "n_examples": st.n_examples, "test": st.test,
                })
                stats.append(st)
    _correct(rows, stats, correction, alpha)
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)


def same_vs_other_table(df: pd.DataFrame, gains: pd.DataFrame | None = None, alpha: float = 0.05,
                        correction: str = "holm", resamples: int = 5_000,
                        use_examples: bool = True) -> pd.DataFrame:
    """Every same-domain intermediate task against every other-domain one of the same
    (experiment, model, target), in both scopes: the difference of their scores (equal to
    the difference of their gains over no ITT, paired by seed), 95% CI, p corrected over the
    table; verdict ``same domain better`` / ``other domain better`` / ``undecided``."""
    cells = zero_shot_cells(df)
    if gains is None:
        gains = domain_gain_table(df, alpha, correction, resamples, use_examples)
    gain_of = {(r.experiment, r.model, r.target, r.intermediate, r.scope): r.gain
               for r in gains.itertuples(index=False)}
    rows: list[dict[str, Any]] = []
    stats: list[GainStats] = []
    for (experiment, model, target), group in cells.groupby(["experiment", "model", "target"], sort=True):
        src = str(group["source_language"].iloc[0])
        _, others = _languages(group, src)
        metric = _metric(group)
        rel = {i: _relation_of(group[group["intermediate"] == i]) for i in _intermediate_order(group) if i != NONE}
        same = [i for i, r in rel.items() if r in (SAME, SAME_OTHER_FIELD)]
        other = [i for i, r in rel.items() if r in (OTHER_SAME_FIELD, OTHER)]
        sides = {i: _side(group[group["intermediate"] == i]) for i in same + other}
        for scope, langs in _scopes(src, others):
            for s in same:
                for o in other:
                    st = compare(sides[s], sides[o], langs, metric, alpha, resamples, use_examples)
                    rows.append({
                        "experiment": experiment, "model": model, "target": target, "scope": scope,
                        "languages": ",".join(langs), "metric": metric, "same": s, "other": o,
                        "other_relation": rel[o],
                        "same_gain": gain_of.get((experiment, model, target, s, scope), math.nan),
                        "other_gain": gain_of.get((experiment, model, target, o, scope), math.nan),
                        "difference": st.mean, "ci_low": st.ci_low, "ci_high": st.ci_high,
                        "p_value": st.p, "p_adjusted": math.nan, "verdict": UNDECIDED,
                        "n_seeds": st.n_seeds, "n_examples": st.n_examples, "test": st.test,
                    })
                    stats.append(st)
    _correct(rows, stats, correction, alpha, {HELPS: SAME_BETTER, HURTS: OTHER_BETTER})
    return pd.DataFrame(rows, columns=VERSUS_COLUMNS)


def domain_summary(gains: pd.DataFrame) -> pd.DataFrame:
    """Per scope (training language, zero-shot) and relation: how many gains, their mean,
    smallest and largest, and how many the corrected test calls helps / hurts / undecided."""
    rows = []
    if gains.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    scopes = [s for s in dict.fromkeys(gains["scope"]) if s != ZERO_SHOT] + [ZERO_SHOT]
    for scope in scopes:
        for rel in RELATION_ORDER:
            sub = gains[(gains["scope"] == scope) & (gains["relation"] == rel)]
            if sub.empty:
                continue
            g = sub["gain"].astype(float)
            rows.append({"scope": scope, "relation": rel, "comparisons": len(sub),
                         "mean_gain": float(g.mean()), "min_gain": float(g.min()),
                         "max_gain": float(g.max()),
                         "helps": int((sub["verdict"] == HELPS).sum()),
                         "hurts": int((sub["verdict"] == HURTS).sum()),
                         "undecided": int((sub["verdict"] == UNDECIDED).sum())})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# --------------------------------------------------------------------------- display


def gain_view(gains: pd.DataFrame) -> pd.DataFrame:
    """Display table: one row per (model, target, intermediate); per scope the gain over no
    ITT with its 95% CI, the corrected p and the verdict."""
    if gains.empty:
        return pd.DataFrame()
    multi = gains["experiment"].nunique() > 1
    records: dict[tuple, dict[str, Any]] = {}
    for r in gains.itertuples(index=False):
        model = f"{r.experiment}/{r.model}" if multi else r.model
        key = (model, r.target, f"{r.intermediate} ({r.relation or '?'})")
        rec = records.setdefault(key, {})
        rec[f"gain {r.scope}"] = fmt_gain_ci(r.gain, r.ci_low, r.ci_high)
        rec[f"p {r.scope}"] = fmt_p(r.p_adjusted)
        rec[f"verdict {r.scope}"] = fmt_verdict(r.verdict)
    return pd.DataFrame(list(records.values()),
                        index=pd.MultiIndex.from_tuples(list(records), names=["model", "target", "intermediate"]))


def versus_view(versus: pd.DataFrame) -> pd.DataFrame:
    """Display table of :func:`same_vs_other_table`."""
    if versus.empty:
        return pd.DataFrame()
    multi = versus["experiment"].nunique() > 1
    records, index = [], []
    for r in versus.itertuples(index=False):
        model = f"{r.experiment}/{r.model}" if multi else r.model
        index.append((model, r.target, r.scope))
        records.append({"same domain": r.same, "other domain": f"{r.other} ({r.other_relation})",
                        "gain same": fmt_value(r.same_gain, signed=True),
                        "gain other": fmt_value(r.other_gain, signed=True),
                        "same − other [95% CI]": fmt_gain_ci(r.difference, r.ci_low, r.ci_high),
                        "p": fmt_p(r.p_adjusted), "verdict": r.verdict})
    return pd.DataFrame(records, index=pd.MultiIndex.from_tuples(index, names=["model", "target", "scope"]))


def summary_view(summary: pd.DataFrame) -> pd.DataFrame:
    """Display table of :func:`domain_summary`."""
    if summary.empty:
        return pd.DataFrame()
    out = summary.copy()
    for col in ("mean_gain", "min_gain", "max_gain"):
        out[col] = [fmt_value(v, signed=True) for v in out[col]]
    return out.rename(columns={"mean_gain": "mean gain", "min_gain": "min", "max_gain": "max"})


@dataclass
class XlingSection:
    """The section's tidy tables (for CSV) and display tables (for markdown / LaTeX)."""

    transfer: pd.DataFrame
    gains: pd.DataFrame
    versus: pd.DataFrame
    summary: pd.DataFrame
    alpha: float = 0.05
    correction: str = "holm"
    targets: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.transfer.empty

    def legend(self) -> str:
        tests = sorted(set(self.gains["test"]) | set(self.versus["test"])) if not self.gains.empty else []
        return (
            "Cells whose target trains on one language and is tested on every language in one run "
            "(the XTREME protocol). Per language: the main metric, mean over seeds; avg: the mean "
            "over the languages other than the training language, per seed; gap: training-language "
            "score − that average (XTREME's cross-lingual transfer gap), mean ± std over seeds. "
            "Relation: same domain when the intermediate and target cards' `domain` tags are equal; "
            "other domains are split by whether the `field` (NLP task) is the same. Gains: with − "
            "without ITT, paired by seed, mean [95% CI], in the training language and zero-shot "
            f"(mean over the other languages); test: {'; '.join(tests) or MISSING}; p corrected "
            f"over each table's comparisons ({self.correction}); α = {self.alpha:g}; undecided: "
            "the corrected test could not tell (not evidence of no effect).")

    def markdown(self, to_markdown: Any) -> list[str]:
        """The section's markdown lines (``to_markdown``: itt.reporting.render.to_markdown)."""
        if self.empty:
            return []
        md = ["## Cross-lingual transfer and intermediate-task domain", "", self.legend(), ""]
        for target in self.targets:
            md += [f"### {target}: per language, average and transfer gap", "",
                   to_markdown(transfer_view(self.transfer, target)), ""]
        if not self.gains.empty:
            md += ["### Gain over no ITT by intermediate-task domain", "",
                   to_markdown(summary_view(self.summary), index=False), "",
                   to_markdown(gain_view(self.gains)), ""]
        if not self.versus.empty:
            md += ["### Same-domain against other-domain intermediate task", "",
                   "same − other: the difference of the two ITT scores (= of their gains), paired "
                   "by seed and test example.", "", to_markdown(versus_view(self.versus)), ""]
        return md

    def latex(self, to_latex: Any) -> list[tuple[str, str]]:
        """(title, body) pairs for the LaTeX report."""
        if self.empty:
            return []
        out = [(f"Cross-lingual transfer: {t}", to_latex(transfer_view(self.transfer, t)))
               for t in self.targets]
        if not self.gains.empty:
            out += [("Gain by intermediate-task domain (summary)", to_latex(summary_view(self.summary), index=False)),
                    ("Gain by intermediate-task domain", to_latex(gain_view(self.gains)))]
        if not self.versus.empty:
            out.append(("Same- against other-domain intermediate task", to_latex(versus_view(self.versus))))
        return out

    def csv_frames(self) -> dict[str, pd.DataFrame]:
        """Tidy tables by CSV name; ``per_language`` dicts are spread into one column each."""
        transfer = self.transfer.drop(columns="per_language")
        langs: list[str] = []
        for pl in self.transfer["per_language"]:
            langs += [lang for lang in pl if lang not in langs]
        for lang in langs:
            transfer[f"score_{lang}"] = [pl.get(lang, math.nan) for pl in self.transfer["per_language"]]
        return {"xling_transfer": transfer, "xling_gains": self.gains,
                "xling_same_vs_other": self.versus, "xling_summary": self.summary}


def xling_section(df: pd.DataFrame, alpha: float = 0.05, correction: str = "holm",
                  resamples: int = 5_000, use_examples: bool = True) -> XlingSection:
    """Every table of the section from a result frame; empty when no cell is zero-shot.
    ``use_examples=False`` tests over seeds only (the report's ``--test ttest``)."""
    transfer = transfer_table(df)
    gains = domain_gain_table(df, alpha, correction, resamples, use_examples)
    versus = same_vs_other_table(df, gains, alpha, correction, resamples, use_examples)
    targets = sorted(set(transfer["target"])) if not transfer.empty else []
    return XlingSection(transfer, gains, versus, domain_summary(gains), alpha, correction, targets)
