"""Score candidate intermediate tasks for (model, target) pairs with every selection method,
and write ``selection.json`` (format: docs/schemas.md).

Methods (each higher = a better predicted intermediate task):

* ``semb``: cosine similarity of the mean sentence embeddings of the candidate's and the
  target's training data under the base encoder (itt.selection.semb). No stage 1.
* ``logme``: LogME of the target's training labels on the features of the encoder after
  stage 1 on the candidate (itt.selection.logme); the base encoder's LogME is kept as the
  reference (a candidate scoring below it is predicted not to help).
* ``probe``: a linear probe on those features, trained on the target's training split and
  scored with the target's main metric on its validation split (itt.selection.probe).
* ``zero_shot``: the stage-1 model with its own head scored on the target's validation
  split, where the candidate's head fits the target's labels (otherwise no score).

The target's data are those its stage-2 training sees (same split, caps and token length as
the cell, card settings applied), so the scores describe the grid's cells. The cost of a
method is the wall time of the steps it needs (shared steps such as loading the base encoder
counted in each method that needs them), and for the methods that read stage-1 models the
training time of those models as well, apart.
"""
from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from itt.errors import ConfigError

log = logging.getLogger(__name__)

METHODS = ("semb", "logme", "probe", "zero_shot")
NEEDS_STAGE1 = {"semb": False, "logme": True, "probe": True, "zero_shot": True}


@dataclass
class Settings:
    methods: tuple[str, ...] = METHODS
    max_examples: int = 256          # candidate training rows embedded for SEmb
    train_stage1: bool = False       # train a missing stage-1 model (else its candidate is left unscored)
    batch_size: int = 64

    def __post_init__(self) -> None:
        self.methods = tuple(self.methods)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(f"select.methods: unknown {unknown or 'empty list'}; choose from {', '.join(METHODS)}.")
        if int(self.max_examples) < 2:
            raise ConfigError(f"select.max_examples must be at least 2, got {self.max_examples}.")


@dataclass
class Question:
    """One (model, target, seed): the cell configs of its candidate intermediate tasks."""

    model: str
    target: str
    seed: int
    cfgs: dict[str, dict[str, Any]]     # candidate name -> cell config (card settings applied)

    @property
    def any_cfg(self) -> dict[str, Any]:
        return next(iter(self.cfgs.values()))


@dataclass
class _Costs:
    steps: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, step: str, t0: float) -> None:
        self.steps[step] += time.perf_counter() - t0

    def total(self, steps: list[str]) -> float:
        return round(sum(self.steps.get(s, 0.0) for s in steps), 3)


def _main_metric(impl: Any, preds: list, split: Any, card: Any) -> float | None:
    value = impl.score(preds, split.tokens, card).get(card.main_metric)
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _labels(card: Any) -> str:
    if card.is_regression:
        return f"{card.type}, regression"
    names = list(card.labels or [])
    return f"{card.type}, labels {names}" if len(names) <= 5 else f"{card.type}, {len(names)} labels"


def _num_classes(card: Any) -> int | None:
    return None if card.is_regression else card.num_labels


