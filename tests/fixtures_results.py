"""Write a small, realistic tree of result.json / error.json / plan.json files for tests.

The numbers are chosen so that means, sample stds, paired gains and t-test p-values can
be worked out by hand (see ``EXPECTED``). Layout::

    <root>/multirun/2026-11-21/12-00-00/plan.json
    <root>/multirun/2026-11-21/12-00-00/<job>/result.json | error.json
    <root>/runs/xtreme/<model>-<intermediate>-<target>-s<seed>/result.json

Experiment "mini": models minilm (pretraining text) and codebert (code); targets
vader_amazon (sentiment, domain) and marc (sentiment, cross_lingual, en/de/fr);
intermediate none or vader_movie; seeds 0-2. One failed cell (codebert, vader_movie, marc,
seed 2) and one missing cell (minilm, none, marc, seed 2: planned, no file, and the
no-ITT counterpart of an existing ITT cell). XTREME-R cells: me5_small (multilingual) on
xnli (accuracy) and panx (f1), intermediate none or mnli, seeds 0-1; mnli's domain equals
xnli's and differs from panx's.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

EXPERIMENT = "mini"
SWEEP = Path("multirun/2026-11-21/12-00-00")

MODELS: dict[str, dict[str, Any]] = {
    "minilm": {"pretrained": "sentence-transformers/all-MiniLM-L6-v2", "architecture": "bert",
               "pretraining": "text"},
    "codebert": {"pretrained": "microsoft/codebert-base", "architecture": "roberta",
                 "pretraining": "code"},
    "me5_small": {"pretrained": "intfloat/multilingual-e5-small", "architecture": "bert",
                  "pretraining": "multilingual"},
}
INTERMEDIATES: dict[str, dict[str, Any]] = {
    "vader_movie": {"field": "sentiment", "domain": "movie_reviews",
                    "type": "single_text_classification"},
    "mnli": {"field": "nli", "domain": "mixed_genre", "type": "text_pair_classification"},
}
TARGETS: dict[str, dict[str, Any]] = {
    "vader_amazon": {"field": "sentiment", "domain": "product_reviews",
                     "type": "single_text_classification", "setting": "domain",
                     "benchmark": None, "main_metric": "accuracy", "train_language": "en",
                     "eval_languages": ["en"]},
    "marc": {"field": "sentiment", "domain": "product_reviews",
             "type": "single_text_classification", "setting": "cross_lingual",
             "benchmark": None, "main_metric": "accuracy", "train_language": "en",
             "eval_languages": ["en", "de", "fr"]},
    "xnli": {"field": "nli", "domain": "mixed_genre", "type": "text_pair_classification",
             "setting": "xtreme", "benchmark": "xtreme-r", "main_metric": "accuracy",
             "train_language": "en", "eval_languages": ["en", "de", "sw"]},
    "panx": {"field": "tagging", "domain": "wikipedia", "type": "token_tagging",
             "setting": "xtreme", "benchmark": "xtreme-r", "main_metric": "f1",
             "train_language": "en", "eval_languages": ["en", "de", "fr"]},
}
MAJORITY = {"vader_amazon": 0.51, "marc": 0.34, "xnli": 0.33, "panx": None}

# (model, intermediate, target) -> main metric per seed 0, 1, 2 (None: no result.json).
VALUES: dict[tuple[str, str, str], list[float | None]] = {
    ("minilm", "none", "vader_amazon"): [0.70, 0.72, 0.74],
    ("minilm", "vader_movie", "vader_amazon"): [0.74, 0.77, 0.80],
    ("minilm", "none", "marc"): [0.80, 0.82, None],             # seed 2 missing
    ("minilm", "vader_movie", "marc"): [0.81, 0.84, 0.87],
    ("codebert", "none", "vader_amazon"): [0.60, 0.62, 0.64],
    ("codebert", "vader_movie", "vader_amazon"): [0.59, 0.60, 0.61],
    ("codebert", "none", "marc"): [0.50, 0.55, 0.60],
    ("codebert", "vader_movie", "marc"): [0.44, 0.48, None],    # seed 2 failed
    ("me5_small", "none", "xnli"): [0.60, 0.62],
    ("me5_small", "mnli", "xnli"): [0.66, 0.70],
    ("me5_small", "none", "panx"): [0.50, 0.52],
    ("me5_small", "mnli", "panx"): [0.49, 0.49],
}
ZERO_SHOT = {
    ("minilm", "vader_movie", "vader_amazon"): [0.65, 0.66, 0.67],
    ("codebert", "vader_movie", "vader_amazon"): [0.55, 0.56, 0.57],
}
FAILED = {"experiment": EXPERIMENT, "model": "codebert", "intermediate": "vader_movie",
          "target": "marc", "seed": 2}
MISSING = {"experiment": EXPERIMENT, "model": "minilm", "intermediate": "none",
           "target": "marc", "seed": 2}
FAILED_EXCEPTION = "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB"


def _t_p_df2(t: float) -> float:
    """Two-sided p of Student's t with 2 degrees of freedom (closed form)."""
    return 1 - abs(t) / math.sqrt(t * t + 2)


