"""Items 1-3 of the issue: itt's training path against a bare loop (1), against
transformers' Trainer at its best, with accuracy (2), and itt's batching against padding
to the maximum length and against random order (3).

Throughput is real (non-pad) tokens per second. Short runs train on a stratified sample of
an epoch's batches (see ``RecordedBatches``): every contender of a round trains on the very
same batches, and a sample keeps a round short enough that the machine's load barely moves
within it. Accuracy needs whole epochs; those runs also give the per-epoch times of item 2.
"""
from __future__ import annotations

import copy
import statistics
from typing import Any, Callable

import numpy as np

from benchmarks import mfu, runners
from benchmarks.common import Goal, Section, Settings, fmt_s, interleave, ratio_stats
from benchmarks.workload import Workload


def _plan(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"train_sample": None, "train_rounds": 1, "hf_epochs": 1, "hf_seeds": [0], "grouped_sample": None,
                "random_sample": None, "max_sample": None, "batching_rounds": 1}
    return {"train_sample": 8, "train_rounds": 12, "hf_epochs": 1, "hf_seeds": [0, 1, 2], "grouped_sample": 16,
            "random_sample": 6, "max_sample": 4, "batching_rounds": 3}


def default_batching(wl: Workload) -> tuple[str, str, str]:
    """itt's default training batching (conf/ and itt/schema.py): (mode, words, overrides)."""
    d = wl.cfg["data"]
    if d["batching"] == "length_grouped":
        f = int(d["mega_batch_factor"])
        return ("length_grouped", f"length-grouped in shuffled mega-batches of {f} batches",
                f"data.batching=length_grouped, data.mega_batch_factor={f}")
    return d["batching"], f"{d['batching']} order", f"data.batching={d['batching']}"


def _variant(wl: Workload, **trainer: Any) -> Workload:
    out = copy.copy(wl)
    out.cfg = copy.deepcopy(wl.cfg)
    out.cfg["trainer"].update(trainer)
    return out


def _tps(results: list[dict[str, Any]]) -> list[float]:
    return [r["tok_per_s"] for r in results]


def _model_flops(wl: Workload, batches: list[list[int]]) -> float:
    enc = wl.encoder()
    layers, hidden = mfu.model_shape(enc)
    n = mfu.non_embedding_params(enc)
    lengths = wl.tok["train"].lengths
    return mfu.flops_per_sequence(n, layers, hidden, np.concatenate([lengths[b] for b in batches]))