def select(questions: list[Question], settings: Settings, work_dir: Path) -> list[dict[str, Any]]:
    """Score every question's candidates with ``settings.methods``; one selection entry per
    question (see docs/schemas.md, selection.json)."""
    from itt.data.cards import card_from_config
    from itt.builders import load_encoder
    from itt.models.heads import hidden_size
    from itt.selection import stage1 as s1
    from itt.selection.features import check_type, encode, load_splits
    from itt.selection.logme import logme
    from itt.selection.probe import probe_predictions
    from itt.selection.semb import semb
    from itt.tasks import get_task_type

    methods = settings.methods
    stage1_methods = [m for m in methods if NEEDS_STAGE1[m]]
    by_model: dict[str, list[Question]] = defaultdict(list)
    for q in questions:
        by_model[q.model].append(q)
    entries: dict[int, dict[str, Any]] = {}
    for model, qs in by_model.items():
        costs = _Costs()
        cfg0 = qs[0].any_cfg
        model_cfg = cfg0["model"]
        prec = str(cfg0["trainer"]["precision"])  # features in the grid's precision
        pooling = str(model_cfg.get("pooling", "first"))
        poolings = tuple(dict.fromkeys(("mean", pooling)))
        t0 = time.perf_counter()
        encoder, tokenizer, _ = load_encoder(model_cfg, cfg0["paths"]["cache_dir"])
        encoder.eval()
        costs.add("load_base", t0)

        # Target data depend on the split seed, not on the cell's seed: one pass per target.
        def tkey(q: Question) -> tuple[str, int]:
            return q.target, int(q.any_cfg["data"]["split_seed"])

        targets: dict[tuple[str, int], dict[str, Any]] = {}
        for q in qs:
            if tkey(q) in targets:
                continue
            card = card_from_config(q.any_cfg["target"], "target")
            check_type(card, "target")
            t0 = time.perf_counter()
            splits = load_splits(card, tokenizer, q.any_cfg, "stage2", ("train", "validation"))
            costs.add(f"target_data:{q.target}", t0)
            t0 = time.perf_counter()
            base = encode(encoder, tokenizer, splits["train"], poolings, settings.batch_size, precision=prec)
            costs.add(f"target_base:{q.target}", t0)
            targets[tkey(q)] = {"card": card, "splits": splits, "base": base, "impl": get_task_type(card.type)}

        # SEmb: candidate data under the base encoder (before any stage-1 weights are loaded).
        # A candidate's SEmb rows are drawn with the cell's seed: one embedding per (candidate, seed).
        cand_emb: dict[tuple[str, int], np.ndarray] = {}
        if "semb" in methods:
            for q in qs:
                for cand, cfg in q.cfgs.items():
                    if (cand, q.seed) in cand_emb:
                        continue
                    ccard = card_from_config(cfg["intermediate"], "intermediate")
                    check_type(ccard, "intermediate")
                    t0 = time.perf_counter()
                    csplit = load_splits(ccard, tokenizer, cfg, "stage1", ("train",), settings.max_examples,
                                         seed=int(cfg["seed"]))["train"]
                    cand_emb[(cand, q.seed)] = encode(encoder, tokenizer, csplit, ("mean",), settings.batch_size, precision=prec)["mean"]
                    costs.add(f"cand_base:{cand}:{q.seed}", t0)

        for q in qs:
            entries[id(q)] = _entry(q, methods)
            tgt = targets[tkey(q)]
            e = entries[id(q)]
            if "semb" in methods:
                for cand in q.cfgs:
                    t0 = time.perf_counter()
                    e["methods"]["semb"]["scores"][cand] = semb(tgt["base"]["mean"], cand_emb[(cand, q.seed)])
                    costs.add(f"semb:{q.target}:{q.seed}", t0)
            if "logme" in methods:
                if "logme_ref" not in tgt:   # the base encoder's features: the same for every seed
                    t0 = time.perf_counter()
                    tgt["logme_ref"] = logme(tgt["base"][pooling], tgt["splits"]["train"].labels,
                                             _num_classes(tgt["card"]))
                    costs.add(f"logme_ref:{q.target}", t0)
                e["methods"]["logme"]["reference"] = tgt["logme_ref"]

        # Stage-1 methods: one pass per candidate's stage-1 model over every target that asks for it.
        if stage1_methods:
            # One stage-1 model per (candidate, seed): the seed is part of its cache key.
            by_cand: dict[tuple[str, int], list[Question]] = defaultdict(list)
            for q in qs:
                for cand in q.cfgs:
                    by_cand[(cand, q.seed)].append(q)
            for (cand, _seed), cqs in by_cand.items():
                cfg = cqs[0].cfgs[cand]
                t0 = time.perf_counter()
                found = s1.ensure(cfg, work_dir) if settings.train_stage1 else s1.locate(cfg)
                if not found.trained_now:   # training time is reported apart (stage1_train_s)
                    costs.add(f"stage1_lookup:{cand}:{_seed}", t0)
                if not found.ready:
                    why = (f"stage-1 model {found.key} is not in the cache ({found.path}); run the grid's "
                           "cells or set select.train_stage1=true")
                    for q in cqs:
                        for m in stage1_methods:
                            entries[id(q)]["methods"][m]["skipped"][cand] = why
                    continue
                t0 = time.perf_counter()
                s1.load_encoder_state(encoder, found.path)
                ccard = card_from_config(cfg["intermediate"], "intermediate")
                head = get_task_type(ccard.type).head(hidden_size(encoder), ccard,
                                                      float(cfg["head"].get("dropout", 0.1)))
                s1.load_head_state(head, found.path)
                head.eval()
                costs.add(f"stage1_load:{cand}:{_seed}", t0)
                for q in cqs:
                    e = entries[id(q)]
                    tgt = targets[tkey(q)]
                    card, impl, splits = tgt["card"], tgt["impl"], tgt["splits"]
                    for m in stage1_methods:
                        e["methods"][m]["stage1"][cand] = {"key": found.key, "train_s": found.train_s,
                                                           "trained_now": found.trained_now}
                    t0 = time.perf_counter()
                    train_f = encode(encoder, tokenizer, splits["train"], (pooling,), settings.batch_size, precision=prec)[pooling]
                    costs.add(f"s1_train_feats:{cand}:{q.target}:{q.seed}", t0)
                    if "logme" in methods:
                        t0 = time.perf_counter()
                        e["methods"]["logme"]["scores"][cand] = logme(train_f, splits["train"].labels,
                                                                      _num_classes(card))
                        costs.add(f"logme:{cand}:{q.target}:{q.seed}", t0)
                    if "probe" in methods:
                        t0 = time.perf_counter()
                        val_f = encode(encoder, tokenizer, splits["validation"], (pooling,),
                                       settings.batch_size, precision=prec)[pooling]
                        preds = probe_predictions(train_f, splits["train"].labels, val_f, _num_classes(card))
                        e["methods"]["probe"]["scores"][cand] = _main_metric(impl, preds, splits["validation"], card)
                        costs.add(f"probe:{cand}:{q.target}:{q.seed}", t0)
                    if "zero_shot" in methods:
                        if not impl.zero_shot_compatible(ccard, card):
                            e["methods"]["zero_shot"]["skipped"][cand] = (
                                f"the head of {cand} ({_labels(ccard)}) does not fit {q.target} ({_labels(card)})")
                            continue
                        t0 = time.perf_counter()
                        out = encode(encoder, tokenizer, splits["validation"], (), settings.batch_size,
                                     head=head, head_pooling=pooling, precision=prec)
                        e["methods"]["zero_shot"]["scores"][cand] = _main_metric(
                            impl, out["predictions"], splits["validation"], card)
                        costs.add(f"zero_shot:{cand}:{q.target}:{q.seed}", t0)

        for q in qs:
            _finish(entries[id(q)], q, costs, methods, len(qs))
    return [entries[id(q)] for q in questions]


