"""Ranks from scores, and how well a ranking of intermediate tasks matches the gains that the
grid measured: Spearman's rho, NDCG@k and regret@k.

The measures are those of Poth et al. (2021), "What to Pre-Train on? Efficient Intermediate
Task Selection", EMNLP: a method's ranking of the candidate tasks is compared with the
target's measured result after intermediate training, by NDCG (relevance: that result) and
by Regret@k (what the best of the method's top k candidates loses against the best one).
Poth et al. divide the regret by the best result; here it stays in the metric's units, the
gain of the best candidate minus the gain of the best one picked.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy.stats import spearmanr


def _valid(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def order(scores: Mapping[str, float | None]) -> list[str]:
    """Candidates from the highest score to the lowest (ties by name); unscored ones out."""
    scored = [(k, float(v)) for k, v in scores.items() if _valid(v)]
    return [k for k, _ in sorted(scored, key=lambda kv: (-kv[1], kv[0]))]


def ranks(scores: Mapping[str, float | None]) -> dict[str, int | None]:
    """Rank 1 = highest score; unscored candidates get None."""
    ranked = {k: i + 1 for i, k in enumerate(order(scores))}
    return {k: ranked.get(k) for k in scores}


def spearman(scores: Mapping[str, float | None], gains: Mapping[str, float]) -> float:
    """Spearman's rho between predicted scores and measured gains over the candidates that
    have both; NaN with fewer than three or when either side is constant."""
    keys = [k for k in scores if _valid(scores[k]) and _valid(gains.get(k))]
    if len(keys) < 3:
        return math.nan
    a = np.array([scores[k] for k in keys], dtype=float)
    b = np.array([gains[k] for k in keys], dtype=float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def ndcg_at_k(scores: Mapping[str, float | None], relevance: Mapping[str, float], k: int) -> float:
    """NDCG@k of the predicted order with graded relevance (negative relevance counts as 0),
    over the candidates that have a measured relevance; unscored candidates rank last."""
    keys = [c for c in relevance if _valid(relevance.get(c))]
    if not keys:
        return math.nan
    rel = {c: max(float(relevance[c]), 0.0) for c in keys}
    predicted = [c for c in order({c: scores.get(c) for c in keys})]
    predicted += sorted(c for c in keys if c not in predicted)
    ideal = sorted(keys, key=lambda c: -rel[c])

    def dcg(seq: list[str]) -> float:
        return sum(rel[c] / math.log2(i + 2) for i, c in enumerate(seq[:k]))

    best = dcg(ideal)
    return dcg(predicted) / best if best > 0 else math.nan


def regret_at_k(scores: Mapping[str, float | None], gains: Mapping[str, float], k: int = 1) -> float:
    """The best measured gain minus the best gain among the method's top-k candidates
    (candidates with a measured gain only; 0 = the method's picks include the best)."""
    keys = [c for c in gains if _valid(gains.get(c))]
    if not keys:
        return math.nan
    predicted = order({c: scores.get(c) for c in keys})
    if not predicted:
        return math.nan
    return float(max(gains[c] for c in keys) - max(gains[c] for c in predicted[:k]))
