"""Throughput, model FLOPs utilisation, memory and the paper grid's cost on one GPU.

    python -m benchmarks.gpu_bench --out DIR [--time-budget-s 420]   # on a GPU machine
    python -m benchmarks.gpu_bench --tiny --out DIR                  # tiny encoders, a few steps (the test)

One command, no model or dataset hub. The encoders are the paper's and XTREME-R's base
models, built from their published ``config.json`` values (``ENCODERS``) with random
weights: BERT-base (cased), RoBERTa-base, XLNet-base (cased), XLM-R-base. The texts are the
benchmark workload's (``benchmarks/workload.py``: the offline suite's vader sets and 20
Newsgroups posts, labelled by domain; generated text when the suite is absent), tokenized
by a tokenizer of each architecture's kind trained on them (``itt.models.tiny``), so the
lengths are those of real text. For each encoder, in order of priority while the time
budget lasts (what is left is listed as skipped, with the reason):

1. training tokens/s and MFU (``benchmarks/mfu.py``: model FLOPs on real tokens against the
   device's dense bf16 peak) of the bare loop (``runners.run_bare``) for fp32, bf16
   autocast, bf16 + SDPA attention and bf16 + SDPA + ``torch.compile``; XLNet has no SDPA
   path in transformers and runs its eager attention in every row;
2. itt's training path (``itt.stages.fit`` on the ITTModule, as a cell runs it) against the
   bare loop on the same batches and against transformers' ``Trainer`` with
   ``train_sampling_strategy="group_by_length"``, whole epochs, with held-out accuracy;
3. the step time of the paper grid's batch shapes (every sequence at ``max_length``), the
   peak memory of a training step, and the largest batch that fits (doubling, then
   bisection; bounded).

From (3) and the grid's plan (``python -m itt.train -m experiment=paper run.dry_run=true``
lists the cells; ``--plan`` reads a sweep's plan.json instead) it computes the grid's
GPU-hours: steps per epoch from the task cards' row counts, split and caps, times epochs,
times the measured step time, plus validation and test passes. Every step counts as a full
``max_length`` batch, so the figure is an upper bound (length-grouped batches of short texts
take less). ``--tiny`` runs everything with tiny encoders on whatever device there is; its
figures test the script and are labelled as such, never as GPU figures.

Writes DIR/gpu_bench.json and DIR/gpu_bench.md (a section for BENCHMARKS.md naming the
device), rewritten after every job so that a run cut short keeps what it measured.
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from benchmarks import mfu
from benchmarks.common import REPO_ROOT, Settings, interleave, machine_info, ratio_stats, set_threads
from benchmarks.workload import Sizes, Workload, bench_card, compose_cfg, generated_rows, real_rows
from itt.errors import ConfigError, DataError

log = logging.getLogger("benchmarks.gpu_bench")

# ----------------------------------------------------------------------------- encoders
#: The published config.json of each encoder (the hub files, architecture keys only); the
#: keys are conf/model card names, so that a plan's ``model`` finds its measurement.
ENCODERS: dict[str, dict[str, Any]] = {
    "bert": {"hub": "bert-base-cased", "config": {
        "model_type": "bert", "vocab_size": 28996, "hidden_size": 768, "num_hidden_layers": 12,
        "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0}},
    "roberta": {"hub": "roberta-base", "config": {
        "model_type": "roberta", "vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12,
        "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 514, "type_vocab_size": 1,
        "initializer_range": 0.02, "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0,
        "eos_token_id": 2}},
    "xlnet": {"hub": "xlnet-base-cased", "config": {
        "model_type": "xlnet", "vocab_size": 32000, "d_model": 768, "n_layer": 12, "n_head": 12, "d_head": 64,
        "d_inner": 3072, "ff_activation": "gelu", "untie_r": True, "attn_type": "bi", "initializer_range": 0.02,
        "layer_norm_eps": 1e-12, "dropout": 0.1, "mem_len": None, "reuse_len": None, "bi_data": False,
        "clamp_len": -1, "same_length": False, "summary_type": "last", "summary_use_proj": True,
        "summary_activation": "tanh", "summary_last_dropout": 0.1, "pad_token_id": 5, "bos_token_id": 1,
        "eos_token_id": 2}},
    "xlmr_base": {"hub": "FacebookAI/xlm-roberta-base", "config": {
        "model_type": "xlm-roberta", "vocab_size": 250002, "hidden_size": 768, "num_hidden_layers": 12,
        "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 514, "type_vocab_size": 1,
        "initializer_range": 0.02, "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0,
        "eos_token_id": 2}},
}

#: --tiny: the same architectures, two layers of width 32.
TINY_SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
              "vocab_size": 400}
TINY_SHAPE_XLNET = {"d_model": 32, "n_layer": 2, "n_head": 2, "d_head": 16, "d_inner": 64, "vocab_size": 400}


def arch_config(name: str, tiny: bool) -> dict[str, Any]:
    """The config dict of encoder ``name`` (published values, or the tiny shape)."""
    if name not in ENCODERS:
        raise ConfigError(f"--encoders: unknown encoder '{name}'; known: {', '.join(ENCODERS)}.")
    cfg = dict(ENCODERS[name]["config"])
    if tiny:
        cfg.update(TINY_SHAPE_XLNET if cfg["model_type"] == "xlnet" else TINY_SHAPE)
    return cfg


def architecture(config: dict[str, Any]) -> str:
    """The ``itt.models.tiny`` architecture name of a config (its tokenizer kind)."""
    return str(config["model_type"])


def sdpa_support(config: dict[str, Any]) -> str | None:
    """None if transformers builds this architecture with SDPA attention, else its refusal."""
    from transformers import AutoConfig, AutoModel

    small = {k: v for k, v in config.items() if k != "model_type"}
    small.update(TINY_SHAPE_XLNET if config["model_type"] == "xlnet" else TINY_SHAPE)
    try:
        AutoModel.from_config(AutoConfig.for_model(config["model_type"], **small), attn_implementation="sdpa")
    except (ValueError, ImportError) as exc:
        return str(exc).split(". ")[0]
    return None


@dataclass
class ArchWorkload(Workload):
    """The benchmark workload with one of ``ENCODERS`` (random weights, seeded) as encoder."""

    encoder_name: str = ""
    hf_config: dict[str, Any] = field(default_factory=dict)
    attn: str = "sdpa"
    init_seed: int = 0

    def encoder(self) -> Any:
        import torch
        from transformers import AutoConfig, AutoModel

        spec = dict(self.hf_config)
        config = AutoConfig.for_model(spec.pop("model_type"), **spec)
        cuda = torch.cuda.is_available()
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
            torch.manual_seed(self.init_seed)
            with torch.device("cuda" if cuda else "cpu"):   # initialised where it trains
                return AutoModel.from_config(config, attn_implementation=self.attn)


def variant_of(wl: ArchWorkload, *, precision: str | None = None, compile: bool | None = None,
               attn: str | None = None) -> ArchWorkload:
    """The same workload with other trainer settings or attention."""
    out = copy.copy(wl)
    out.cfg = copy.deepcopy(wl.cfg)
    if precision is not None:
        out.cfg["trainer"]["precision"] = precision
    if compile is not None:
        out.cfg["trainer"]["compile"] = bool(compile)
    if attn is not None:
        out.attn = attn
    return out


def build_workload(name: str, sizes: Sizes, *, tiny: bool, lr: float, synthetic: bool = False,
                   seed: int = 0) -> ArchWorkload:
    """Texts, a trained tokenizer of the architecture's kind, the tokenized splits and the
    itt config (conf/ defaults, ``model=<name>``, ``trainer=gpu`` when CUDA is there)."""
    import datasets
    import torch

    from itt.models.tiny import train_tokenizer
    from itt.tasks import get_task_type

    hf = arch_config(name, tiny)
    arch = architecture(hf)
    total = sizes.n_train + sizes.n_val + sizes.n_test
    got = None if synthetic else real_rows(total, sizes.long_fraction, seed)
    if got is not None:
        rows, labels = got
        source = (f"offline suite: vader_movie, vader_amazon, vader_nyt, vader_tweets and "
                  f"{round(total * sizes.long_fraction)} newsgroups20 posts, labelled by domain (5 classes)")
    else:
        rows, labels = generated_rows(total, seed)
        source = "GENERATED text (offline suite absent or --synthetic): log-normal lengths, 2 labels"
    train_rows = rows[:sizes.n_train]
    vocab = min(int(hf["vocab_size"]), 400 if tiny else 16000)
    tokenizer = train_tokenizer([r["text"] for r in train_rows], arch, vocab, sizes.max_length,
                                padding_side="left" if arch == "xlnet" else "right")
    if len(tokenizer) > int(hf["vocab_size"]):
        raise ConfigError(f"{name}: the trained tokenizer has {len(tokenizer)} tokens, more than the model's "
                          f"{hf['vocab_size']}.")
    # Special-token ids follow the trained tokenizer (they index the same embedding table).
    hf["pad_token_id"] = tokenizer.pad_token_id
    if arch != "bert":
        hf["bos_token_id"], hf["eos_token_id"] = tokenizer.cls_token_id, tokenizer.sep_token_id
    cfg = compose_cfg([f"model={name}", f"seed={seed}"] + (["trainer=gpu"] if torch.cuda.is_available() else []))
    cfg["stage2"].update(batch_size=sizes.batch_size, max_length=sizes.max_length, eval_batch_size=128,
                         lr=lr, epochs=1, max_train_examples=None)
    card = bench_card(labels)
    impl = get_task_type(card.type)
    texts, tok = {}, {}
    parts = (("train", train_rows), ("validation", rows[sizes.n_train:sizes.n_train + sizes.n_val]),
             ("test", rows[sizes.n_train + sizes.n_val:]))
    for split, part in parts:
        ds = datasets.Dataset.from_dict({"text": [r["text"] for r in part], "label": [r["label"] for r in part]})
        texts[split] = ds
        tok[split] = impl.encode(ds, tokenizer, card, sizes.max_length, None, f"gpu_bench/{name}/{split}")
    tok["test"] = {"en": tok["test"]}
    shape = {k: hf[k] for k in hf if k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                          "intermediate_size", "d_model", "n_layer", "n_head", "d_inner",
                                          "vocab_size")}
    default_attn = "eager" if sdpa_support(hf) else "sdpa"
    return ArchWorkload(cfg=cfg, card=card, tokenizer=tokenizer, model_dir=Path(tempfile.gettempdir()), tok=tok,
                        texts=texts, source=source, sizes=sizes, model_shape=shape, encoder_name=name,
                        hf_config=hf, attn=default_attn, init_seed=seed)


# ----------------------------------------------------------------------------- plan of a run
@dataclass
class Plan:
    """How much each measurement does: the full run on a GPU, or seconds with --tiny."""

    sizes: Sizes
    lr: float
    sample: int | None        # batches per timed variant run (a stratified sample of an epoch)
    rounds: int               # timed runs per variant
    fw_epochs: int            # whole epochs per contender in the itt / bare / Trainer comparison
    fw_rounds: int
    shape_warm: int           # warm-up steps before timing a grid shape
    shape_steps: int          # timed steps per grid shape
    search_start: int         # largest-batch search: first batch size, cap, granularity, probes
    search_cap: int
    search_grain: int
    search_probes: int
    reference_batch: int      # a large batch at the longest grid length: MFU once launch costs are amortised


PLAN_GPU = Plan(sizes=Sizes(n_train=4096, n_val=256, n_test=1024, max_length=128, batch_size=32), lr=1e-4,
                sample=24, rounds=2, fw_epochs=2, fw_rounds=1, shape_warm=3, shape_steps=10,
                search_start=64, search_cap=16384, search_grain=16, search_probes=14,
                reference_batch=256)
PLAN_TINY = Plan(sizes=Sizes(n_train=128, n_val=32, n_test=64, max_length=32, batch_size=16), lr=1e-3,
                 sample=None, rounds=1, fw_epochs=1, fw_rounds=1, shape_warm=1, shape_steps=2,
                 search_start=8, search_cap=64, search_grain=8, search_probes=6,
                 reference_batch=64)

#: The rows of each variant table: (key, precision, attention, compile).
VARIANTS: list[tuple[str, str, str, bool]] = [
    ("fp32", "32-true", "eager", False),
    ("bf16", "bf16-mixed", "eager", False),
    ("bf16_sdpa", "bf16-mixed", "sdpa", False),
    ("bf16_sdpa_compile", "bf16-mixed", "sdpa", True),
]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({machine_info(Settings())['cpu']})"


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _reset_peak() -> None:
    import torch

    _free()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2 ** 30 if torch.cuda.is_available() else None


# ----------------------------------------------------------------------------- 1. variants
def _compiled_graphs() -> int:
    """Graphs torch.compile has compiled in this process so far (dynamo's own counter)."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"].get("unique_graphs", 0))
    except Exception:  # noqa: BLE001 - an internal counter; its absence only loses this check
        return 0


def encoder_flops(wl: ArchWorkload, batches: Sequence[Sequence[int]], encoder: Any) -> float:
    """Model FLOPs (mfu.py) of training on ``batches`` (indices into the training split)."""
    layers, hidden = mfu.model_shape(encoder)
    lengths = wl.tok["train"].lengths
    seen = np.concatenate([lengths[np.asarray(b)] for b in batches]) if batches else np.zeros(0)
    return mfu.flops_per_sequence(mfu.non_embedding_params(encoder), layers, hidden, seen)


def measure_variant(wl: ArchWorkload, key: str, precision: str, attn: str, compile_: bool, plan: Plan,
                    budget: "Budget") -> dict[str, Any]:
    """Bare-loop training throughput of one setting: warm-up, then ``plan.rounds`` timed runs
    on the same stratified sample of an epoch's length-grouped batches."""
    from benchmarks import runners

    vwl = variant_of(wl, precision=precision, compile=compile_, attn=attn)
    encoder = vwl.encoder()
    # Warm-up on the very batches that are timed next: every batch width is seen once, so
    # that torch.compile has compiled for them all (and kernels are chosen) before timing.
    t0 = time.perf_counter()
    warm_loader, warm_rec = runners.train_loader(vwl, "length_grouped", sample=plan.sample)
    runners.run_bare(vwl, warm_loader, warm_rec, encoder=encoder)
    warm_s = time.perf_counter() - t0
    runs = []
    graphs_before = _compiled_graphs()
    _reset_peak()
    for _ in range(plan.rounds):
        if runs and budget.left() < 2 * runs[-1]["seconds"] + budget.reserve:
            break
        loader, rec = runners.train_loader(vwl, "length_grouped", sample=plan.sample)
        res = runners.run_bare(vwl, loader, rec, encoder=encoder)
        res["model_flops"] = encoder_flops(vwl, rec.seen, encoder)
        runs.append(res)
    tps = [r["tok_per_s"] for r in runs]
    flops_s = [r["model_flops"] / r["seconds"] for r in runs]
    peak = mfu.peak_flops() if _cuda() else None
    out = {"variant": key, "precision": precision, "attention": attn, "compile": compile_,
           "tok_per_s": statistics.median(tps), "tok_per_s_runs": tps,
           "model_tflop_per_s": statistics.median(flops_s) / 1e12,
           "mfu": statistics.median(flops_s) / peak if peak else None,
           "steps": runs[0]["steps"], "real_tokens": runs[0]["real_tokens"], "padded_tokens": runs[0]["padded_tokens"],
           "warmup_s": round(warm_s, 2), "peak_memory_gib": _peak_gib()}
    if compile_:
        # Graphs compiled inside the timed runs would make the figure include compilation.
        out["graphs_compiled_while_timed"] = _compiled_graphs() - graphs_before
    del encoder
    _free()
    return out


# ----------------------------------------------------------------------------- 2. itt / bare / Trainer
def frameworks(wl: ArchWorkload, plan: Plan, work_dir: Path) -> dict[str, Any]:
    """itt's training path, the bare loop and transformers' Trainer, whole epochs each, with
    held-out accuracy; itt and the bare loop train on the very same batches."""
    from benchmarks import runners

    dataset = runners.hf_dataset(wl.tok["train"])
    seen: dict[str, list[list[int]]] = {}

    def contender(kind: str) -> Callable[[int], dict[str, Any]]:
        def run(r: int) -> dict[str, Any]:
            _free()
            if kind == "hf":
                return runners.run_hf(wl, dataset, epochs=plan.fw_epochs, seed=r, score=True, work_dir=work_dir)
            loader, rec = runners.train_loader(wl, "length_grouped", seed=r)
            if kind == "bare":
                res = runners.run_bare(wl, loader, rec, epochs=plan.fw_epochs, seed=r, score=True)
            else:
                res = runners.run_itt(wl, loader, rec, epochs=plan.fw_epochs, seed=r, score=True, validate=False,
                                      work_dir=work_dir)
            seen[kind] = [list(map(int, b)) for b in rec.seen]
            return res
        return run

    res = interleave({"bare": contender("bare"), "itt": contender("itt"), "hf": contender("hf")}, plan.fw_rounds,
                     lambda m: log.info("%s", m))
    keep = ("tok_per_s", "train_seconds", "accuracy", "real_tokens", "padded_tokens", "steps")
    out: dict[str, Any] = {k: [{f: r.get(f) for f in keep} for r in v] for k, v in res.items()}
    out["itt_over_bare"] = ratio_stats([r["tok_per_s"] for r in res["itt"]],
                                       [r["tok_per_s"] for r in res["bare"]]).ratios
    out["itt_over_hf"] = ratio_stats([r["tok_per_s"] for r in res["itt"]],
                                     [r["tok_per_s"] for r in res["hf"]]).ratios
    out["same_batches"] = seen.get("itt") == seen.get("bare")
    out.update(epochs=plan.fw_epochs, precision=wl.cfg["trainer"].get("precision"), attention=wl.attn,
               hf_sampling=runners.hf_strategy_arg())
    return out


# ----------------------------------------------------------------------------- 3. shapes and memory
def largest_fitting(fits: Callable[[int], bool], start: int, cap: int, grain: int = 1,
                    max_probes: int = 16) -> dict[str, Any]:
    """The largest batch size in [grain, cap] (a multiple of ``grain``) for which ``fits``
    holds, by doubling from ``start`` and then bisecting, in at most ``max_probes`` calls.
    Returns ``largest`` (None if nothing fitted), ``first_failing`` (None if none failed),
    ``exact`` (the two are one grain apart, or the cap fitted) and the probes in order."""
    if grain < 1 or start < grain or cap < start:
        raise ValueError(f"largest_fitting needs 1 <= grain <= start <= cap (got {grain}, {start}, {cap})")
    lo: int | None = None
    hi: int | None = None
    probes: list[tuple[int, bool]] = []
    b = (start // grain) * grain
    while len(probes) < max_probes:
        ok = bool(fits(b))
        probes.append((b, ok))
        if ok:
            lo = b
            if b >= cap:
                break
            b = min(cap, 2 * b) if hi is None else ((lo + hi) // 2 // grain) * grain
        else:
            hi = b
            if lo is None:
                if b <= grain:
                    break
                b = max(grain, (b // 2 // grain) * grain)
                continue
            b = ((lo + hi) // 2 // grain) * grain
        if hi is not None and lo is not None and hi - lo <= grain:
            break
        if b in dict(probes):
            break
    exact = (lo is not None and lo >= cap) or (lo is not None and hi is not None and hi - lo <= grain) or \
            (lo is None and hi is not None and hi <= grain)
    return {"largest": lo, "first_failing": hi, "exact": bool(exact), "probes": probes, "cap": cap, "grain": grain}


def _synthetic_batch(wl: ArchWorkload, batch: int, length: int, device: Any, rng: np.random.Generator) -> dict:
    """A batch of ``batch`` sequences of exactly ``length`` tokens, made by the task's own
    collator (ids drawn from the tokenizer's non-special range)."""
    from itt.tasks import get_task_type

    collator = get_task_type(wl.card.type).collator(wl.tokenizer, wl.card)
    n_labels = len(wl.card.labels or [0, 1])
    items = [(i, (rng.integers(5, len(wl.tokenizer), size=length), None, int(rng.integers(n_labels))))
             for i in range(batch)]
    return {k: v.to(device) for k, v in collator(items).items()}


def measure_shapes(wl: ArchWorkload, key: str, precision: str, attn: str, train_shapes: Iterable[tuple[int, int]],
                   eval_shapes: Iterable[tuple[int, int]], plan: Plan, budget: "Budget") -> dict[str, Any]:
    """Step times of full-width batches (training: forward, backward, clipping, AdamW;
    evaluation: forward only), the peak memory of a training step, and the largest
    training batch of the longest shape that fits in device memory."""
    import torch

    from benchmarks import runners

    vwl = variant_of(wl, precision=precision, compile=False, attn=attn)
    device = torch.device("cuda" if _cuda() else "cpu")
    bf16 = "bf16" in precision
    module = runners.build_module(vwl, 0).to(device).train()
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=float(vwl.stage["lr"]), fused=True)
    rng = np.random.default_rng(0)

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def train_step(batch: dict[str, Any]) -> None:
        with autocast():
            loss = module.impl.loss(module(batch), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    def timed(fn: Callable[[], None], warm: int, steps: int) -> float:
        for _ in range(warm):
            fn()
        runners._sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        runners._sync()
        return (time.perf_counter() - t0) / steps

    train_shapes, eval_shapes = sorted(set(train_shapes)), sorted(set(eval_shapes))
    longest = max([length for _, length in train_shapes] or [wl.sizes.max_length])
    layers, hidden = mfu.model_shape(module.encoder)
    n_params = mfu.non_embedding_params(module.encoder)
    peak = mfu.peak_flops() if device.type == "cuda" else None
    out: dict[str, Any] = {"variant": key, "precision": precision, "attention": attn,
                           "train_step_s": {}, "eval_step_s": {}, "peak_memory_gib": {}, "mfu": {},
                           "model_tflop_per_s": {}}
    reference = (plan.reference_batch, longest)
    for b, length in train_shapes + ([reference] if reference not in train_shapes else []):
        name = f"{b}x{length}"
        batch = _synthetic_batch(vwl, b, length, device, rng)
        _reset_peak()
        step = timed(lambda: train_step(batch), plan.shape_warm, plan.shape_steps)
        flops = mfu.flops_per_sequence(n_params, layers, hidden, np.full(b, length))
        out["model_tflop_per_s"][name] = flops / step / 1e12
        out["mfu"][name] = flops / step / peak if peak else None
        if (b, length) == reference and reference not in train_shapes:
            out["reference"] = {"shape": name, "step_s": step}
            continue
        out["train_step_s"][name] = step
        out["peak_memory_gib"][name] = _peak_gib()
    module.eval()
    for b, length in eval_shapes:
        batch = _synthetic_batch(vwl, b, length, device, rng)

        def forward() -> None:
            with torch.no_grad(), autocast():
                module(batch)
        out["eval_step_s"][f"{b}x{length}"] = timed(forward, 1, plan.shape_steps)
    module.train()

    def fits(b: int) -> bool:
        if budget.left() < budget.reserve:
            raise TimeoutError("time budget spent during the largest-batch search")
        try:
            train_step(_synthetic_batch(vwl, b, longest, device, rng))
            runners._sync()
            return True
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            opt.zero_grad(set_to_none=True)
            _free()

    try:
        search = largest_fitting(fits, plan.search_start, plan.search_cap, plan.search_grain, plan.search_probes)
    except TimeoutError as exc:
        search = {"largest": None, "note": str(exc)}
    search["length"] = longest
    out["largest_batch"] = search
    return out   # the model and optimizer are freed with this frame (the caller calls _free)


# ----------------------------------------------------------------------------- the grid's cost
#: Rows of each paper task's hub dataset, the splits its card pools (train + validation +
#: test as the dataset cards on the hub give them), before the card's ``max_examples``.
HUB_ROWS: dict[str, int] = {
    "imdb": 50_000,              # stanfordnlp/imdb: train 25,000 + test 25,000
    "rotten_tomatoes": 10_662,   # 8,530 + 1,066 + 1,066
    "allocine": 200_000,         # tblard/allocine: 160,000 + 20,000 + 20,000
    "yelp_polarity": 598_000,    # fancyzhx/yelp_polarity: 560,000 + 38,000
    "amazon_polarity": 400_000,  # fancyzhx/amazon_polarity: the test split the card reads
    "amazon_reviews_de": 168_000,  # mteb/AmazonReviewsClassification de: 210,000 less the 3-star fifth
    "paws": 65_401,              # labeled_final: 49,401 + 8,000 + 8,000
    "stsb": 8_628,               # PhilipMay/stsb_multi_mt en: 5,749 + 1,500 + 1,379
    "stsb_de": 8_628,            # the same pairs in German
}


def split_sizes(card: dict[str, Any], stage: dict[str, Any], rows: dict[str, int]) -> dict[str, int]:
    """Train / validation / test sizes a cell gets from a task card: the hub rows, the
    card's ``max_examples``, itt's split protocol (``itt.data.splits.ratio_indices``) and
    the stage's caps."""
    from itt.data.splits import ratio_indices

    name = str(card.get("name"))
    if name not in rows:
        raise ConfigError(f"Task '{name}': its number of rows is not known here; pass --rows {name}=N "
                          f"(the rows of the splits its card pools).")
    split = card.get("split") or {}
    if split.get("protocol", "ratio") != "ratio":
        raise ConfigError(f"Task '{name}' keeps its dataset's own splits (split.protocol="
                          f"{split.get('protocol')}); the grid cost handles the ratio protocol only.")
    n = int(rows[name])
    if card.get("max_examples") and n > int(card["max_examples"]):
        n = int(card["max_examples"])
    train, val, test = (len(ix) for ix in ratio_indices(n, name, split, 0))
    if stage.get("max_train_examples"):
        train = min(train, int(stage["max_train_examples"]))
    val_cap = stage.get("max_val_examples") or stage.get("max_eval_examples")
    if val_cap:
        val = min(val, int(val_cap))
    if stage.get("max_eval_examples"):
        test = min(test, int(stage["max_eval_examples"]))
    return {"train": train, "validation": val, "test": test}


def stage_seconds(sizes: dict[str, int], stage: dict[str, Any], train_step_s: float, eval_step_s: float,
                  test_passes: int, itt_over_bare: float = 1.0) -> dict[str, float]:
    """Seconds of one stage: training steps (each a full ``max_length`` batch, bare-loop
    step time divided by itt's measured throughput ratio), a validation pass per epoch, and
    ``test_passes`` passes over the test split."""
    epochs = int(stage["epochs"])
    steps = math.ceil(sizes["train"] / int(stage["batch_size"])) * epochs
    if int(stage.get("max_steps") or -1) > 0:
        steps = min(steps, int(stage["max_steps"]) * int(stage.get("grad_accum") or 1))
        epochs = min(epochs, math.ceil(steps / max(1, math.ceil(sizes["train"] / int(stage["batch_size"])))))
    per_epoch = max(1, round(1 / float(stage.get("val_check_interval") or 1.0)))
    ebs = int(stage["eval_batch_size"])
    return {"steps": steps, "train_s": steps * train_step_s / itt_over_bare,
            "validation_s": epochs * per_epoch * math.ceil(sizes["validation"] / ebs) * eval_step_s,
            "test_s": test_passes * math.ceil(sizes["test"] / ebs) * eval_step_s}


def shape_key(stage: dict[str, Any], eval_: bool = False) -> str:
    return f"{int(stage['eval_batch_size' if eval_ else 'batch_size'])}x{int(stage['max_length'])}"


def grid_shapes(cells: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[set, set]:
    """(training, evaluation) batch shapes (batch, length) the cells' stages use."""
    train: set[tuple[int, int]] = set()
    evals: set[tuple[int, int]] = set()
    for _, cfg in cells:
        stages = ["stage2"] + (["stage1"] if _has_stage1(cfg) else [])
        for s in stages:
            train.add((int(cfg[s]["batch_size"]), int(cfg[s]["max_length"])))
            evals.add((int(cfg[s]["eval_batch_size"]), int(cfg[s]["max_length"])))
    return train, evals


def _has_stage1(cfg: dict[str, Any]) -> bool:
    inter = cfg.get("intermediate") or {}
    return bool(inter) and inter.get("type") != "none" and inter.get("name") != "none"


def _zero_shot(cfg: dict[str, Any]) -> bool:
    """Whether the cell also scores the stage-1 model on the target untrained (itt.cell)."""
    from itt.data.cards import card_from_config
    from itt.tasks import get_task_type

    if not _has_stage1(cfg) or not (cfg.get("eval") or {}).get("zero_shot", True):
        return False
    inter, target = card_from_config(cfg["intermediate"], "intermediate"), card_from_config(cfg["target"], "target")
    return bool(get_task_type(target.type).zero_shot_compatible(inter, target))


def grid_cost(cells: Sequence[tuple[dict[str, Any], dict[str, Any]]], measured: dict[str, dict[str, Any]],
              rows: dict[str, int]) -> dict[str, Any]:
    """GPU-hours of a grid: each distinct stage-1 model once (the cache shares it between
    targets), every cell's stage 2 with its evaluations. ``cells``: (plan entry, composed
    config) pairs; ``measured[model]``: ``train_step_s`` / ``eval_step_s`` by shape key and
    ``itt_over_bare`` (None: the bare-loop time is used, and the result says so)."""
    stage1_seen: set[str] = set()
    per_model: dict[str, dict[str, Any]] = {}
    per_cell: list[dict[str, Any]] = []
    missing: set[str] = set()
    for cell, cfg in cells:
        model = str(cell["model"])
        m = measured.get(model)
        pm = per_model.setdefault(model, {"cells": 0, "stage1_models": 0, "stage1_h": 0.0, "stage2_h": 0.0,
                                          "eval_h": 0.0, "itt_over_bare": None})
        pm["cells"] += 1
        new_stage1 = False
        if _has_stage1(cfg):
            key = json.dumps([model, cfg["intermediate"]["name"], cfg["seed"], cfg["stage1"]], sort_keys=True,
                             default=str)
            new_stage1 = key not in stage1_seen
            stage1_seen.add(key)
            pm["stage1_models"] += int(new_stage1)
        if m is None:
            missing.add(model)
            continue
        ratio = m.get("itt_over_bare") or 1.0
        pm["itt_over_bare"] = m.get("itt_over_bare")
        try:
            tr2, ev2 = m["train_step_s"][shape_key(cfg["stage2"])], m["eval_step_s"][shape_key(cfg["stage2"], True)]
        except KeyError as exc:
            raise DataError(f"No measured step time for {model} at batch shape {exc}; the measurement and the "
                            f"plan disagree on batch size or max_length.") from None
        target = cfg["target"]
        s2 = stage_seconds(split_sizes(target, cfg["stage2"], rows), cfg["stage2"], tr2, ev2,
                           len(target.get("eval_languages") or [None]) * (2 if _zero_shot(cfg) else 1), ratio)
        c = {"cell": {k: cell[k] for k in ("model", "intermediate", "target", "seed")},
             "stage2_s": s2["train_s"] + s2["validation_s"] + s2["test_s"], "stage1_s": 0.0}
        pm["stage2_h"] += s2["train_s"] / 3600
        pm["eval_h"] += (s2["validation_s"] + s2["test_s"]) / 3600
        if _has_stage1(cfg):
            tr1 = m["train_step_s"][shape_key(cfg["stage1"])]
            ev1 = m["eval_step_s"][shape_key(cfg["stage1"], True)]
            s1 = stage_seconds(split_sizes(cfg["intermediate"], cfg["stage1"], rows), cfg["stage1"], tr1, ev1, 0,
                               ratio)
            c["stage1_s"] = s1["train_s"] + s1["validation_s"]
            if new_stage1:
                pm["stage1_h"] += s1["train_s"] / 3600
                pm["eval_h"] += s1["validation_s"] / 3600
        per_cell.append(c)
    for pm in per_model.values():
        pm["total_h"] = pm["stage1_h"] + pm["stage2_h"] + pm["eval_h"]
    total = sum(pm["total_h"] for pm in per_model.values())
    itt_cells = [c for c in per_cell if c["stage1_s"] > 0]
    one = max(itt_cells or per_cell, key=lambda c: c["stage1_s"] + c["stage2_s"]) if per_cell else None
    return {"cells": len(cells), "stage1_models": len(stage1_seen), "per_model": per_model,
            "total_gpu_hours": None if missing else total, "measured_gpu_hours": total,
            "models_without_measurement": sorted(missing),
            "costliest_cell": None if one is None else {**one, "hours": (one["stage1_s"] + one["stage2_s"]) / 3600},
            "basis": "every training and evaluation batch at full width (max_length): an upper bound"}


_CELL_LINE = re.compile(r"model=(\S+) intermediate=(\S+) target=(\S+) seed=(\d+)")


def plan_cells(experiment: str, plan_path: Path | None, scratch: Path) -> tuple[list[dict[str, Any]], str]:
    """The cells of a grid: from a sweep's plan.json, or from the dry run's listing
    (``python -m itt.train -m experiment=<name> run.dry_run=true``, which writes nothing)."""
    if plan_path is not None:
        from itt.plan import read_plan

        if plan_path.is_dir():
            plan_path = plan_path / "plan.json"
        data = read_plan(plan_path.parent) if plan_path.name == "plan.json" else None
        if data is None:
            raise DataError(f"--plan {plan_path}: not a readable plan.json (written by a sweep, docs/schemas.md).")
        return list(data["cells"]), f"{plan_path}"
    cmd = [sys.executable, "-m", "itt.train", "-m", f"experiment={experiment}", "run.dry_run=true"]
    env = dict(os.environ, ITT_OUTPUT_DIR=str(scratch / "dry_run"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    cells = [{"model": m, "intermediate": i, "target": t, "seed": int(s),
              "overrides": [f"model={m}", f"intermediate={i}", f"target={t}", f"seed={s}"]}
             for m, i, t, s in _CELL_LINE.findall(proc.stdout)]
    if proc.returncode != 0 or not cells:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"`{' '.join(cmd[1:])}` listed no cells (exit {proc.returncode}: {tail[0]}).")
    return cells, f"python -m itt.train -m experiment={experiment} run.dry_run=true"


def compose_cells(cells: Sequence[dict[str, Any]], experiment: str, gpu: bool) -> list[tuple[dict, dict]]:
    """Each cell with its composed config (cells differing only in seed share one compose)."""
    from itt.config import apply_card_settings

    out: list[tuple[dict, dict]] = []
    memo: dict[tuple, dict] = {}
    for cell in cells:
        over = [o for o in cell.get("overrides") or [] if not o.startswith(("seed=", "experiment="))]
        key = tuple(over)
        if key not in memo:
            memo[key] = apply_card_settings(compose_cfg([f"experiment={experiment}"] + over +
                                                        (["trainer=gpu"] if gpu else [])))
        cfg = dict(memo[key], seed=int(cell.get("seed", 0)))
        out.append((cell, cfg))
    return out


# ----------------------------------------------------------------------------- budget and jobs
class Budget:
    """Wall-clock budget of the whole run; ``reserve`` seconds are kept for writing results."""

    def __init__(self, seconds: float, reserve: float, start: float | None = None) -> None:
        self.deadline = (time.perf_counter() if start is None else start) + float(seconds)
        self.reserve = float(reserve)

    def left(self) -> float:
        return self.deadline - time.perf_counter()


@dataclass
class Job:
    name: str
    kind: str                  # variants | frameworks | shapes | compile
    encoder: str
    run: Callable[[], Any]
    estimate_s: float          # first guess; the last job of the same kind replaces it


def run_jobs(jobs: Sequence[Job], budget: Budget, on_done: Callable[[Job, Any], None],
             log_rows: list[dict[str, Any]] | None = None,
             clock: Callable[[], float] = time.perf_counter) -> list[dict[str, Any]]:
    """Run jobs in order while the budget lasts. A job starts only when the time left, less
    the reserve, covers its estimate (the duration of the last job of its kind, else its own
    guess); the others are listed as skipped with the reason. A failing job is recorded and
    the next one runs. ``log_rows`` receives a row per job as it ends (and is returned);
    ``on_done`` is called after every job that ran, with its result (None if it failed)."""
    log_rows = [] if log_rows is None else log_rows
    took: dict[str, float] = {}
    for job in jobs:
        est = took.get(job.kind, job.estimate_s)
        left = budget.left() - budget.reserve
        if left < est:
            log_rows.append({"job": job.name, "status": "skipped",
                             "note": f"{left:.0f} s of the budget left, this kind of job takes ~{est:.0f} s"})
            log.info("[%s] skipped: %s", job.name, log_rows[-1]["note"])
            continue
        log.info("[%s] ...", job.name)
        t0 = clock()
        try:
            result = job.run()
            status, note = "done", ""
        except Exception as exc:  # noqa: BLE001 - one failing measurement must not lose the others
            log.exception("[%s] failed", job.name)
            result, status, note = None, "failed", f"{type(exc).__name__}: {str(exc)[:300]}"
        took[job.kind] = clock() - t0
        log_rows.append({"job": job.name, "status": status, "seconds": round(took[job.kind], 1), "note": note})
        log.info("[%s] %s in %.0f s", job.name, status, took[job.kind])
        on_done(job, result)
    return log_rows


# ----------------------------------------------------------------------------- report
def _f(x: float | None, fmt: str = "{:.3g}", none: str = "—") -> str:
    return none if x is None else fmt.format(x)


def _limits(res: dict[str, Any]) -> list[str]:
    """Per encoder: the model FLOP rate of the workload's small steps against full-width and
    large batches of the same model (what the per-step cost leaves of the device)."""
    out = []
    for enc in res["encoders"]:
        rows = [r for r in res["variants"].get(enc, []) if not r.get("skipped")]
        sh = res["shapes"].get(enc)
        if not rows or not sh:
            continue
        best = max(rows, key=lambda r: r["tok_per_s"])
        per_step = best["real_tokens"] / max(1, best["steps"])
        parts = [f"{shape} {sh['model_tflop_per_s'][shape]:.3g} TFLOP/s"
                 + (f" (MFU {sh['mfu'][shape]:.1%})" if sh["mfu"].get(shape) is not None else "")
                 for shape in sh["model_tflop_per_s"]]
        mfu_best = f" (MFU {best['mfu']:.1%})" if best.get("mfu") is not None else ""
        out.append(f"- {enc}: the workload's steps carry {per_step:.0f} real tokens on average; its fastest setting "
                   f"({best['variant']}) reaches {best['model_tflop_per_s']:.3g} TFLOP/s{mfu_best}. Full-width "
                   f"batches ({sh['variant']}): {', '.join(parts)}.")
    return out


def markdown(res: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of a run."""
    tiny = res["tiny"]
    dev = res["device"]
    lines = [f"## 7b. GPU throughput, MFU and the paper grid's cost — {dev}", ""]
    if tiny:
        lines += [f"**Test run with tiny encoders on {dev}: these are not GPU figures.** They show the script "
                  f"works end to end (`--tiny`); the same command without `--tiny` on a GPU measures the base "
                  f"encoders.", ""]
    peak = (f"{res['peak_flops'] / 1e12:.0f} TFLOP/s dense bf16" if res["peak_flops"]
            else "none: this device has no vendor peak, so no MFU")
    lines += [f"Command: `{res['command']}` ({res['seconds']:.0f} s of a {res['budget_s']:.0f} s budget). "
              f"Encoders: published configs with random weights "
              f"({', '.join(ENCODERS[e]['hub'] for e in res['encoders'])}"
              f"{'; tiny shapes' if tiny else ''}). Texts: {res['texts']}. Training lengths (tokens): "
              f"{res['lengths']}. Peak for MFU: {peak} "
              f"(`benchmarks/mfu.py`; fp32 rows are divided by the same bf16 peak). "
              f"float32 matmul precision: `{res['float32_matmul_precision']}`.", ""]
    lines += ["### Training throughput by setting (bare loop, length-grouped batches)", "",
              "| encoder | setting | tokens/s | model TFLOP/s | MFU | peak memory (GiB) | warm-up (s) |",
              "|---|---|---|---|---|---|---|"]
    for enc in res["encoders"]:
        for row in res["variants"].get(enc, []):
            if row.get("skipped"):
                lines.append(f"| {enc} | {row['variant']} | — | — | — | — | {row['skipped']} |")
                continue
            recompiled = row.get("graphs_compiled_while_timed")
            note = f" ({recompiled} graphs compiled while timed: includes compilation)" if recompiled else ""
            lines.append(f"| {enc} | {row['variant']}{note} | {row['tok_per_s']:,.0f} | "
                         f"{row['model_tflop_per_s']:.3g} | "
                         f"{_f(row['mfu'], '{:.1%}')} | {_f(row['peak_memory_gib'], '{:.2f}')} | {row['warmup_s']} |")
    lines.append("")
    for enc, why in res.get("sdpa_fallback", {}).items():
        lines.append(f"- {enc}: no SDPA attention in transformers ({why}); every row runs its eager attention "
                     f"(two-stream relative attention in einsum ops), and the compile row compiles that.")
    lines += ["- MFU counts 6·N·T + 12·L·d·T² FLOPs per sequence of T real tokens (N non-embedding parameters); "
              "XLNet's relative-position terms are extra work the formula does not count.", ""]
    if res["frameworks"]:
        lines += ["### itt's training path against a bare loop and transformers' Trainer", "",
                  "| encoder | precision / attention | epochs | itt tok/s | bare tok/s | Trainer tok/s | itt / bare | "
                  "itt / Trainer | accuracy itt / bare / Trainer | same batches (itt, bare) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for enc, fw in res["frameworks"].items():
            med = {k: statistics.median(r["tok_per_s"] for r in fw[k]) for k in ("itt", "bare", "hf")}
            acc = " / ".join(f"{statistics.mean(r['accuracy'] for r in fw[k]):.3f}" for k in ("itt", "bare", "hf"))
            lines.append(f"| {enc} | {fw['precision']} / {fw['attention']} | {fw['epochs']} | {med['itt']:,.0f} | "
                         f"{med['bare']:,.0f} | {med['hf']:,.0f} | {statistics.median(fw['itt_over_bare']):.3f} | "
                         f"{statistics.median(fw['itt_over_hf']):.3f} | {acc} | {fw['same_batches']} |")
        lines += ["", "itt: `itt.stages.fit` on the ITTModule (per-epoch validation off; throughput counts training "
                  "time). Bare: the plain loop on the same loader. Trainer: `train_sampling_strategy="
                  "\"group_by_length\"`, its own batches of the same examples. Accuracy: held-out test split "
                  "after training, scored by itt's `predict` for all three.", ""]
    if res["shapes"]:
        lines += ["### Full-width batches: the grid's shapes, MFU, memory and the largest batch", "",
                  "Synthetic batches with every sequence at the length, on the fastest setting above without "
                  "compile; the last shape is a large reference batch, where per-step launch costs are amortised.",
                  "", "| encoder | setting | batch×length | training step (s) | model TFLOP/s | MFU | "
                  "peak memory (GiB) |",
                  "|---|---|---|---|---|---|---|"]
        for enc, sh in res["shapes"].items():
            steps = dict(sh["train_step_s"])
            if sh.get("reference"):
                steps[sh["reference"]["shape"]] = sh["reference"]["step_s"]
            for shape, step in steps.items():
                lines.append(f"| {enc} | {sh['variant']} | {shape} | {step:.4g} | "
                             f"{sh['model_tflop_per_s'][shape]:.3g} | {_f(sh['mfu'].get(shape), '{:.1%}')} | "
                             f"{_f(sh['peak_memory_gib'].get(shape), '{:.2f}')} |")
        lines += ["", "| encoder | evaluation step (s) by batch×length | largest training batch |", "|---|---|---|"]
        for enc, sh in res["shapes"].items():
            lb = sh["largest_batch"]
            if lb.get("largest") is None:
                big = lb.get("note") or "none fitted"
            else:
                big = f"{lb['largest']} × {lb['length']}"
                if lb.get("first_failing") is None and lb["largest"] >= lb["cap"]:
                    big += " (the search's cap: nothing failed)"
                elif lb.get("first_failing") is not None:
                    big += f" ({lb['first_failing']} fails)" if lb["exact"] else \
                        f" (at least; {lb['first_failing']} fails; probes ran out)"
            lines.append(f"| {enc} | " + ", ".join(f"{k}: {v:.4g}" for k, v in sh["eval_step_s"].items())
                         + f" | {big} |")
        lines.append("")
    limits = _limits(res)
    if limits:
        lines += ["### Tokens per step and model FLOP rate", ""] + limits + [""]
    g = res.get("grid")
    if g:
        lines += [f"### The `{res['experiment']}` grid's cost{' (TINY CPU TEST, NOT GPU FIGURES)' if tiny else ''}", ""]
        if g.get("error"):
            lines += [f"Not computed: {g['error']}", ""]
        else:
            lines += [f"Cells from `{g['plan_source']}`: {g['cells']} cells, {g['stage1_models']} stage-1 models. "
                      f"Rows per task: {', '.join(f'{k} {v:,}' for k, v in sorted(g['rows'].items()))} (HUB_ROWS, "
                      f"before each card's max_examples). {g['basis']}.", "",
                      "| encoder | cells | stage-1 models | stage 1 (h) | stage 2 (h) | evaluation (h) | total (h) | "
                      "itt / bare applied |", "|---|---|---|---|---|---|---|---|"]
            for model, pm in g["per_model"].items():
                if model in g["models_without_measurement"]:
                    lines.append(f"| {model} | {pm['cells']} | — | — | — | — | not measured | — |")
                    continue
                lines.append(f"| {model} | {pm['cells']} | {pm['stage1_models']} | {pm['stage1_h']:.3g} | "
                             f"{pm['stage2_h']:.3g} | {pm['eval_h']:.3g} | {pm['total_h']:.3g} | "
                             f"{_f(pm['itt_over_bare'], '{:.3f}', '1 (not measured)')} |")
            total = g["total_gpu_hours"]
            lines.append("")
            lines.append(f"Whole grid: {_f(total, '{:.3g}')} {'GPU-hours' if not tiny else 'hours (tiny CPU test)'}"
                         + ("" if total is not None else
                            f" (no measurement for {', '.join(g['models_without_measurement'])}; "
                            f"the measured part: {g['measured_gpu_hours']:.3g} h)") + ".")
            one = g.get("costliest_cell")
            if one:
                c = one["cell"]
                lines.append(f"Costliest cell ({c['model']} {c['intermediate']} → {c['target']}, seed {c['seed']}): "
                             f"{one['hours']:.3g} h, stage 1 {one['stage1_s'] / 3600:.3g} h (shared by the targets "
                             f"of its field) and stage 2 {one['stage2_s'] / 3600:.3g} h.")
            lines.append("")
    lines += ["### Jobs", "", "| job | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {j['job']} | {j['status']} | {j.get('seconds', '—')} | {j.get('note', '')} |" for j in res["jobs"]]
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def _parse_rows(items: Sequence[str]) -> dict[str, int]:
    rows = dict(HUB_ROWS)
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value.isdigit():
            raise ConfigError(f"--rows {item!r}: expected TASK=N (N a whole number of rows).")
        rows[name] = int(value)
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for gpu_bench.json and gpu_bench.md")
    p.add_argument("--time-budget-s", type=float, default=420.0, help="wall-clock budget of the whole run")
    p.add_argument("--tiny", action="store_true", help="tiny encoders and a few steps: a test, not figures")
    p.add_argument("--encoders", default=",".join(ENCODERS), help=f"subset of {','.join(ENCODERS)}")
    p.add_argument("--experiment", default="paper", help="the grid whose cost is computed (default paper)")
    p.add_argument("--plan", type=Path, default=None, help="a sweep's plan.json (default: the dry run's cells)")
    p.add_argument("--rows", action="append", default=[], metavar="TASK=N", help="rows of a task's dataset")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    p.add_argument("--synthetic", action="store_true", help="generated text even where the offline suite exists")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    try:
        return _run(args, argv)
    except (ConfigError, DataError) as exc:
        print(f"gpu_bench: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    start = time.perf_counter()
    import torch

    from benchmarks.run import _quiet

    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    for e in encoders:
        arch_config(e, args.tiny)
    if args.time_budget_s <= 0:
        raise ConfigError(f"--time-budget-s must be positive, got {args.time_budget_s}.")
    rows = _parse_rows(args.rows)
    _quiet()
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    if args.threads:
        set_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    plan = PLAN_TINY if args.tiny else PLAN_GPU
    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        log.warning("no CUDA device: figures of this run are CPU figures (use --tiny for the test run)")
    budget = Budget(args.time_budget_s, reserve=5.0 if args.tiny else 20.0, start=start)
    res: dict[str, Any] = {
        "schema": "itt.gpu_bench/1", "tiny": bool(args.tiny), "cuda": cuda, "device": _device_name(),
        "command": "python -m benchmarks.gpu_bench " + " ".join(argv), "budget_s": args.time_budget_s,
        "encoders": encoders, "experiment": args.experiment, "peak_flops": mfu.peak_flops() if cuda else None,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "machine": machine_info(Settings(threads=torch.get_num_threads())),
        "variants": {}, "frameworks": {}, "shapes": {}, "sdpa_fallback": {}, "jobs": [], "grid": None,
        "texts": "", "lengths": "", "seconds": 0.0}

    def save() -> None:
        res["seconds"] = time.perf_counter() - start
        (args.out / "gpu_bench.json").write_text(json.dumps(res, indent=1, default=str))
        (args.out / "gpu_bench.md").write_text(markdown(res))

    with tempfile.TemporaryDirectory(prefix="itt-gpu-bench-") as tmp:
        scratch = Path(tmp)
        # The grid first: its batch shapes are what the shape jobs time.
        cells, source = plan_cells(args.experiment, args.plan, scratch)
        composed = compose_cells(cells, args.experiment, cuda)
        train_shapes, eval_shapes = grid_shapes(composed)
        task_names = {c[1]["target"]["name"] for c in composed} | {c[1]["intermediate"]["name"] for c in composed}
        log.info("grid: %d cells; training shapes %s, evaluation shapes %s", len(cells), sorted(train_shapes),
                 sorted(eval_shapes))
        workloads: dict[str, ArchWorkload] = {}

        def wl_of(name: str) -> ArchWorkload:
            if name not in workloads:
                log.info("building the %s workload ...", name)
                workloads[name] = build_workload(name, plan.sizes, tiny=args.tiny, lr=plan.lr, synthetic=args.synthetic)
                w = workloads[name]
                if not res["texts"]:
                    s = w.length_summary()
                    res["texts"] = (f"{w.source}; train {len(w.tok['train'])}, test {len(w.tok['test']['en'])}, "
                                    f"max_length {w.sizes.max_length}, batch {w.stage['batch_size']}, "
                                    f"lr {w.stage['lr']}")
                    res["lengths"] = (f"median {s['median']:.0f}, mean {s['mean']:.1f}, p90 {s['p90']:.0f}, "
                                      f"max {s['max']} ({w.tokenizer.vocab_size} tokens in the {name} tokenizer; "
                                      f"each architecture's kind, WordPiece / byte-level BPE / Unigram, "
                                      f"trained on the training texts)")
                why = sdpa_support(w.hf_config)
                if why:
                    res["sdpa_fallback"][name] = why
            return workloads[name]

        def best_setting(name: str) -> tuple[str, str, str]:
            """The fastest measured setting without compile (the grid runs without it by default)."""
            rows_ = [r for r in res["variants"].get(name, []) if not r.get("skipped") and not r["compile"]]
            if not rows_:
                w = wl_of(name)
                return "trainer default", w.cfg["trainer"].get("precision", "32-true"), w.attn
            r = max(rows_, key=lambda r: r["tok_per_s"])
            return r["variant"], r["precision"], r["attention"]

        def variants_job(name: str, compiled: bool) -> Callable[[], list[dict[str, Any]]]:
            def run() -> list[dict[str, Any]]:
                w = wl_of(name)
                out = []
                for key, precision, attn, comp in VARIANTS:
                    if comp != compiled:
                        continue
                    if attn == "sdpa" and name in res["sdpa_fallback"]:
                        if not comp:
                            out.append({"variant": key, "skipped": "no SDPA in transformers for this architecture "
                                                                   "(runs eager: the bf16 row)"})
                            continue
                        key, attn = "bf16_eager_compile", "eager"
                    if not cuda and not args.tiny and precision != "32-true":
                        out.append({"variant": key, "skipped": "bf16 rows need a GPU (or --tiny)"})
                        continue
                    if budget.left() < budget.reserve + 5:
                        out.append({"variant": key, "skipped": "time budget spent"})
                        continue
                    log.info("  %s %s", name, key)
                    out.append(measure_variant(w, key, precision, attn, comp, plan, budget))
                return out
            return run

        def frameworks_job(name: str) -> Callable[[], dict[str, Any]]:
            return lambda: frameworks(wl_of(name), plan, scratch)

        def shapes_job(name: str) -> Callable[[], dict[str, Any]]:
            def run() -> dict[str, Any]:
                key, precision, attn = best_setting(name)
                out = measure_shapes(wl_of(name), key, precision, attn, train_shapes, eval_shapes, plan, budget)
                _free()
                return out
            return run

        def update_grid() -> None:
            """The grid's cost from what is measured so far (shapes; itt / bare where measured)."""
            measured: dict[str, dict[str, Any]] = {}
            for e, sh in res["shapes"].items():
                fw = res["frameworks"].get(e)
                measured[e] = {"train_step_s": sh["train_step_s"], "eval_step_s": sh["eval_step_s"],
                               "itt_over_bare": statistics.median(fw["itt_over_bare"]) if fw else None}
            try:
                g = grid_cost(composed, measured, rows)
                g.update(plan_source=source, rows={k: v for k, v in rows.items() if k in task_names})
            except (ConfigError, DataError) as exc:
                g = {"error": str(exc)}
            res["grid"] = g

        def on_done(job: Job, result: Any) -> None:
            if result is None:
                pass
            elif job.kind in ("variants", "compile"):
                res["variants"].setdefault(job.encoder, []).extend(result)
            elif job.kind == "frameworks":
                res["frameworks"][job.encoder] = result
            elif job.kind == "shapes":
                res["shapes"][job.encoder] = result
            if job.kind in ("frameworks", "shapes"):
                update_grid()
            save()

        scale = 0.2 if args.tiny else 1.0
        first, rest = encoders[:1], encoders[1:]
        grid_models = {str(c["model"]) for c in cells}
        ordered_rest = [e for e in rest if e in grid_models] + [e for e in rest if e not in grid_models]
        jobs: list[Job] = []
        for e in first:
            jobs += [Job(f"{e}: settings", "variants", e, variants_job(e, False), 60 * scale),
                     Job(f"{e}: itt / bare / Trainer", "frameworks", e, frameworks_job(e), 60 * scale),
                     Job(f"{e}: grid shapes and memory", "shapes", e, shapes_job(e), 40 * scale)]
        for e in ordered_rest:
            jobs += [Job(f"{e}: settings", "variants", e, variants_job(e, False), 60 * scale),
                     Job(f"{e}: grid shapes and memory", "shapes", e, shapes_job(e), 40 * scale)]
        if not args.no_compile:
            jobs += [Job(f"{e}: torch.compile", "compile", e, variants_job(e, True), 150 * scale) for e in first]
        jobs += [Job(f"{e}: itt / bare / Trainer", "frameworks", e, frameworks_job(e), 60 * scale)
                 for e in ordered_rest]
        if not args.no_compile:
            jobs += [Job(f"{e}: torch.compile", "compile", e, variants_job(e, True), 150 * scale) for e in ordered_rest]
        run_jobs(jobs, budget, on_done, res["jobs"])
        update_grid()
        save()
    log.info("wrote %s and %s (%.0f s)", args.out / "gpu_bench.json", args.out / "gpu_bench.md", res["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