def _entry(q: Question, methods: tuple[str, ...]) -> dict[str, Any]:
    return {"model": q.model, "target": q.target, "seed": q.seed, "candidates": list(q.cfgs),
            "methods": {m: {"scores": {c: None for c in q.cfgs}, "ranks": {}, "skipped": {},
                            "needs_stage1": NEEDS_STAGE1[m], "stage1": {}, "cost_s": 0.0,
                            **({"reference": None} if m == "logme" else {})} for m in methods}}


def _finish(e: dict[str, Any], q: Question, costs: _Costs, methods: tuple[str, ...], n_questions: int) -> None:
    """Ranks and costs of one entry. A method's cost: loading the base encoder (shared by the
    model's questions, divided among them) plus its own steps for this target."""
    from itt.selection.ranking import ranks

    t, cands, sd = q.target, list(q.cfgs), q.seed
    shared = costs.steps.get("load_base", 0.0) / max(1, n_questions)
    common = [f"target_data:{t}"]
    # Steps keyed by seed are this entry's own; the target's data and base features are read
    # once for all seeds and charged in full to each (what one seed's selection alone would pay).
    stage1 = [f"stage1_lookup:{c}:{sd}" for c in cands] + [f"stage1_load:{c}:{sd}" for c in cands]
    feats = [f"s1_train_feats:{c}:{t}:{sd}" for c in cands]
    own = {
        "semb": common + [f"target_base:{t}", f"semb:{t}:{sd}"] + [f"cand_base:{c}:{sd}" for c in cands],
        "logme": common + [f"target_base:{t}", f"logme_ref:{t}"] + stage1 + feats
        + [f"logme:{c}:{t}:{sd}" for c in cands],
        "probe": common + stage1 + feats + [f"probe:{c}:{t}:{sd}" for c in cands],
        "zero_shot": common + stage1 + [f"zero_shot:{c}:{t}:{sd}" for c in cands],
    }
    for m in methods:
        block = e["methods"][m]
        block["ranks"] = ranks(block["scores"])
        block["cost_s"] = round(shared + costs.total(own[m]), 3)
        if block["needs_stage1"]:
            block["stage1_train_s"] = round(sum(float(v.get("train_s") or 0.0) for v in block["stage1"].values()), 3)
            block["stage1_trained_now"] = sorted(c for c, v in block["stage1"].items() if v.get("trained_now"))
