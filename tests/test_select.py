"""Which intermediate task? LogME against a brute-force evidence maximum, the ranking
measures by hand, SEmb and the probe on data with a known answer, ``python -m itt.select``
end to end on tiny models (stage-1 cache reuse included), the sweeper's top-k selection and
plan.json, and the report's selection section on a hand-made grid."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from itt.errors import ConfigError, DataError
from itt.selection.logme import fit_evidence, logme
from itt.selection.probe import probe_predictions
from itt.selection.ranking import ndcg_at_k, ranks, regret_at_k, spearman
from itt.selection.semb import semb

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- LogME
def _direct_log_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y; 0, F F^T / alpha + I / beta), computed on the n x n covariance directly."""
    n = len(y)
    cov = f @ f.T / alpha + np.eye(n) / beta
    sign, logdet = np.linalg.slogdet(cov)
    assert sign > 0
    return float(-n / 2 * math.log(2 * math.pi) - logdet / 2 - y @ np.linalg.solve(cov, y) / 2)


def _grid_maximum(f: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """max over (log alpha, log beta) of the direct evidence: a coarse grid, then two finer
    grids around the best point. Returns (value, log alpha, log beta)."""
    best = (-math.inf, 0.0, 0.0)
    centre, half, step = (0.0, 0.0), 10.0, 0.25
    for _ in range(3):
        la_grid = np.arange(centre[0] - half, centre[0] + half + 1e-9, step)
        lb_grid = np.arange(centre[1] - half, centre[1] + half + 1e-9, step)
        for la in la_grid:
            for lb in lb_grid:
                v = _direct_log_evidence(f, y, math.exp(la), math.exp(lb))
                if v > best[0]:
                    best = (v, float(la), float(lb))
        centre, half, step = (best[1], best[2]), 2 * step, step / 10
    return best


@pytest.mark.parametrize("n,d,noise", [(60, 6, 0.5), (25, 40, 0.3), (80, 12, 2.0)])
def test_logme_fixed_point_is_the_brute_force_maximum_of_the_evidence(n, d, noise):
    rng = np.random.default_rng(n + d)
    f = rng.normal(size=(n, d))
    y = f @ rng.normal(size=d) / math.sqrt(d) + noise * rng.normal(size=n)
    ev = fit_evidence(f, y)
    # the spectral formula is the evidence itself
    assert ev.log_evidence == pytest.approx(_direct_log_evidence(f, y, ev.alpha, ev.beta), rel=1e-8)
    value, la, lb = _grid_maximum(f, y)
    assert ev.log_evidence >= value - 1e-9, "the fixed point is no worse than any grid point"
    assert ev.log_evidence - value < 1e-4
    if n > d:  # with n <= d the data can be fit exactly and the evidence flattens as beta grows
        assert math.log(ev.alpha) == pytest.approx(la, abs=0.01)
        assert math.log(ev.beta) == pytest.approx(lb, abs=0.01)


def test_logme_classification_averages_the_one_hot_columns_divided_by_n():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=50)
    f = rng.normal(size=(50, 5)) + np.eye(3)[labels] @ rng.normal(size=(3, 5))
    per_class = [fit_evidence(f, (labels == c).astype(float)).log_evidence / 50 for c in range(3)]
    assert logme(f, labels, num_classes=3) == pytest.approx(float(np.mean(per_class)), abs=1e-12)
    # regression: each target dimension on its own, averaged
    y2 = rng.normal(size=(50, 2))
    per_dim = [fit_evidence(f, y2[:, j]).log_evidence / 50 for j in range(2)]
    assert logme(f, y2) == pytest.approx(float(np.mean(per_dim)), abs=1e-12)
    assert logme(f, y2[:, 0]) == pytest.approx(per_dim[0], abs=1e-12)


def test_logme_prefers_features_that_carry_the_labels():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=200)
    informative = rng.normal(size=(200, 16)) + 2.0 * labels[:, None] * rng.normal(size=16)
    noise = rng.normal(size=(200, 16))
    assert logme(informative, labels, 2) > logme(noise, labels, 2) + 0.1


def test_logme_rejects_bad_labels_and_features():
    f = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(DataError, match=r"integers in \[0, 2\)"):
        logme(f, np.array([0, 1, 2] + [0] * 7), 2)
    with pytest.raises(DataError, match="10 feature rows but 9 labels"):
        logme(f, np.zeros(9, dtype=int), 2)
    with pytest.raises(DataError, match="NaN"):
        logme(np.full((10, 3), np.nan), np.zeros(10, dtype=int), 2)