# ----------------------------------------------------------------------------- item 1
def training(settings: Settings, wl: Workload) -> Section:
    """itt's training path (``stages.fit``) against the bare loop, same batches."""
    plan = _plan(settings)
    sec = Section("training", "1. Training throughput: itt's training path against a bare PyTorch loop",
                  settings.command("training"))
    k = plan["train_sample"]
    mode, words, _ = default_batching(wl)
    n_batches = len(runners.train_loader(wl, mode)[1])
    recs: dict[str, Any] = {}

    def contender(kind: str) -> Callable[[int], dict[str, Any]]:
        def run(r: int) -> dict[str, Any]:
            loader, rec = runners.train_loader(wl, mode, sample=k)
            recs[kind] = rec
            if kind == "bare":
                return runners.run_bare(wl, loader, rec)
            return runners.run_itt(wl, loader, rec, validate=False, work_dir=settings.work_dir)
        return run

    if not settings.quick:   # first-call costs (allocator, lazy imports) out of the first round
        warm_loader, warm_rec = runners.train_loader(wl, mode, sample=min(4, n_batches))
        runners.run_bare(wl, warm_loader, warm_rec)
        runners.run_itt(wl, *runners.train_loader(wl, mode, sample=min(4, n_batches)), validate=False,
                        work_dir=settings.work_dir)
    res = interleave({"bare": contender("bare"), "itt": contender("itt")}, plan["train_rounds"], settings.log)
    ratio = ratio_stats(_tps(res["itt"]), _tps(res["bare"]))
    fixed = statistics.median(r["fixed_seconds"] for r in res["itt"])
    sec.data.update(ratio=ratio.ratios, bare_tok_per_s=_tps(res["bare"]), itt_tok_per_s=_tps(res["itt"]))
    steps = res["bare"][0]["steps"]
    sec.add(f"Same batches for both sides in a round: {steps} of an epoch's {n_batches} batches (itt's default "
            f"batching: {words}; one from each width stratum), {plan['train_rounds']} rounds, alternating order"
            f"{'' if settings.quick else ', after one warm-up run each'}. itt's side is `itt.stages.fit` as a "
            f"cell calls it (Lightning Trainer with its callbacks, the ITTModule of `itt.builders.build_module`, the loader of `itt.builders.make_loaders`, trainer settings from "
            f"conf/, progress bar {'on' if wl.cfg['trainer'].get('enable_progress_bar') else 'off'}); its time is "
            f"the training span between the module's epoch-start and validation-start hooks. The bare side is a "
            f"plain loop over the same loader (forward, loss, backward, clipping, AdamW with itt's parameter "
            f"groups, linear schedule).", "")
    sec.table(["contender", "real tokens/s (median)", "ratio to bare loop"], [
        ["bare PyTorch loop", f"{statistics.median(_tps(res['bare'])):,.0f}", "1"],
        ["itt (`stages.fit`)", f"{statistics.median(_tps(res['itt'])):,.0f}", ratio.fmt()],
    ])
    sec.add(f"Per `fit` call, outside the training span: Trainer setup and teardown {fixed:.2f} s (median).", "")
    flops = _model_flops(wl, recs["bare"].seen)
    secs = statistics.median(r["seconds"] for r in res["bare"])
    import torch

    if torch.cuda.is_available():
        util = mfu.mfu(flops, secs)
        sec.add(f"Model FLOPs utilisation (bare loop, {torch.cuda.get_device_name(0)}): "
                f"{'unknown peak' if util is None else f'{100 * util:.1f}%'} "
                f"({flops / secs / 1e12:.2f} TFLOP/s of model FLOPs).", "")
        sec.data["mfu"] = util
    else:
        peak = mfu.matmul_flops_per_s(256 if settings.quick else 1024)
        sec.add(f"Model FLOPs per second (CPU, bare loop): {flops / secs / 1e9:.2f} GFLOP/s, "
                f"{100 * flops / secs / peak:.0f}% of this process's dense matmul rate "
                f"({peak / 1e9:.1f} GFLOP/s) measured right after; MFU against a vendor peak is reported on a GPU.",
                "")
    sec.goals.append(Goal("itt training path / bare loop (real tokens/s)", ratio.median, 0.98))
    overhead = framework_overhead(settings, wl)
    step_ms = 1000 * statistics.median(r["seconds"] / r["steps"] for r in res["bare"])
    sec.add(f"Framework cost per step, measured apart: the same two loops with a trivial encoder (an embedding "
            f"lookup), {overhead['steps']} steps, {overhead['rounds']} rounds: bare loop "
            f"{overhead['bare_ms']:.2f} ms per step, itt's path {overhead['itt_ms']:.2f} ms, so itt's loop adds "
            f"{overhead['itt_ms'] - overhead['bare_ms']:.2f} ms per step (the Lightning Trainer's hooks, "
            f"`self.log` on the steps the loggers take, batch transfer, progress bar); with the progress bar off "
            f"(`trainer.enable_progress_bar=false`) itt's path takes {overhead['itt_no_bar_ms']:.2f} ms per step "
            f"(adds {overhead['itt_no_bar_ms'] - overhead['bare_ms']:.2f} ms). "
            f"Against this workload's {step_ms:.0f} ms per step that is "
            f"{100 * (overhead['itt_ms'] - overhead['bare_ms']) / step_ms:.1f}%; a step has to take at least "
            f"{50 * (overhead['itt_ms'] - overhead['bare_ms']):.0f} ms for it to stay under 2%.", "")
    sec.data.update(framework_ms=overhead, step_ms=step_ms)
    return sec


def framework_overhead(settings: Settings, wl: Workload) -> dict[str, Any]:
    """Per-step time of itt's loop and of the bare loop around a model that costs nothing."""
    steps = 12 if settings.quick else 200
    rounds = 1 if settings.quick else 3
    vocab = int(wl.tokenizer.vocab_size) + 8

    no_bar = _variant(wl, enable_progress_bar=False)

    def run(kind: str) -> Callable[[int], dict[str, Any]]:
        def go(r: int) -> dict[str, Any]:
            w = no_bar if kind == "itt_no_bar" else wl
            loader, rec = runners.train_loader(w, default_batching(w)[0], sample=steps)
            encoder = runners.TrivialEncoder(vocab)
            if kind == "bare":
                return runners.run_bare(w, loader, rec, encoder=encoder)
            return runners.run_itt(w, loader, rec, validate=False, encoder=encoder, work_dir=settings.work_dir)
        return go

    warm = 0 if settings.quick else 1
    res = interleave({k: run(k) for k in ("bare", "itt", "itt_no_bar")}, rounds + warm)
    per = {k: [1000 * r["seconds"] / r["steps"] for r in v[warm:]] for k, v in res.items()}   # warm-up dropped
    return {"bare_ms": statistics.median(per["bare"]), "itt_ms": statistics.median(per["itt"]),
            "itt_no_bar_ms": statistics.median(per["itt_no_bar"]), "steps": res["bare"][-1]["steps"],
            "rounds": rounds, "progress_bar": bool(wl.cfg["trainer"].get("enable_progress_bar"))}


