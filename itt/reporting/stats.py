"""Gains of intermediate-task training with confidence intervals and significance tests.

The public API (used by the report, the notebook and any analysis of ``examples.json``):

* :func:`gain_stats` — the gain of ITT on one target (mean over seeds, 95% CI, two-sided
  p-value and a verdict) from per-example predictions: a hierarchical paired bootstrap that
  resamples the seeds, then the test examples within each seed (Efron & Tibshirani, *An
  Introduction to the Bootstrap*, 1993, ch. 16; the paired bootstrap over test examples of
  Koehn, EMNLP 2004, and Berg-Kirkpatrick et al., EMNLP 2012, with the seeds as the outer
  level so that run-to-run variance counts as Dror et al., ACL 2019, ask).
* :func:`seed_gain_stats` — the same summary from one score per seed only (paired t-test
  and t interval), for cells without per-example data.
* :func:`correct` / :func:`adjust` — Holm (step-down, family-wise error) or
  Benjamini–Hochberg (false discovery rate) correction over a family of comparisons.
* :func:`metric_value` — accuracy, macro-F1, Pearson r or Spearman ρ of one prediction set,
  as :mod:`itt.metrics.task_metrics` computes them.

Gains are paired: seed *k* with ITT against seed *k* without, and within a seed example *i*
against example *i*: the seed fixes the split (so the test rows are the same ones in the
same order) and the head initialisation.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

HELPS = "helps"
HURTS = "hurts"
UNDECIDED = "undecided"
VERDICTS: tuple[str, ...] = (HELPS, HURTS, UNDECIDED)
METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "pearson", "spearman")
CORRECTIONS: tuple[str, ...] = ("holm", "bh", "none")
BOOTSTRAP_TEST = "hierarchical paired bootstrap (seeds, then test examples)"
SEED_TEST = "paired t-test over seeds"
RESAMPLES = 5_000
# Kept for the seed-level tests of the per-language tables and older callers.
TESTS: tuple[str, ...] = ("ttest", "wilcoxon", "bootstrap")
BOOTSTRAP_SAMPLES = 10_000

#: One seed's per-example data for one target: ``{language: {"pred": [...], "gold": [...]}}``
#: (the ``target`` block of ``examples.json``).
SeedExamples = Mapping[str, Mapping[str, Sequence[float]]]


@dataclass(frozen=True)
class GainStats:
    """The gain of ITT on one target: with − without, in the target's main metric.

    ``mean``: mean over the paired seeds of the per-seed gain (each seed's metric is the mean
    over its test languages, as result.json's ``metrics.main``). ``ci_low``/``ci_high``: the
    ``confidence`` interval (percentile bootstrap, or t interval for seed-only data).
    ``p``: two-sided p-value of "no gain"; ``p_adjusted``: after :func:`adjust` (equal to
    ``p`` until then). ``verdict``: ``helps`` / ``hurts`` when ``p_adjusted < alpha``, else
    ``undecided`` (also when the test cannot be run: fewer than ``min_seeds`` paired seeds,
    or no difference at all). ``n_seeds``: paired seeds; ``n_examples``: test examples per
    seed, summed over languages; ``test``: the test's name, ``note``: why it is undecided
    when it could not be run.
    """

    mean: float
    ci_low: float
    ci_high: float
    p: float
    n_seeds: int
    n_examples: int
    verdict: str
    test: str
    p_adjusted: float = math.nan
    alpha: float = 0.05
    confidence: float = 0.95
    note: str = ""

    def __post_init__(self) -> None:
        if math.isnan(self.p_adjusted) and not math.isnan(self.p):
            object.__setattr__(self, "p_adjusted", self.p)


# --------------------------------------------------------------------------- metrics


def _weighted_pearson(c: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of (x, y) under each row of example counts ``c`` (shape resamples × n)."""
    x = x.astype(float) - x.mean()
    y = y.astype(float) - y.mean()
    n, sx, sy, sxx, syy, sxy = (c @ np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1)).T
    sxx = sxx - sx * sx / n
    syy = syy - sy * sy / n
    sxy = sxy - sx * sy / n
    denom = np.sqrt(np.clip(sxx, 0, None) * np.clip(syy, 0, None))
    ok = denom > 1e-12 * np.maximum(1.0, np.abs(sxy))
    return np.where(ok, sxy / np.where(ok, denom, 1.0), np.nan)