def _t_p_df1(t: float) -> float:
    """Two-sided p of Student's t with 1 degree of freedom (Cauchy)."""
    return 1 - 2 / math.pi * math.atan(abs(t))


# Hand-worked numbers: gain = mean paired difference, std = sample std of the differences,
# t = gain / (std / sqrt(n_pairs)).
EXPECTED: dict[tuple[str, str, str], dict[str, Any]] = {
    ("minilm", "vader_movie", "vader_amazon"): dict(
        without=(0.72, 0.02, 3), with_=(0.77, 0.03, 3), gain=0.05, gain_std=0.01, n_pairs=3,
        p=_t_p_df2(5 * math.sqrt(3)), significance="helps", zero_shot=0.66, majority=0.51),
    ("codebert", "vader_movie", "vader_amazon"): dict(
        without=(0.62, 0.02, 3), with_=(0.60, 0.01, 3), gain=-0.02, gain_std=0.01, n_pairs=3,
        p=_t_p_df2(2 * math.sqrt(3)), significance="", zero_shot=0.56, majority=0.51),
    ("minilm", "vader_movie", "marc"): dict(
        without=(0.81, math.sqrt(2) / 100, 2), with_=(0.84, 0.03, 3), gain=0.015,
        gain_std=math.sqrt(2) / 200, n_pairs=2, p=_t_p_df1(3.0), significance="",
        zero_shot=math.nan, majority=0.34),
    ("codebert", "vader_movie", "marc"): dict(
        without=(0.55, 0.05, 3), with_=(0.46, math.sqrt(2) * 0.02, 2), gain=-0.065,
        gain_std=math.sqrt(2) / 200, n_pairs=2, p=_t_p_df1(13.0), significance="hurts",
        zero_shot=math.nan, majority=0.34),
    ("me5_small", "mnli", "xnli"): dict(
        without=(0.61, math.sqrt(2) / 100, 2), with_=(0.68, math.sqrt(2) * 0.02, 2), gain=0.07,
        gain_std=math.sqrt(2) / 100, n_pairs=2, p=_t_p_df1(7.0), significance="",
        zero_shot=math.nan, majority=0.33),
    ("me5_small", "mnli", "panx"): dict(
        without=(0.51, math.sqrt(2) / 100, 2), with_=(0.49, 0.0, 2), gain=-0.02,
        gain_std=math.sqrt(2) / 100, n_pairs=2, p=_t_p_df1(2.0), significance="",
        zero_shot=math.nan, majority=math.nan),
}
N_RESULTS = sum(v is not None for values in VALUES.values() for v in values)


def _per_language(target: str, main: float) -> dict[str, dict[str, float]]:
    """Scores per language whose mean is ``main``: first language +0.10, the others -0.05."""
    card = TARGETS[target]
    langs = card["eval_languages"]
    metric = card["main_metric"]
    out = {}
    for k, lang in enumerate(langs):
        offset = 0.0 if len(langs) == 1 else (0.10 if k == 0 else -0.10 / (len(langs) - 1))
        score = round(main + offset, 6)
        scores = {metric: score}
        if metric == "accuracy":
            scores["macro_f1"] = round(score - 0.01, 6)
        scores["n"] = 300
        out[lang] = scores
    return out