# ----------------------------------------------------------------------------- item 2
def versus_hf(settings: Settings, wl: Workload) -> Section:
    """itt's default path against transformers' Trainer with length grouping, with the
    accuracy of both; where itt's default is not length grouping, itt with length grouping
    (opt-in) runs beside them, the like-for-like comparison."""
    plan = _plan(settings)
    sec = Section("hf", "2. itt's default path against transformers' Trainer at its best, and accuracy",
                  settings.command("hf"))
    try:
        import accelerate  # noqa: F401  - transformers' Trainer requires it
    except ImportError:
        sec.add("Not measured: transformers' `Trainer` needs the `accelerate` package, which is not installed "
                "(`pip install accelerate`).")
        sec.goals.append(Goal("itt default / transformers Trainer (group_by_length), epoch time", None, 1.0))
        return sec
    from transformers import TrainingArguments  # noqa: F401

    epochs = plan["hf_epochs"]
    dataset = runners.hf_dataset(wl.tok["train"])
    mode, words, overrides = default_batching(wl)

    def itt(seed: int, batching: str = mode) -> Callable[[int], dict[str, Any]]:
        def run(r: int) -> dict[str, Any]:
            loader, rec = runners.train_loader(wl, batching, seed=seed)
            return runners.run_itt(wl, loader, rec, epochs=epochs, seed=seed, score=True, work_dir=settings.work_dir)
        return run

    def hf(seed: int) -> Callable[[int], dict[str, Any]]:
        def run(r: int) -> dict[str, Any]:
            return runners.run_hf(wl, dataset, epochs=epochs, seed=seed, score=True, work_dir=settings.work_dir)
        return run

    res: dict[str, list[dict[str, Any]]] = {"itt": [], "hf": []}
    opt_in = mode != "length_grouped"
    if opt_in:
        res["itt_grouped"] = []
    for i, seed in enumerate(plan["hf_seeds"]):
        runs = {"itt": itt(seed), "hf": hf(seed)}
        if opt_in:
            runs["itt_grouped"] = itt(seed, "length_grouped")
        names = list(runs) if i % 2 == 0 else list(runs)[::-1]
        out = interleave({n: runs[n] for n in names}, 1, settings.log)
        for name in res:
            res[name] += out[name]
    train_ratio = ratio_stats([r["train_seconds"] for r in res["hf"]], [r["train_seconds"] for r in res["itt"]])
    whole_ratio = ratio_stats([r["fit_seconds"] for r in res["hf"]], [r["fit_seconds"] for r in res["itt"]])
    grouped_ratio = ratio_stats([r["train_seconds"] for r in res["hf"]],
                                [r["train_seconds"] for r in res["itt_grouped"]]) if opt_in else None
    strategy = runners.hf_strategy_arg()
    sec.add(f"{epochs} epoch(s) on all {len(wl.tok['train'])} training examples per run, seeds "
            f"{plan['hf_seeds']} (same initial weights per seed for both), one round per seed, alternating order. "
            f"transformers' Trainer: `{strategy}=\"group_by_length\"` with precomputed lengths, "
            f"`DataCollatorWithPadding`, same model, batch size, learning rate, schedule, weight decay and "
            f"clipping; no evaluation, saving, logging or progress bar; its default optimizer (fused AdamW). "
            f"itt: `stages.fit` with the default batching ({words}: `{overrides}`), validating and "
            f"writing its two checkpoints every epoch as a cell does"
            + (f"; beside them, itt with length grouping (`data.batching=length_grouped`, mega-batch factor "
               f"{int(wl.cfg['data']['mega_batch_factor'])}, opt-in), the like-for-like comparison with the "
               f"Trainer's grouping" if opt_in else "")
            + f". Accuracy: held-out test split ({len(wl.tok['test']['en'])} examples), scored by itt's `predict` "
              f"for all.", "")
    acc = {name: [r["accuracy"] for r in res[name]] for name in res}
    sec.table(["contender", "epoch time (training, median)", "whole run incl. setup (median)",
               "held-out accuracy (mean ± sd)"], [
        [f"itt ({words})", fmt_s(statistics.median(r["train_seconds"] for r in res["itt"])),
         fmt_s(statistics.median(r["fit_seconds"] for r in res["itt"])), _mean_sd(acc["itt"])],
        ["transformers Trainer (group_by_length)", fmt_s(statistics.median(r["train_seconds"] for r in res["hf"])),
         fmt_s(statistics.median(r["fit_seconds"] for r in res["hf"])), _mean_sd(acc["hf"])],
    ] + ([[f"itt, length-grouped in shuffled mega-batches of {int(wl.cfg['data']['mega_batch_factor'])} batches "
           f"(opt-in)", fmt_s(statistics.median(r["train_seconds"] for r in res["itt_grouped"])),
           fmt_s(statistics.median(r["fit_seconds"] for r in res["itt_grouped"])), _mean_sd(acc["itt_grouped"])]]
         if opt_in else []))
    val = statistics.median(r["val_seconds"] for r in res["itt"])
    ckpt = statistics.median(r["ckpt_seconds"] for r in res["itt"])
    epoch = statistics.median(r["train_seconds"] for r in res["itt"]) / epochs
    sec.add(f"Speed-up of itt over the Trainer (Trainer time / itt time, per round): training epochs "
            f"{train_ratio.fmt()}; whole runs, itt's per-epoch validation and checkpoints included, "
            f"{whole_ratio.fmt()}."
            + (f" itt with length grouping (opt-in) over the Trainer: training epochs {grouped_ratio.fmt()}."
               if opt_in else ""),
            f"itt's per-epoch extras: validation {val:.2f} s ({100 * val / epoch:.1f}% of an epoch's training), "
            f"writing best.ckpt and last.ckpt {ckpt:.2f} s ({100 * ckpt / epoch:.1f}%).", "")
    sec.data.update(itt_accuracy=acc["itt"], hf_accuracy=acc["hf"], train_ratio=train_ratio.ratios,
                    whole_ratio=whole_ratio.ratios, checkpoint_share=ckpt / epoch, default_batching=mode,
                    grouped_accuracy=acc.get("itt_grouped"),
                    grouped_ratio=grouped_ratio.ratios if grouped_ratio else None)
    opt = optimizer_step(wl, 1 if settings.quick else 5)
    sec.add(f"AdamW step of this model on its own ({opt['params'] / 1e6:.2f} M parameters, {opt['rounds']} "
            f"interleaved rounds of {opt['steps']} steps): multi-tensor (`foreach`, torch's default on a CPU) "
            f"{opt['foreach_ms']:.2f} ms, fused {opt['fused_ms']:.2f} ms; ITTModule uses the fused kernel on CPU "
            f"and CUDA (the Trainer's default `adamw_torch_fused` does too).", "")
    sec.data.update(optimizer=opt)
    sec.goals.append(Goal("itt default / transformers Trainer (group_by_length): training epoch speed", train_ratio.median,
                          1.0, note=f"accuracy itt {_mean_sd(acc['itt'])} vs Trainer {_mean_sd(acc['hf'])}"))
    sec.add("How the default batching was chosen, by accuracy against random order over 3 seeds on two "
            "workloads: section 3b.", "")
    return sec