def _weighted_ranks(c: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank) of every example inside each resample."""
    uniq, inv = np.unique(x, return_inverse=True)
    cu = np.zeros((c.shape[0], uniq.size))
    np.add.at(cu.T, inv, c.T)                          # counts per distinct value
    rank_u = np.cumsum(cu, axis=1) - cu + (cu + 1) / 2
    return rank_u[:, inv]


def _weighted_metric(c: np.ndarray, pred: np.ndarray, gold: np.ndarray, metric: str,
                     n_classes: int) -> np.ndarray:
    """``metric`` of (pred, gold) under each row of example counts ``c`` (resamples × n).

    A row of ones is the metric of the test set itself; a bootstrap row holds how often each
    example was drawn.
    """
    c = np.asarray(c, dtype=float)
    if metric == "accuracy":
        return (c @ (pred == gold).astype(float)) / c.sum(axis=1)
    if metric == "macro_f1":
        f1 = np.zeros(c.shape[0])
        for k in range(n_classes):
            p, g = pred == k, gold == k
            tp = c @ (p & g).astype(float)
            denom = c @ p.astype(float) + c @ g.astype(float)
            f1 += np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1.0), 0.0)
        return f1 / n_classes
    if metric == "pearson":
        return _weighted_pearson(c, pred, gold)
    if metric == "spearman":
        rp, rg = _weighted_ranks(c, pred), _weighted_ranks(c, gold)
        n = c.sum(axis=1, keepdims=True)
        mp = (c * rp).sum(axis=1, keepdims=True) / n
        mg = (c * rg).sum(axis=1, keepdims=True) / n
        dp, dg = rp - mp, rg - mg
        num = (c * dp * dg).sum(axis=1)
        denom = np.sqrt((c * dp * dp).sum(axis=1) * (c * dg * dg).sum(axis=1))
        ok = denom > 0
        return np.where(ok, num / np.where(ok, denom, 1.0), np.nan)
    raise ValueError(f"unknown metric {metric!r}; gain_stats supports {', '.join(METRICS)}")


def metric_value(pred: Sequence[float], gold: Sequence[float], metric: str,
                 n_classes: int | None = None) -> float:
    """``metric`` (accuracy, macro_f1, pearson, spearman) of one prediction set.

    Macro-F1 averages over ``n_classes`` classes (default: the labels seen in pred and gold,
    at least 2); a correlation of a constant is NaN, as in :mod:`itt.metrics.task_metrics`.
    """
    p, g = np.asarray(pred), np.asarray(gold)
    if p.shape != g.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"pred and gold must be equal-length non-empty lists "
                         f"(got {p.shape} and {g.shape})")
    if n_classes is None:
        n_classes = max(int(max(p.max(), g.max())) + 1, 2) if metric == "macro_f1" else 2
    return float(_weighted_metric(np.ones((1, p.size)), p, g, metric, n_classes)[0])


def _counts(gen: np.random.Generator, resamples: int, n: int) -> np.ndarray:
    """``resamples`` bootstrap draws of n examples out of n, as per-example counts."""
    idx = gen.integers(0, n, size=(resamples, n))
    flat = (idx + np.arange(resamples)[:, None] * n).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n)


# --------------------------------------------------------------------------- gain_stats


def _arrays(examples: SeedExamples, lang: str, side: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    block = examples.get(lang)
    if block is None or "pred" not in block or "gold" not in block:
        raise ValueError(f"{side} seed #{seed} has no pred/gold for language {lang!r}")
    pred, gold = np.asarray(block["pred"]), np.asarray(block["gold"])
    if pred.shape != gold.shape or pred.ndim != 1 or pred.size == 0:
        raise ValueError(f"{side} seed #{seed}, {lang}: pred and gold must be equal-length, "
                         f"non-empty lists ({pred.shape} vs {gold.shape})")
    return pred, gold


def p_from_bootstrap(samples: np.ndarray) -> float:
    """Two-sided p-value of "the statistic is 0" by inverting the percentile interval:
    twice the smaller tail share of the bootstrap samples at or beyond 0, with the +1 of
    Davison & Hinkley (1997, eq. 4.11) so that it is never 0; capped at 1."""
    samples = samples[~np.isnan(samples)]
    b = samples.size
    if b == 0:
        return math.nan
    low = (np.count_nonzero(samples <= 0) + 1) / (b + 1)
    high = (np.count_nonzero(samples >= 0) + 1) / (b + 1)
    return float(min(1.0, 2 * min(low, high)))


def verdict(mean: float, p: float, alpha: float = 0.05) -> str:
    """``helps`` / ``hurts`` when ``p < alpha`` and the gain has that sign, else ``undecided``."""
    if math.isnan(mean) or math.isnan(p) or p >= alpha or mean == 0:
        return UNDECIDED
    return HELPS if mean > 0 else HURTS


def gain_stats(with_itt: Sequence[SeedExamples], without_itt: Sequence[SeedExamples],
               metric: str, *, alpha: float = 0.05, confidence: float = 0.95,
               resamples: int = RESAMPLES, min_seeds: int = 2, n_classes: int | None = None,
               languages: Sequence[str] | None = None, rng: int | np.random.Generator = 0) -> GainStats:
    """Gain of ITT from per-example predictions, by a hierarchical paired bootstrap.

    ``with_itt[k]`` and ``without_itt[k]`` are the same seed's ``{lang: {"pred", "gold"}}``
    (the ``target`` block of two cells' ``examples.json``; pred = label index or a float
    score); within a language the two hold the same test rows in the same order (checked:
    the gold labels must be equal). The per-seed score is ``metric`` per language, averaged
    over ``languages`` (default: the languages every seed of both sides has); the gain is
    its with − without difference, averaged over seeds.

    Each of ``resamples`` bootstrap replicates draws the seeds with replacement, then for
    every drawn seed the test examples of each language with replacement — the same rows for
    both sides, since the test is paired — and recomputes the metric, so the interval holds
    both run-to-run and test-set variance. CI: percentile interval at ``confidence``;
    p: two-sided, by inverting it (:func:`p_from_bootstrap`); verdict at ``alpha`` before
    any correction (see :func:`adjust`). With fewer than ``min_seeds`` seeds the CI covers
    test-set variance only, p is NaN and the verdict is ``undecided``. ``rng`` seeds the
    resampling: equal inputs give equal results.

    The two-stage resampling counts test-set noise twice (once inside each seed, once in
    the spread between seeds), so the test is conservative: with no true gain and no
    seed-to-seed variance, 3 seeds × 150 examples, it called 1 of 120 simulated cells at
    alpha = 0.05 (tests/test_stats.py). An "undecided" is therefore no evidence of no effect.

    Raises ``ValueError`` on unequal seed counts, mismatched gold labels, an unknown metric
    or no shared language.

    Example::

        s = gain_stats([ex_itt_seed0, ex_itt_seed1, ex_itt_seed2],
                       [ex_none_seed0, ex_none_seed1, ex_none_seed2], "accuracy")
        f"{s.mean:+.3f} [{s.ci_low:+.3f}, {s.ci_high:+.3f}] p={s.p:.3f} {s.verdict}"
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; gain_stats supports {', '.join(METRICS)}")
    if len(with_itt) != len(without_itt):
        raise ValueError(f"seeds must pair up: {len(with_itt)} with ITT, {len(without_itt)} without")
    if resamples < 100:
        raise ValueError(f"resamples={resamples}: use at least 100 (1,000+ for a 95% interval)")
    k = len(with_itt)
    test = BOOTSTRAP_TEST
    if k == 0:
        return GainStats(math.nan, math.nan, math.nan, math.nan, 0, 0, UNDECIDED, test,
                         alpha=alpha, confidence=confidence, note="no paired seed")
    if languages is None:
        shared = set(with_itt[0]) & set(without_itt[0])
        for w, wo in zip(with_itt[1:], without_itt[1:]):
            shared &= set(w) & set(wo)
        languages = [lang for lang in with_itt[0] if lang in shared]
    if not languages:
        raise ValueError("with and without ITT share no test language")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    point = np.empty(k)
    boot = np.zeros((k, resamples))     # [seed, replicate]: the seed's gain on resampled examples
    n_examples = 0
    for s in range(k):
        gains, n_seed = [], 0
        for lang in languages:
            pw, gw = _arrays(with_itt[s], lang, "with-ITT", s)
            po, go = _arrays(without_itt[s], lang, "without-ITT", s)
            if gw.shape != go.shape or not np.allclose(gw.astype(float), go.astype(float)):
                raise ValueError(f"seed #{s}, {lang}: the test rows differ between the cells with "
                                 "and without ITT (gold labels differ); pair cells of the same seed")
            classes = n_classes or max(int(max(pw.max(), po.max(), gw.max())) + 1, 2)
            ones = np.ones((1, gw.size))
            gains.append(float(_weighted_metric(ones, pw, gw, metric, classes)[0]
                               - _weighted_metric(ones, po, go, metric, classes)[0]))
            c = _counts(gen, resamples, gw.size).astype(float)
            boot[s] += (_weighted_metric(c, pw, gw, metric, classes)
                        - _weighted_metric(c, po, go, metric, classes))
            n_seed += gw.size
        point[s] = float(np.mean(gains))
        boot[s] /= len(languages)
        n_examples = max(n_examples, n_seed)
    mean = float(np.mean(point))

    if k >= min_seeds:
        # Replicate b takes, at position j, seed choice[b, j] with its example resample
        # (b + j) mod R: a seed drawn twice in one replicate gets two different resamples.
        choice = gen.integers(0, k, size=(resamples, k))
        rep = (np.arange(resamples)[:, None] + np.arange(k)[None, :]) % resamples
        samples = boot[choice, rep].mean(axis=1)
    else:
        samples = boot[0]
    samples = samples[~np.isnan(samples)]
    tail = (1 - confidence) / 2
    if samples.size:
        ci_low, ci_high = (float(q) for q in np.quantile(samples, [tail, 1 - tail]))
    else:
        ci_low = ci_high = math.nan
    note = ""
    if k < min_seeds:
        p, note = math.nan, f"{k} seed(s): the test needs {min_seeds}"
    elif samples.size == 0 or np.all(samples == 0):
        p, note = math.nan, "no difference in any resample"
    else:
        p = p_from_bootstrap(samples)
    return GainStats(mean, ci_low, ci_high, p, k, n_examples, verdict(mean, p, alpha), test,
                     alpha=alpha, confidence=confidence, note=note)


