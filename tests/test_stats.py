"""itt.reporting.stats: the gain's CI and test over seeds and test examples, and corrections."""
from __future__ import annotations

import math

import numpy as np
import pytest

from itt.reporting.stats import (
    BOOTSTRAP_TEST,
    HELPS,
    HURTS,
    UNDECIDED,
    adjust,
    correct,
    gain_stats,
    metric_value,
    seed_gain_stats,
)


def _cls_seed(rng: np.random.Generator, gold: np.ndarray, acc: float) -> np.ndarray:
    """Predictions of a binary classifier that is right with probability ``acc``."""
    return np.where(rng.random(gold.size) < acc, gold, 1 - gold)


def _pairs(rng: np.random.Generator, accs_with: list[float], accs_without: list[float],
           n: int = 300, langs: tuple[str, ...] = ("en",)) -> tuple[list[dict], list[dict]]:
    w, wo = [], []
    for a_w, a_wo in zip(accs_with, accs_without):
        sw, swo = {}, {}
        for lang in langs:
            gold = rng.integers(0, 2, n)
            sw[lang] = {"pred": _cls_seed(rng, gold, a_w).tolist(), "gold": gold.tolist()}
            swo[lang] = {"pred": _cls_seed(rng, gold, a_wo).tolist(), "gold": gold.tolist()}
        w.append(sw)
        wo.append(swo)
    return w, wo