def optimizer_step(wl: Workload, rounds: int, steps: int = 20) -> dict[str, Any]:
    """Time of one AdamW step (random gradients) with the multi-tensor and the fused kernel."""
    import time

    import torch

    params = [p for p in wl.encoder().parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)

    def timed(**kwargs: Any) -> Callable[[int], dict[str, float]]:
        def run(r: int) -> dict[str, float]:
            opt = torch.optim.AdamW(params, lr=1e-6, **kwargs)
            opt.step()
            start = time.perf_counter()
            for _ in range(steps):
                opt.step()
            return {"seconds": (time.perf_counter() - start) / steps}
        return run

    res = interleave({"foreach": timed(foreach=True), "fused": timed(fused=True)}, rounds)
    return {"foreach_ms": 1000 * statistics.median(r["seconds"] for r in res["foreach"]),
            "fused_ms": 1000 * statistics.median(r["seconds"] for r in res["fused"]),
            "params": sum(p.numel() for p in params), "rounds": rounds, "steps": steps}


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f} (1 seed)"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


# ----------------------------------------------------------------------------- item 3
def padding_efficiency(lengths: np.ndarray, batch_size: int, mode: str, max_length: int, mega: int = 50,
                       seed: int = 0) -> float:
    """Real tokens / tokens computed over one whole epoch of ``mode``'s batches."""
    from itt.data.batching import LengthGroupedBatchSampler

    if mode == "max_length":
        return float(lengths.sum() / (len(lengths) * max_length))
    if mode == "hf_group_by_length":
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        idx = np.asarray(get_length_grouped_indices(lengths.tolist(), batch_size,
                                                    generator=torch.Generator().manual_seed(seed)))
        batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    else:
        batches = list(LengthGroupedBatchSampler(lengths, batch_size, mode, mega, seed))
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    return float(lengths.sum() / padded)