# ----------------------------------------------------------------------------- rankings
def test_ranking_measures_by_hand():
    scores = {"a": 0.9, "b": 0.5, "c": 0.1, "d": None}
    gains = {"a": 0.02, "b": 0.10, "c": -0.05, "d": 0.04}
    assert ranks(scores) == {"a": 1, "b": 2, "c": 3, "d": None}
    # rho over a, b, c: score ranks 1,2,3 against gain ranks 2,1,3 -> 1 - 6*2/(3*8) = 0.5
    assert spearman(scores, gains) == pytest.approx(0.5)
    # regret@1: best gain 0.10 (b) - gain of the pick (a) 0.02; @2 the top two include b
    assert regret_at_k(scores, gains, 1) == pytest.approx(0.08)
    assert regret_at_k(scores, gains, 2) == pytest.approx(0.0)
    rel = {"a": 0.7, "b": 0.8, "c": 0.65, "d": 0.74}
    # predicted order a, b, c, then unscored d; ideal b, d, a, c
    dcg = 0.7 + 0.8 / math.log2(3)
    idcg = 0.8 + 0.74 / math.log2(3)
    assert ndcg_at_k(scores, rel, 2) == pytest.approx(dcg / idcg)
    assert ndcg_at_k({"a": 1, "b": 2}, {"a": 0.5, "b": 0.9}, 2) == pytest.approx(1.0)
    assert math.isnan(spearman({"a": 1, "b": 2}, {"a": 0, "b": 1})), "fewer than three candidates"


def test_semb_is_the_cosine_of_the_mean_embeddings():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 8)) + 5.0
    assert semb(x, x[::-1]) == pytest.approx(1.0)
    a = np.array([[1.0, 0.0], [3.0, 0.0]])
    b = np.array([[0.0, 2.0], [0.0, 4.0]])
    assert semb(a, b) == pytest.approx(0.0, abs=1e-12)
    assert semb(a, np.array([[1.0, 1.0]])) == pytest.approx(math.sqrt(0.5))


def test_linear_probe_separates_separable_data_and_fits_a_line():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, size=120)
    x = np.eye(3)[y] * 4 + rng.normal(scale=0.3, size=(120, 3))
    preds = probe_predictions(x[:90], y[:90], x[90:], 3)
    assert preds == y[90:].tolist()
    t = rng.normal(size=(80, 4))
    target = t @ np.array([1.0, -2.0, 0.5, 0.0]) + 3.0
    fitted = probe_predictions(t[:60], target[:60], t[60:], None)
    assert np.corrcoef(fitted, target[60:])[0, 1] > 0.99


# ----------------------------------------------------------------------------- itt.select
def _select(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ITT_OUTPUT_DIR=str(tmp))
    cmd = [sys.executable, "-m", "itt.select", "experiment=smoke", "model=tiny_bert", "target=smoke_products",
           "candidates=smoke_movies,smoke_pairs", "trainer.enable_progress_bar=false",
           "stage1.max_train_examples=160", "stage1.epochs=1", "stage2.max_train_examples=96", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_select_scores_candidates_and_reuses_the_stage1_cache(tmp_path):
    # no seed= on the command line: every seed of the grid (experiment=smoke sweeps 0,1), each
    # with its own stage-1 models
    first = _select(tmp_path, "select.train_stage1=true")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    path = tmp_path / "multirun" / "smoke" / "selection.json"
    data = json.loads(path.read_text())
    assert data["settings"]["seeds"] == [0, 1]
    entry, entry_seed1 = data["entries"]
    assert (entry["seed"], entry_seed1["seed"]) == (0, 1)
    s1_seed0, s1_seed1 = entry["methods"]["logme"]["stage1"], entry_seed1["methods"]["logme"]["stage1"]
    assert sorted(entry_seed1["methods"]["logme"]["stage1_trained_now"]) == ["smoke_movies", "smoke_pairs"]
    assert all(s1_seed0[c]["key"] != s1_seed1[c]["key"] for c in s1_seed0)
    assert (entry["model"], entry["target"], entry["candidates"]) == ("tiny_bert", "smoke_products",
                                                                       ["smoke_movies", "smoke_pairs"])
    m = entry["methods"]
    assert set(m) == {"semb", "logme", "probe", "zero_shot"}
    for name in ("semb", "logme", "probe"):
        scores = m[name]["scores"]
        assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values()), (name, scores)
        assert sorted(m[name]["ranks"].values()) == [1, 2]
        assert m[name]["cost_s"] > 0
    assert not m["semb"]["needs_stage1"] and m["logme"]["needs_stage1"]
    assert sorted(m["logme"]["stage1_trained_now"]) == ["smoke_movies", "smoke_pairs"]
    assert m["logme"]["stage1_train_s"] > 0
    assert isinstance(m["logme"]["reference"], float)
    # the pair task's head does not fit a single-text sentiment target: no zero-shot score
    assert m["zero_shot"]["scores"]["smoke_pairs"] is None and "smoke_pairs" in m["zero_shot"]["skipped"]
    assert 0.0 <= m["zero_shot"]["scores"]["smoke_movies"] <= 1.0
    assert "| smoke_movies |" in first.stdout and "selection.json" in first.stdout

    # the stage-1 models are now in the cache: found without training, same scores
    again = _select(tmp_path, "select.methods=[logme,semb]", "seed=0")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    entry2, kept = json.loads(path.read_text())["entries"]   # seed 0 replaced, seed 1 kept
    assert (entry2["seed"], kept) == (0, entry_seed1)
    assert entry2["methods"]["logme"]["stage1_trained_now"] == []
    assert entry2["methods"]["logme"]["scores"] == pytest.approx(m["logme"]["scores"], abs=1e-6)
    assert entry2["methods"]["semb"]["scores"] == pytest.approx(m["semb"]["scores"], abs=1e-6)

    # without train_stage1, a candidate whose stage-1 model is not cached is left unscored
    third = _select(tmp_path, "select.methods=[logme]", "stage1.lr=3e-4", "seed=0")
    assert third.returncode == 0, third.stderr[-3000:]
    entry3, _ = json.loads(path.read_text())["entries"]
    assert set(entry3["methods"]["logme"]["skipped"]) == {"smoke_movies", "smoke_pairs"}
    assert "select.train_stage1=true" in entry3["methods"]["logme"]["skipped"]["smoke_movies"]


