"""The report's cross-lingual section (itt/reporting/xling.py): per-language scores, the
average over the other languages, the transfer gap, and same- against other-domain
intermediate tasks with the statistics of itt.reporting.stats."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from itt.reporting import xling
from itt.reporting.load import scan
from itt.reporting.stats import BOOTSTRAP_TEST, SEED_TEST, gain_stats
from itt.reporting.tables import load_examples

N = 60                      # test examples per language
LANGS = ("en", "de", "fr")
TARGET = {"name": "xl_en", "field": "sentiment", "domain": "movie_reviews",
          "type": "single_text_classification", "setting": "cross_lingual", "benchmark": None,
          "main_metric": "accuracy", "train_language": "en", "eval_languages": list(LANGS)}
INTERMEDIATES = {
    "movies": {"field": "sentiment", "domain": "movie_reviews"},      # same domain
    "tweets": {"field": "sentiment", "domain": "social_media"},       # other domain, same field
    "sts": {"field": "similarity", "domain": "mixed_genres"},         # other domain and field
}
# intermediate -> language -> correct examples (of N) for seed 0; seed k adds k.
CORRECT = {
    "none":   {"en": 48, "de": 30, "fr": 28},
    "movies": {"en": 48, "de": 45, "fr": 43},    # zero-shot +0.25, English unchanged
    "tweets": {"en": 48, "de": 30, "fr": 28},    # no change anywhere
    "sts":    {"en": 42, "de": 30, "fr": 28},    # English -0.10
}


def _examples(inter: str, seed: int) -> dict[str, dict[str, list[int]]]:
    """Gold alternates 0/1; the first ``c`` predictions are right, the rest wrong, so an
    intermediate with a larger ``c`` is right on a superset of the examples."""
    out = {}
    for lang in LANGS:
        c = CORRECT[inter][lang] + seed
        gold = [i % 2 for i in range(N)]
        out[lang] = {"pred": [g if i < c else 1 - g for i, g in enumerate(gold)], "gold": gold}
    return out


def _write_cell(root: Path, model: str, inter: str, seed: int, examples: bool = True,
                target: dict[str, Any] | None = None) -> Path:
    target = target or TARGET
    ex = _examples(inter, seed)
    per_language = {lang: {"accuracy": sum(p == g for p, g in zip(b["pred"], b["gold"])) / N, "n": N}
                    for lang, b in ex.items() if lang in target["eval_languages"]}
    main = float(np.mean([v["accuracy"] for v in per_language.values()]))
    cell = root / model / f"{inter}__{target['name']}" / f"seed{seed}"
    cell.mkdir(parents=True, exist_ok=True)
    key = f"{model}-{inter}-{target['name']}-{seed}"
    result = {
        "schema": "itt.result/1", "status": "ok", "experiment": "xl",
        "cell": {"model": model, "intermediate": inter, "target": target["name"], "seed": seed},
        "model": {"name": model, "pretraining": "text"},
        "intermediate": None if inter == "none" else {"name": inter, **INTERMEDIATES[inter]},
        "target": target,
        "metrics": {"main": main, "per_language": per_language, "average": {"accuracy": main}},
        "baselines": {}, "config_hash": key, "finished_at": f"2026-12-01T00:0{seed}:00",
    }
    (cell / "result.json").write_text(json.dumps(result), encoding="utf-8")
    if examples:
        (cell / "examples.json").write_text(json.dumps(
            {"schema": "itt.examples/1", "config_hash": key, "main_metric": "accuracy",
             "target": {k: v for k, v in ex.items() if k in target["eval_languages"]},
             "zero_shot": {}}), encoding="utf-8")
    return cell


def _grid(root: Path, examples: bool = True) -> pd.DataFrame:
    for inter in CORRECT:
        for seed in range(3):
            _write_cell(root, "m", inter, seed, examples)
    load_examples.cache_clear()
    return scan([root]).results


def _acc(inter: str, lang: str, seed: int) -> float:
    return (CORRECT[inter][lang] + seed) / N


# --------------------------------------------------------------------------- which cells


def test_source_language_and_zero_shot_cells(tmp_path: Path) -> None:
    assert xling.source_language("en") == "en"
    assert xling.source_language(["en"]) == "en"
    assert xling.source_language(["nl", "fr"]) is None      # trained in several languages
    assert xling.source_language(None) is None
    df = _grid(tmp_path)
    own = dict(TARGET, name="own_lang", train_language=["de", "fr"], eval_languages=["de", "fr"])
    en_only = dict(TARGET, name="en_only", eval_languages=["en"])
    _write_cell(tmp_path, "m", "none", 0, target=own)
    _write_cell(tmp_path, "m", "none", 0, target=en_only)
    df = scan([tmp_path]).results
    cells = xling.zero_shot_cells(df)
    assert set(cells["target"]) == {"xl_en"} and len(cells) == 12
    assert set(cells["source_language"]) == {"en"}


def test_relation_of_intermediate_and_target() -> None:
    assert xling.relation("movie_reviews", "movie_reviews", "sentiment", "sentiment") == xling.SAME
    assert xling.relation("news", "news", "topics", "sentiment") == xling.SAME_OTHER_FIELD
    assert xling.relation("tweets", "movie_reviews", "sentiment", "sentiment") == xling.OTHER_SAME_FIELD
    assert xling.relation("sts", "movie_reviews", "similarity", "sentiment") == xling.OTHER
    assert xling.relation(None, "movie_reviews", "sentiment", "sentiment") == ""


# --------------------------------------------------------------------------- transfer


def test_transfer_table_average_and_gap_per_seed(tmp_path: Path) -> None:
    table = xling.transfer_table(_grid(tmp_path))
    assert list(table["intermediate"]) == ["none", "movies", "tweets", "sts"]   # none, then by relation
    row = table[table["intermediate"] == "movies"].iloc[0]
    src = [_acc("movies", "en", s) for s in range(3)]
    other = [(_acc("movies", "de", s) + _acc("movies", "fr", s)) / 2 for s in range(3)]
    gap = [a - b for a, b in zip(src, other)]
    assert row["source_language"] == "en" and row["languages"] == "de,fr" and row["n_seeds"] == 3
    assert row["source_mean"] == pytest.approx(np.mean(src))
    assert row["other_mean"] == pytest.approx(np.mean(other))
    assert row["other_std"] == pytest.approx(np.std(other, ddof=1))
    assert row["gap_mean"] == pytest.approx(np.mean(gap))
    assert row["gap_mean"] == pytest.approx(row["source_mean"] - row["other_mean"])
    assert row["per_language"]["de"] == pytest.approx(np.mean([_acc("movies", "de", s) for s in range(3)]))
    assert row["relation"] == xling.SAME
    none = table[table["intermediate"] == "none"].iloc[0]
    assert none["gap_mean"] == pytest.approx(48 / 60 - 29 / 60)     # (30 + 28) / 2 = 29 of 60

    view = xling.transfer_view(table, "xl_en")
    assert list(view.columns[:3]) == ["en", "de", "fr"]
    assert view.loc[("m", "no ITT"), "gap (en − avg)"].startswith("+0.317 ± ")
    assert ("m", "movies (same domain)") in view.index


# --------------------------------------------------------------------------- gains


def test_domain_gains_use_the_bootstrap_over_seeds_and_examples(tmp_path: Path) -> None:
    gains = xling.domain_gain_table(_grid(tmp_path), resamples=1000)
    assert set(gains["test"]) == {BOOTSTRAP_TEST}
    assert len(gains) == 3 * 2                                        # 3 intermediates x 2 scopes
    g = gains.set_index(["intermediate", "scope"])
    zs = g.loc[("movies", xling.ZERO_SHOT)]
    assert zs["languages"] == "de,fr"
    assert zs["gain"] == pytest.approx(15 / 60)                        # de and fr both +15 of 60
    assert zs["ci_low"] <= zs["gain"] <= zs["ci_high"] and zs["ci_low"] > 0
    assert zs["verdict"] == "helps" and zs["p_adjusted"] >= zs["p_value"]
    assert g.loc[("movies", "en"), "gain"] == pytest.approx(0.0)
    assert g.loc[("movies", "en"), "verdict"] == "undecided"          # no difference at all
    assert g.loc[("tweets", xling.ZERO_SHOT), "verdict"] == "undecided"
    assert g.loc[("sts", "en"), "gain"] == pytest.approx(-6 / 60)
    assert g.loc[("sts", "en"), "relation"] == xling.OTHER
    # the numbers are gain_stats' own (no second bootstrap here)
    direct = gain_stats([_examples("movies", s) for s in range(3)],
                        [_examples("none", s) for s in range(3)], "accuracy",
                        languages=["de", "fr"], resamples=1000)
    assert (zs["ci_low"], zs["ci_high"], zs["p_value"]) == pytest.approx(
        (direct.ci_low, direct.ci_high, direct.p))

    summary = xling.domain_summary(gains).set_index(["scope", "relation"])
    assert summary.loc[(xling.ZERO_SHOT, xling.SAME), "helps"] == 1
    assert summary.loc[(xling.ZERO_SHOT, xling.OTHER_SAME_FIELD), "undecided"] == 1
    assert summary.loc[("en", xling.OTHER), "mean_gain"] == pytest.approx(-0.1)


def test_without_examples_the_gain_is_tested_over_seeds(tmp_path: Path) -> None:
    from scipy import stats as sps

    _grid(tmp_path, examples=False)
    # seed k: with (42 + k) / 60, without (48 + k) / 60; seed 2 of "sts" made worse in English
    path = tmp_path / "m" / "sts__xl_en" / "seed2" / "result.json"
    doc = json.loads(path.read_text())
    doc["metrics"]["per_language"]["en"]["accuracy"] = 0.5
    path.write_text(json.dumps(doc))
    row = xling.domain_gain_table(scan([tmp_path]).results, correction="none") \
        .set_index(["intermediate", "scope"]).loc[("sts", "en")]
    w = [42 / 60, 43 / 60, 0.5]
    wo = [48 / 60, 49 / 60, 50 / 60]
    assert row["test"] == SEED_TEST
    assert row["gain"] == pytest.approx(np.mean(np.subtract(w, wo)))
    assert row["p_value"] == pytest.approx(sps.ttest_rel(w, wo).pvalue)
    assert row["verdict"] == "undecided"                       # t-test, 2 degrees of freedom
    assert math.isnan(row["ci_low"]) is False and row["ci_low"] < row["gain"] < row["ci_high"]


def test_same_against_other_domain(tmp_path: Path) -> None:
    df = _grid(tmp_path)
    versus = xling.same_vs_other_table(df, resamples=1000)
    assert len(versus) == 2 * 2                       # movies vs (tweets, sts) x 2 scopes
    v = versus.set_index(["other", "scope"])
    zs = v.loc[("tweets", xling.ZERO_SHOT)]
    assert zs["same"] == "movies" and zs["other_relation"] == xling.OTHER_SAME_FIELD
    assert zs["difference"] == pytest.approx(zs["same_gain"] - zs["other_gain"]) == pytest.approx(0.25)
    assert zs["verdict"] == xling.SAME_BETTER
    en = v.loc[("sts", "en")]
    assert en["difference"] == pytest.approx(0.1) and en["verdict"] == xling.SAME_BETTER
    assert v.loc[("tweets", "en"), "verdict"] == "undecided"
    # Holm over the table: the adjusted p is never below the raw one
    tested = versus.dropna(subset=["p_value"])
    assert (tested["p_adjusted"] >= tested["p_value"] - 1e-12).all()


def test_mismatched_test_rows_fall_back_to_seeds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    df = _grid(tmp_path)
    path = tmp_path / "m" / "movies__xl_en" / "seed1" / "examples.json"
    doc = json.loads(path.read_text())
    doc["target"]["de"]["gold"] = [1 - g for g in doc["target"]["de"]["gold"]]
    path.write_text(json.dumps(doc))
    load_examples.cache_clear()
    with caplog.at_level("WARNING"):
        gains = xling.domain_gain_table(df, resamples=1000)
    row = gains.set_index(["intermediate", "scope"]).loc[("movies", xling.ZERO_SHOT)]
    assert row["test"] == SEED_TEST and "gold labels differ" in caplog.text


# --------------------------------------------------------------------------- report


def test_report_has_the_section_and_its_csv(tmp_path: Path) -> None:
    from itt.report import build_report

    _grid(tmp_path / "runs")
    report = build_report([tmp_path / "runs"], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "## Cross-lingual transfer and intermediate-task domain" in md
    assert "### xl_en: per language, average and transfer gap" in md
    assert "same domain better" in md
    transfer = pd.read_csv(report.paths["xling_transfer_csv"])
    assert {"score_en", "score_de", "score_fr", "gap_mean"} <= set(transfer.columns)
    assert len(pd.read_csv(report.paths["xling_gains_csv"])) == 6
    assert "Cross-lingual transfer: xl\\_en" in (tmp_path / "out" / "report.tex").read_text()


def test_report_without_zero_shot_cells_has_no_section(tmp_path: Path) -> None:
    from itt.report import build_report

    own = dict(TARGET, name="own_lang", train_language=["de", "fr"], eval_languages=["de", "fr"])
    for inter in ("none", "movies"):
        _write_cell(tmp_path / "runs", "m", inter, 0, target=own)
    build_report([tmp_path / "runs"], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "Cross-lingual transfer and intermediate-task domain" not in md


# --------------------------------------------------------------------------- the experiment


def test_xling_domain_mini_grid_asks_the_question() -> None:
    """Every target trains on English only and is tested in other languages too, and meets
    one same-domain intermediate task, at least two from other domains, and none; 3+ seeds."""
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf"
    exp = OmegaConf.load(conf / "experiment" / "xling_domain_mini.yaml")
    sweeper = exp.hydra.sweeper
    params = {k: [v.strip() for v in str(val).split(",")] for k, val in sweeper.params.items()}
    assert sweeper.pairing == "all"            # the intermediates of other fields are part of the design
    assert set(params["model"]) == {"minilm", "me5_small"} and len(params["seed"]) >= 3
    assert "none" in params["intermediate"]
    cards = {name: OmegaConf.load(conf / "task" / f"{name}.yaml")
             for name in params["intermediate"] + params["target"] if name != "none"}
    for target in params["target"]:
        card = cards[target]
        assert card.train_language == "en" and card.eval_languages[0] == "en"
        assert len(card.eval_languages) >= 2 and card.setting == "cross_lingual"
        domains = [cards[i].domain for i in params["intermediate"] if i != "none"]
        assert domains.count(card.domain) == 1, target
        assert len({d for d in domains if d != card.domain}) >= 2, target