def seed_gain_stats(with_values: Sequence[float], without_values: Sequence[float], *,
                    alpha: float = 0.05, confidence: float = 0.95, min_seeds: int = 2) -> GainStats:
    """Gain from one score per seed (paired by position): mean, t interval, paired t-test.

    For cells without per-example data (older results, task types whose predictions are not
    one number per example). It ignores test-set variance: prefer :func:`gain_stats`.
    """
    w = np.asarray(with_values, dtype=float)
    wo = np.asarray(without_values, dtype=float)
    if w.shape != wo.shape:
        raise ValueError(f"seeds must pair up: {w.size} with ITT, {wo.size} without")
    keep = ~(np.isnan(w) | np.isnan(wo))
    d = (w - wo)[keep]
    k = int(d.size)
    if k == 0:
        return GainStats(math.nan, math.nan, math.nan, math.nan, 0, 0, UNDECIDED, SEED_TEST,
                         alpha=alpha, confidence=confidence, note="no paired seed")
    mean = float(d.mean())
    if k < min_seeds:
        return GainStats(mean, math.nan, math.nan, math.nan, k, 0, UNDECIDED, SEED_TEST,
                         alpha=alpha, confidence=confidence,
                         note=f"{k} seed(s): the test needs {min_seeds}")
    from scipy import stats as sps

    sd = float(d.std(ddof=1))
    # Gains equal up to float rounding (metrics are rounded to 6 digits in result.json) carry
    # no spread to test against: a t-test would turn rounding noise into p ~ 1e-30.
    if sd <= 1e-9 * max(1.0, float(np.abs(d).max())):
        return GainStats(mean, mean, mean, math.nan, k, 0, UNDECIDED, SEED_TEST, alpha=alpha,
                         confidence=confidence, note="identical gain in every seed")
    half = float(sps.t.ppf(0.5 + confidence / 2, k - 1)) * sd / math.sqrt(k)
    with warnings.catch_warnings():   # near-identical gains: scipy warns, the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(sps.ttest_1samp(d, 0.0).pvalue)
    return GainStats(mean, mean - half, mean + half, p, k, 0, verdict(mean, p, alpha), SEED_TEST,
                     alpha=alpha, confidence=confidence)