def test_select_bad_input_exits_2_with_one_line(tmp_path):
    bad = _select(tmp_path, "candidates=smoke_products,smoke_movies")
    assert bad.returncode == 2
    assert "candidates include the target 'smoke_products'" in bad.stderr
    bad = _select(tmp_path, "candidates=smoke_movis,smoke_pairs")
    assert bad.returncode == 2 and "no task card 'smoke_movis' (did you mean 'smoke_movies'?)" in bad.stderr
    bad = _select(tmp_path, "select.methods=[logme,taskemb]")
    assert bad.returncode == 2 and "select.methods: unknown ['taskemb']" in bad.stderr


# ----------------------------------------------------------------------------- sweeper + report
def _entry(model: str, target: str, scores: dict[str, dict[str, float | None]]) -> dict:
    methods = {}
    for m, sc in scores.items():
        methods[m] = {"scores": sc, "ranks": ranks(sc), "skipped": {}, "needs_stage1": m != "semb",
                      "stage1": {}, "cost_s": 2.0}
    return {"model": model, "target": target, "seed": 0, "candidates": list(next(iter(scores.values()))),
            "methods": methods}


def test_sweeper_keeps_the_top_k_and_plan_records_what_it_left_out(tmp_path):
    from itt.plan import read_plan, write_plan
    from itt.selection.records import write_selection
    from itt.selection.sweep import apply_selection

    write_selection(tmp_path / "selection.json", "sel", [
        _entry("m", "t", {"semb": {"a": 0.9, "b": 0.2, "c": 0.5}})], {}, 1.0)
    cells = [{"model": "m", "intermediate": i, "target": "t", "seed": 0, "dir": f"m/{i}__t/seed0",
              "overrides": [f"intermediate={i}"]} for i in ("none", "a", "b", "c")]
    jobs = [c["overrides"] for c in cells]

    def never(job):  # every score is in selection.json: nothing is composed or computed
        raise AssertionError("composed a job")

    kept_jobs, kept, fields = apply_selection(jobs, cells, "semb", 2, never, tmp_path)
    assert [c["intermediate"] for c in kept] == ["none", "a", "c"]
    assert kept_jobs == [["intermediate=none"], ["intermediate=a"], ["intermediate=c"]]
    (left,) = fields["selection"]["left_out"]
    assert left["intermediate"] == "b" and "semb rank 3 of 3" in left["reason"] and "top_k=2" in left["reason"]
    write_plan(tmp_path, "sel", kept, **fields)
    plan = read_plan(tmp_path)
    assert len(plan["cells"]) == 3 and plan["selection"]["left_out"][0]["intermediate"] == "b"
    # a method that scored no candidate of a target cannot choose: all of them run
    write_selection(tmp_path / "selection.json", "sel", [
        _entry("m", "u", {"zero_shot": {"a": None, "b": None}})], {}, 1.0)
    u_cells = [dict(c, target="u") for c in cells[:3]]
    _, kept_u, fields_u = apply_selection([c["overrides"] for c in u_cells], u_cells, "zero_shot", 1, never,
                                          tmp_path)
    assert len(kept_u) == 3 and fields_u["selection"]["left_out"] == []
    with pytest.raises(ConfigError, match="hydra.sweeper.select must be one of"):
        apply_selection(jobs, cells, "taskemb", 2, never, tmp_path)
    with pytest.raises(ConfigError, match="top_k must be a positive integer"):
        apply_selection(jobs, cells, "semb", 0, never, tmp_path)


