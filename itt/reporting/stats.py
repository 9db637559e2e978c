"""Summary statistics and paired significance tests across seeds.

Gains are paired by seed: a seed counts only when both the with-ITT and the without-ITT
cell exist, because the seed fixes the target split and the head initialisation, which
account for much of the variance between runs.
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable, Mapping

import numpy as np

TESTS: tuple[str, ...] = ("ttest", "wilcoxon", "bootstrap")
BOOTSTRAP_SAMPLES = 10_000
HELPS = "helps"
HURTS = "hurts"


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN below two values) and count, NaNs dropped."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = int(arr.size)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n >= 2 else math.nan
    return mean, std, n


def paired(with_itt: Mapping[int, float], without: Mapping[int, float]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Seeds present (and finite) in both mappings, with the two value arrays in seed order."""
    seeds = sorted(
        s for s in set(with_itt) & set(without)
        if not math.isnan(with_itt[s]) and not math.isnan(without[s])
    )
    return (seeds, np.array([with_itt[s] for s in seeds], dtype=float),
            np.array([without[s] for s in seeds], dtype=float))


def paired_p_value(with_itt: np.ndarray, without: np.ndarray, test: str = "ttest",
                   seed: int = 0) -> float:
    """Two-sided p-value of "with and without ITT differ", paired by seed; NaN if undefined.

    ``ttest``: scipy's paired t-test. ``wilcoxon``: signed-rank test (its smallest p-value
    with few seeds is large: 0.25 for three). ``bootstrap``: resampling the paired
    differences shifted to mean zero (over-confident with a handful of seeds: three seeds
    with same-sign differences already give p < 0.001). Fewer than two pairs, or differences that are all
    zero, give NaN ("n/a").
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    with_itt = np.asarray(with_itt, dtype=float)
    without = np.asarray(without, dtype=float)
    if with_itt.size < 2 or with_itt.size != without.size:
        return math.nan
    diffs = with_itt - without
    if np.all(diffs == 0):
        return math.nan
    from scipy import stats as sps  # imported on first use: it is slow to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if test == "ttest":
            p = sps.ttest_rel(with_itt, without).pvalue
        elif test == "wilcoxon":
            try:
                p = sps.wilcoxon(with_itt, without).pvalue
            except ValueError:
                return math.nan
        else:
            rng = np.random.default_rng(seed)
            centred = diffs - diffs.mean()
            idx = rng.integers(0, diffs.size, size=(BOOTSTRAP_SAMPLES, diffs.size))
            boot = centred[idx].mean(axis=1)
            extreme = np.count_nonzero(np.abs(boot) >= abs(diffs.mean()) - 1e-15)
            p = (extreme + 1) / (BOOTSTRAP_SAMPLES + 1)
    p = float(p)
    return p if not math.isnan(p) else math.nan


def significance(gain: float, p_value: float, alpha: float = 0.05) -> str:
    """``"helps"`` (gain > 0, p < alpha), ``"hurts"`` (gain < 0, p < alpha) or ``""``."""
    if math.isnan(gain) or math.isnan(p_value) or p_value >= alpha:
        return ""
    if gain > 0:
        return HELPS
    if gain < 0:
        return HURTS
    return ""