# --------------------------------------------------------------------------- correction


def correct(pvalues: Iterable[float], method: str = "holm") -> np.ndarray:
    """Adjusted p-values for a family of comparisons (NaNs stay NaN and do not count).

    ``holm``: Holm's step-down procedure (controls the family-wise error rate; Holm, Scand.
    J. Statist. 1979). ``bh``: Benjamini–Hochberg step-up (controls the false discovery rate;
    JRSS B 1995). ``none``: unchanged. Reject where adjusted p < alpha. Equals statsmodels'
    ``multipletests(p, method="holm" | "fdr_bh")[1]``.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; choose one of {', '.join(CORRECTIONS)}")
    p = np.asarray(list(pvalues), dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0 or method == "none":
        out[ok] = p[ok]
        return out
    vals = p[ok]
    order = np.argsort(vals, kind="stable")
    ranked = vals[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        adj = np.minimum.accumulate((m / np.arange(m, 0, -1) * ranked[::-1]))[::-1]
    adj = np.minimum(adj, 1.0)
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def adjust(stats: Sequence[GainStats], method: str = "holm",
           alpha: float | None = None) -> list[GainStats]:
    """``stats`` with ``p_adjusted`` corrected over the whole family and verdicts redrawn."""
    adjusted = correct([s.p for s in stats], method)
    out = []
    for s, p_adj in zip(stats, adjusted):
        a = s.alpha if alpha is None else alpha
        out.append(replace(s, p_adjusted=float(p_adj), alpha=a, verdict=verdict(s.mean, float(p_adj), a)))
    return out


# --------------------------------------------------------------------------- seed summaries


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN below two values) and count, NaNs dropped."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = int(arr.size)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n >= 2 else math.nan
    return mean, std, n


def paired(with_itt: Mapping[int, Any], without: Mapping[int, Any]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Seeds present (and finite) in both mappings, with the two value arrays in seed order."""
    seeds = sorted(
        s for s in set(with_itt) & set(without)
        if not math.isnan(with_itt[s]) and not math.isnan(without[s])
    )
    return (seeds, np.array([with_itt[s] for s in seeds], dtype=float),
            np.array([without[s] for s in seeds], dtype=float))


def paired_p_value(with_itt: np.ndarray, without: np.ndarray, test: str = "ttest",
                   seed: int = 0) -> float:
    """Two-sided p-value of "with and without ITT differ" from one score per seed; NaN if undefined.

    ``ttest``: scipy's paired t-test. ``wilcoxon``: signed-rank test (its smallest p-value
    with few seeds is large: 0.25 for three). ``bootstrap``: resampling the paired
    differences shifted to mean zero (over-confident with a handful of seeds). Fewer than
    two pairs, or differences that are all zero, give NaN.
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
    v = verdict(gain, p_value, alpha)
    return "" if v == UNDECIDED else v