def _result(root: Path, model: str, inter: str, target: str, value: float, stage2_s: float,
            stage1_s: float | None) -> None:
    d = root / model / f"{inter}__{target}" / "seed0"
    d.mkdir(parents=True)
    stage1 = None if inter == "none" else {"key": f"{model}-{inter}", "reused": False, "wall_time_s": stage1_s}
    (d / "result.json").write_text(json.dumps({
        "schema": "itt.result/1", "status": "ok", "experiment": "sel",
        "cell": {"model": model, "intermediate": inter, "target": target, "seed": 0},
        "model": {"name": model, "pretraining": "text"},
        "intermediate": None if inter == "none" else {"name": inter, "field": "x", "domain": "d"},
        "target": {"name": target, "field": "x", "setting": "domain", "domain": "d", "main_metric": "accuracy"},
        "metrics": {"main": value, "per_language": {"en": {"accuracy": value}}, "average": {"accuracy": value}},
        "baselines": {}, "stage1": stage1,
        "wall_time_s": {"stage1": stage1_s or 0.0, "stage2": stage2_s, "eval": 0.0, "total": stage2_s},
        "finished_at": "2026-12-01T00:00:00+00:00"}))


def test_report_scores_the_rankings_against_the_grid(tmp_path):
    from itt.report import build_report
    from itt.selection.records import write_selection

    sweep = tmp_path / "multirun" / "sel"
    # target t: gains a +0.10, b -0.05, c +0.02 ; target u: gains a 0.00, b +0.04, c +0.01
    for target, base, vals in (("t", 0.60, {"a": 0.70, "b": 0.55, "c": 0.62}),
                               ("u", 0.50, {"a": 0.50, "b": 0.54, "c": 0.51})):
        _result(sweep, "m", "none", target, base, 10.0, None)
        for inter, v in vals.items():
            _result(sweep, "m", inter, target, v, 10.0, 100.0)
    write_selection(sweep / "selection.json", "sel", [
        _entry("m", "t", {"semb": {"a": 0.9, "b": 0.1, "c": 0.5}, "logme": {"a": -1.0, "b": 0.0, "c": -0.5}}),
        _entry("m", "u", {"semb": {"a": 0.9, "b": 0.1, "c": 0.5}, "logme": {"a": -1.0, "b": 0.0, "c": -0.5}}),
    ], {}, 1.0)
    (sweep / "plan.json").write_text(json.dumps({
        "schema": "itt.plan/1", "experiment": "sel",
        "cells": [{"model": "m", "intermediate": "d", "target": "t", "seed": 0}],
        "selection": {"method": "semb", "top_k": 1, "left_out": [
            {"model": "m", "intermediate": "d", "target": "t", "seed": 0, "reason": "semb rank 4 of 4"}]}}))
    report = build_report([tmp_path / "multirun"], tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Which intermediate task? Selection against the grid" in md
    assert not report.missing, "a cell left out by selection is not missing"
    assert "model=m intermediate=d target=t seed=0: semb rank 4 of 4" in md
    rows = {(r["method"], r["target"]): r for r in
            __import__("csv").DictReader(open(tmp_path / "report" / "selection.csv"))}
    # semb orders a, c, b: on t that is the gain order (rho 1, regret 0); on u gains b > c > a (rho -1)
    assert float(rows[("semb", "t")]["spearman"]) == pytest.approx(1.0)
    assert float(rows[("semb", "t")]["regret@1"]) == pytest.approx(0.0)
    assert float(rows[("semb", "u")]["spearman"]) == pytest.approx(-1.0)
    assert float(rows[("semb", "u")]["regret@1"]) == pytest.approx(0.04)
    assert float(rows[("logme", "t")]["regret@1"]) == pytest.approx(0.15)
    # random pick: expected regret@1 = best gain - mean gain
    assert float(rows[("random pick", "t")]["regret@1"]) == pytest.approx(0.10 - (0.10 - 0.05 + 0.02) / 3)
    assert "| semb | 2 | +0.000 ± 1.414 |" in md
    # grid time: 6 ITT cells x 10 s + 2 baselines x 10 s + 3 stage-1 models (one per candidate) x 100 s
    # = 380 s. semb's top-1 keeps a on t and on u: 2 baselines + 2 cells + 1 stage-1 model + 4 s of
    # its cost = 144 s (62% saved); its top-2 (a, c) 264 s. logme reads every stage-1 model: top-1
    # (b on t and u) 344 s (9% saved), top-2 364 s.
    assert "| 62% | 264 / 380 |" in md
    assert "| 9% | 364 / 380 |" in md
    assert (tmp_path / "report" / "figures" / "selection_scores_vs_gain.png").exists()
    assert "Selection against the grid" in (tmp_path / "report" / "report.tex").read_text()