def batching(settings: Settings, wl: Workload) -> Section:
    """itt's default batching against per-batch padding in random order and against
    padding every batch to ``max_length``; all through itt's training path."""
    plan = _plan(settings)
    sec = Section("batching", "3. Batching: itt's default against random order and against padding to max length",
                  settings.command("batching"))
    max_len = wl.sizes.max_length
    lengths = wl.tok["train"].lengths
    default, words, _ = default_batching(wl)
    sample = {"length_grouped": plan["grouped_sample"], "random": plan["random_sample"]}
    modes = {"default": (default, None, sample.get(default, plan["grouped_sample"]))}
    if default != "length_grouped":   # grouping, opt-in: what it would gain
        modes["length_grouped"] = ("length_grouped", None, plan["grouped_sample"])
    if default != "random":
        modes["random"] = ("random", None, plan["random_sample"])
    modes["max_length"] = ("random", max_len, plan["max_sample"])

    def contender(name: str) -> Callable[[int], dict[str, Any]]:
        mode, pad_to, k = modes[name]

        def run(r: int) -> dict[str, Any]:
            loader, rec = runners.train_loader(wl, mode, sample=k, pad_to=pad_to)
            return runners.run_itt(wl, loader, rec, pad_to=pad_to, validate=False, work_dir=settings.work_dir)
        return run

    if not settings.quick:   # warm-up
        runners.run_itt(wl, *runners.train_loader(wl, default, sample=2), validate=False,
                        work_dir=settings.work_dir)
    res = interleave({m: contender(m) for m in modes}, plan["batching_rounds"], settings.log)
    vs_max = ratio_stats(_tps(res["default"]), _tps(res["max_length"]))
    # Random order as the default is its own yardstick: a ratio of 1 by definition.
    vs_random = ratio_stats(_tps(res["default"]), _tps(res["random"] if "random" in res else res["default"]))
    bs = wl.sizes.batch_size
    eff = {m: padding_efficiency(lengths, bs, default if m == "default" else m, max_len,
                                 int(wl.cfg["data"]["mega_batch_factor"]))
           for m in ("default", "length_grouped", "random", "max_length", "hf_group_by_length")}
    sec.add(f"Every contender runs `stages.fit` (batch {bs}); per round each trains on a sample of its own epoch's "
            f"batches, one from each width stratum ({', '.join(m + ': ' + str(res[m][0]['steps']) for m in modes)} "
            f"batches), {plan['batching_rounds']} round(s). max_length pads every batch to {max_len} "
            f"(the Collator's `pad_to_multiple_of`); random is per-batch padding in random order."
            + ("" if default != "random" else " The default is random order (section 3b), so it is its own "
               "random-order yardstick: the goal's ratio is 1 by definition."), "")
    label = {"default": f"itt default: {words}",
             "length_grouped": f"length-grouped in shuffled mega-batches of {int(wl.cfg['data']['mega_batch_factor'])}"
                               f" batches (`data.batching=length_grouped`, opt-in)",
             "random": "per-batch padding, random order", "max_length": f"every batch padded to {max_len}"}
    rows = [[label[m], f"{100 * eff[m]:.1f}%", f"{statistics.median(_tps(res[m])):,.0f}",
             "1" if m == "default" else ratio_stats(_tps(res["default"]), _tps(res[m])).fmt(2)]
            for m in modes]
    rows.append(["transformers group_by_length (for comparison)", f"{100 * eff['hf_group_by_length']:.1f}%", "", ""])
    sec.table(["batching", "real / computed tokens (whole epoch)", "real tokens/s (median)",
               "itt default's speed-up over it"], rows)
    sec.data.update(vs_max=vs_max.ratios, vs_random=vs_random.ratios, efficiency=eff)
    sec.goals.append(Goal("itt batching / padding to max length (real tokens/s)", vs_max.median, 5.0))
    sec.goals.append(Goal("itt batching / per-batch padding in random order (real tokens/s)", vs_random.median, 2.5))
    return sec