def test_holm_and_bh_follow_their_definitions() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted p times (m, m-1, ...), running maximum: .02, .03, .06, .06
    assert correct(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted p times m/rank, running minimum from the top: .02, .02, .04, .04
    assert correct(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert correct(p, "none") == pytest.approx(p)
    out = correct([0.01, math.nan, 0.02], "holm")          # NaN neither counts nor changes
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert correct([0.6, 0.7], "holm") == pytest.approx([1.0, 1.0])  # capped at 1
    with pytest.raises(ValueError, match="unknown correction"):
        correct(p, "bonferroni-ish")


def test_metric_value_agrees_with_the_training_metrics() -> None:
    torch = pytest.importorskip("torch")
    from itt.metrics.task_metrics import compute

    rng = np.random.default_rng(3)
    gold = rng.integers(0, 4, 120)
    pred = np.where(rng.random(120) < 0.6, gold, rng.integers(0, 4, 120))
    ref = compute(["accuracy", "macro_f1"], torch.as_tensor(pred), torch.as_tensor(gold), 4)
    assert metric_value(pred, gold, "accuracy") == pytest.approx(ref["accuracy"], abs=1e-6)
    assert metric_value(pred, gold, "macro_f1", n_classes=4) == pytest.approx(ref["macro_f1"], abs=1e-6)
    g = np.round(rng.random(80) * 5, 1)               # ties on purpose (spearman's mean ranks)
    s = np.round(g + rng.normal(0, 1.5, 80), 1)
    ref = compute(["pearson", "spearman"], torch.as_tensor(s), torch.as_tensor(g), 1)
    assert metric_value(s, g, "pearson") == pytest.approx(ref["pearson"], abs=1e-5)
    assert metric_value(s, g, "spearman") == pytest.approx(ref["spearman"], abs=1e-5)
    assert math.isnan(metric_value([1.0, 1.0, 1.0], [0.0, 1.0, 2.0], "pearson"))


def test_a_clear_gain_helps_and_the_mean_is_the_seed_mean() -> None:
    rng = np.random.default_rng(0)
    w, wo = _pairs(rng, [0.85, 0.85, 0.85], [0.65, 0.65, 0.65])
    s = gain_stats(w, wo, "accuracy")
    per_seed = [np.mean(np.equal(a["en"]["pred"], a["en"]["gold"]))
                - np.mean(np.equal(b["en"]["pred"], b["en"]["gold"])) for a, b in zip(w, wo)]
    assert s.mean == pytest.approx(np.mean(per_seed))
    assert s.ci_low < s.mean < s.ci_high and s.ci_low > 0
    assert s.p < 0.01 and s.verdict == HELPS and s.test == BOOTSTRAP_TEST
    assert (s.n_seeds, s.n_examples) == (3, 300)
    flipped = gain_stats(wo, w, "accuracy")
    assert flipped.verdict == HURTS and flipped.mean == pytest.approx(-s.mean)
    assert gain_stats(w, wo, "accuracy") == s                       # seeded: reproducible


def test_seed_to_seed_variance_widens_the_interval() -> None:
    """Each seed alone is decisive (gains of about +-0.2 on 300 examples), but the seeds
    disagree: a test over examples only would call it; the hierarchical one must not."""
    rng = np.random.default_rng(1)
    w, wo = _pairs(rng, [0.9, 0.6, 0.9], [0.7, 0.8, 0.7])
    for k in range(3):
        alone = gain_stats([w[k]], [wo[k]], "accuracy")
        assert alone.ci_low > 0 or alone.ci_high < 0                 # examples only: decisive
        assert math.isnan(alone.p) and alone.verdict == UNDECIDED    # one seed: no test
    s = gain_stats(w, wo, "accuracy")
    assert s.ci_low < 0 < s.ci_high and s.verdict == UNDECIDED and s.p > 0.05


def test_one_seed_interval_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(2)
    w, wo = _pairs(rng, [0.75], [0.70], n=400)
    d = (np.equal(w[0]["en"]["pred"], w[0]["en"]["gold"]).astype(float)
         - np.equal(wo[0]["en"]["pred"], wo[0]["en"]["gold"]).astype(float))
    half = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    s = gain_stats(w, wo, "accuracy", resamples=4000)
    assert (s.ci_high - s.ci_low) / 2 == pytest.approx(half, rel=0.12)


def test_no_effect_is_rarely_called_significant() -> None:
    """Under the null (same accuracy with and without), the level is about alpha or below."""
    rng = np.random.default_rng(4)
    calls = 0
    runs = 120
    for _ in range(runs):
        w, wo = _pairs(rng, [0.7] * 3, [0.7] * 3, n=150)
        calls += gain_stats(w, wo, "accuracy", resamples=1000, rng=rng).verdict != UNDECIDED
    assert calls / runs <= 0.12


def test_languages_average_like_the_main_metric_and_pearson_works() -> None:
    rng = np.random.default_rng(5)
    w, wo = [], []
    for _ in range(3):
        sw, swo = {}, {}
        for lang, noise in (("de", 0.5), ("fr", 1.0)):
            g = rng.random(200) * 5
            sw[lang] = {"pred": (g + rng.normal(0, noise, 200)).tolist(), "gold": g.tolist()}
            swo[lang] = {"pred": (g + rng.normal(0, 3.0, 200)).tolist(), "gold": g.tolist()}
        w.append(sw)
        wo.append(swo)
    s = gain_stats(w, wo, "pearson")
    expect = np.mean([np.mean([np.corrcoef(a[lang]["pred"], a[lang]["gold"])[0, 1]
                               - np.corrcoef(b[lang]["pred"], b[lang]["gold"])[0, 1]
                               for lang in ("de", "fr")]) for a, b in zip(w, wo)])
    assert s.mean == pytest.approx(expect)
    assert s.verdict == HELPS and s.n_examples == 400
    only_de = gain_stats(w, wo, "pearson", languages=["de"])
    assert only_de.n_examples == 200 and only_de.mean != pytest.approx(s.mean)


def test_identical_predictions_and_bad_input() -> None:
    rng = np.random.default_rng(6)
    w, _ = _pairs(rng, [0.7] * 3, [0.7] * 3)
    same = gain_stats(w, w, "accuracy")
    assert same.mean == 0 and math.isnan(same.p) and same.verdict == UNDECIDED and same.note
    w2, wo2 = _pairs(rng, [0.7] * 2, [0.7] * 2)
    with pytest.raises(ValueError, match="test rows differ"):
        gain_stats(w2, [wo2[1], wo2[0]], "accuracy")                # seeds crossed over
    with pytest.raises(ValueError, match="pair up"):
        gain_stats(w2, wo2[:1], "accuracy")
    with pytest.raises(ValueError, match="unknown metric"):
        gain_stats(w2, wo2, "bleu")
    with pytest.raises(ValueError, match="no test language"):
        gain_stats([{"en": w2[0]["en"]}], [{"de": wo2[0]["en"]}], "accuracy")
    assert gain_stats([], [], "accuracy").verdict == UNDECIDED


def test_seed_only_stats_and_adjusted_verdicts() -> None:
    from scipy import stats as sps

    w, wo = [0.74, 0.77, 0.80], [0.70, 0.72, 0.74]
    s = seed_gain_stats(w, wo)
    assert s.p == pytest.approx(sps.ttest_rel(w, wo).pvalue)
    assert s.ci_low < s.mean < s.ci_high and s.verdict == HELPS and s.n_seeds == 3
    assert seed_gain_stats([0.8], [0.7]).verdict == UNDECIDED
    # Corrected over a family of 5, p = 0.013 no longer passes 0.05.
    family = adjust([s] + [seed_gain_stats([0.7, 0.8, 0.6], [0.7, 0.6, 0.8])] * 4, "holm")
    assert family[0].p_adjusted == pytest.approx(min(1.0, 5 * s.p))
    assert family[0].verdict == UNDECIDED and family[0].p == s.p



def test_seed_test_treats_rounding_noise_as_no_spread():
    import math

    from itt.reporting.stats import UNDECIDED, seed_gain_stats

    # the same gain in every seed, up to float rounding: nothing to test, not p ~ 1e-30
    got = seed_gain_stats([0.7 + 1e-16, 0.7, 0.7 - 1e-16], [0.6, 0.6, 0.6])
    assert got.verdict == UNDECIDED and math.isnan(got.p)
    real = seed_gain_stats([0.71, 0.69, 0.72], [0.6, 0.61, 0.59])
    assert real.p < 0.05