def _metrics(target: str, main: float) -> dict[str, Any]:
    per_language = _per_language(target, main)
    metric = TARGETS[target]["main_metric"]
    average = {metric: main}
    if metric == "accuracy":
        average["macro_f1"] = round(main - 0.01, 6)
    return {"main": main, "per_language": per_language, "average": average}


def make_result(model: str, intermediate: str, target: str, seed: int, main: float,
                zero_shot: float | None = None) -> dict[str, Any]:
    """A result.json document following docs/schemas.md."""
    card = TARGETS[target]
    inter = None if intermediate == "none" else {"name": intermediate, **INTERMEDIATES[intermediate]}
    majority = MAJORITY[target]
    return {
        "schema": "itt.result/1",
        "status": "ok",
        "experiment": EXPERIMENT,
        "cell": {"model": model, "intermediate": intermediate, "target": target, "seed": seed},
        "model": {"name": model, **MODELS[model]},
        "intermediate": inter,
        "target": {"name": target, **card},
        "metrics": _metrics(target, main),
        "baselines": {
            "majority": None if majority is None else
            {"main": majority, "per_language": {}, "average": {}},
            "zero_shot": None if zero_shot is None else _metrics(target, zero_shot),
        },
        "stage1": None if inter is None else {"key": f"{model}-{intermediate}-{seed}",
                                              "reused": False, "wall_time_s": 12.3,
                                              "epochs": 3, "val": {"accuracy": 0.85}},
        "stage2": {"wall_time_s": 4.5, "epochs": 3, "best_val": {card["main_metric"]: main},
                   "checkpoint": "checkpoints/best.ckpt"},
        "wall_time_s": {"stage1": 0.0 if inter is None else 12.3, "stage2": 4.5, "eval": 0.7,
                        "total": 5.2 if inter is None else 17.5},
        "config": {"seed": seed, "model": {"name": model}, "target": {"name": target}},
        "config_hash": f"hash-{model}-{intermediate}-{target}-{seed}",
        "versions": {"python": "3.11.7"},
        "git": {"commit": "0" * 40, "dirty": False},
        "finished_at": f"2026-11-21T12:{seed:02d}:00+00:00",
    }


def make_error(model: str, intermediate: str, target: str, seed: int, exception: str) -> dict[str, Any]:
    """An error.json document following docs/schemas.md."""
    return {"schema": "itt.error/1", "status": "failed", "experiment": EXPERIMENT,
            "cell": {"model": model, "intermediate": intermediate, "target": target, "seed": seed},
            "exception": exception + "\nIf reserved but unallocated memory is large, ...",
            "traceback": "Traceback (most recent call last):\n  ...\n" + exception,
            "config": {}, "failed_at": "2026-11-21T12:30:00+00:00"}


def _dump(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def write_fixture_results(root: Path | str) -> dict[str, Any]:
    """Write the fixture tree under ``root``; returns its directories and counts."""
    root = Path(root)
    sweep = root / SWEEP
    plan = []
    job = 0
    for (model, inter, target), values in VALUES.items():
        xtreme = TARGETS[target]["benchmark"] is not None
        for seed, main in enumerate(values):
            cell = {"model": model, "intermediate": inter, "target": target, "seed": seed}
            zs = ZERO_SHOT.get((model, inter, target))
            if xtreme:
                job_dir = root / "runs" / "xtreme" / f"{model}-{inter}-{target}-s{seed}"
            else:
                plan.append(cell)
                job_dir = sweep / str(job)
                job += 1
            if main is not None:
                _dump(job_dir / "result.json",
                      make_result(model, inter, target, seed, main, zs[seed] if zs else None))
            elif {**cell, "experiment": EXPERIMENT} == FAILED:
                _dump(job_dir / "error.json",
                      make_error(model, inter, target, seed, FAILED_EXCEPTION))
            else:
                job_dir.mkdir(parents=True, exist_ok=True)  # started, never finished
    _dump(sweep / "plan.json", {"experiment": EXPERIMENT, "cells": plan})
    return {"root": root, "dirs": [root / "multirun", root / "runs"], "sweep": sweep,
            "n_results": N_RESULTS, "failed": FAILED, "missing": MISSING}


def write_malformed_result(path: Path | str, text: str = '{"schema": "itt.result/1", "cell": ') -> Path:
    """Write a truncated (invalid JSON) result.json at ``path`` (a directory)."""
    target = Path(path) / "result.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
