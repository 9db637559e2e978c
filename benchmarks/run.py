"""The benchmark suite: ``python -m benchmarks.run --out BENCHMARKS.md`` (``make bench``).

    python -m benchmarks.run --out BENCHMARKS.md            # everything (~10 minutes on 2 cores)
    python -m benchmarks.run --only training,batching       # some benchmarks, report to stdout
    python -m benchmarks.run --quick --out /tmp/b.md        # tiny inputs, seconds (tests)

Benchmarks (``--only`` names): training (item 1), hf (2), batching (3), parity (3b: the
default batching chosen by accuracy against random order on two workloads), preprocess (4),
sweep, grid, startup (5), memory (6), gpu (7), profile (8: a mini cell phase by phase),
mini (9: the mini sweep and its efficiency). ``--update`` replaces only the sections run
(and their goal rows) in an existing ``--out`` file. The report is written by this code alone:
every figure beside the command that produced it, the machine, the date, the goals and
whether each is met.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from benchmarks.common import REPO_ROOT, Goal, Section, Settings, machine_info, set_threads

#: name -> (needs the training workload, module, function)
BENCHMARKS: dict[str, tuple[bool, str, str]] = {
    "training": (True, "benchmarks.bench_throughput", "training"),
    "hf": (True, "benchmarks.bench_throughput", "versus_hf"),
    "batching": (True, "benchmarks.bench_throughput", "batching"),
    "parity": (True, "benchmarks.bench_parity", "parity"),
    "preprocess": (True, "benchmarks.bench_preprocess", "preprocess"),
    "sweep": (False, "benchmarks.run", "sweep"),
    "grid": (False, "benchmarks.bench_grid", "grid"),
    "startup": (False, "benchmarks.bench_grid", "startup"),
    "memory": (False, "benchmarks.bench_memory", "memory"),
    "gpu": (False, "benchmarks.run", "gpu"),
    "profile": (False, "benchmarks.bench_mini", "profile_section"),
    "mini": (False, "benchmarks.bench_mini", "mini_sweep_section"),
}


# ----------------------------------------------------------------------------- item 5a and 7
def sweep(settings: Settings, wl: Any = None) -> Section:
    """K smoke cells sequentially against the local launcher's workers (bench_sweep.py)."""
    sec = Section("sweep", "5a. Sweep overhead: K smoke cells sequentially and on the local launcher's workers",
                  settings.command("sweep"))
    if settings.quick:
        sec.add("Skipped with --quick (it runs whole sweeps).", "")
        return sec
    try:
        from benchmarks import bench_sweep
    except ImportError as exc:
        sec.add(f"benchmarks/bench_sweep.py is not available ({exc}).", "")
        return sec
    # Sized to keep `make bench` near ten minutes; --repeat 3 alternates the modes' order.
    cells, workers, epochs = 8, 2, 6
    argv = ["--cells", str(cells), "--workers", str(workers), "--epochs", str(epochs), "--threads", "1"]
    with tempfile.TemporaryDirectory(prefix="itt-bench-sweep-", dir=settings.work_dir) as tmp:
        out = Path(tmp) / "sweep.json"
        rc = bench_sweep.main(argv + ["--dir", str(Path(tmp) / "work"), "--json", str(out)])
        data = json.loads(out.read_text()) if rc == 0 and out.exists() else None
    sec.command = f"python benchmarks/bench_sweep.py {' '.join(argv)}"
    if not data:
        sec.add(f"bench_sweep.py failed (exit status {rc}).", "")
        return sec
    rows = data["rows"]
    one = data["one_cell"]
    k_alone = data["k_cells_alone_s"]
    sec.add(f"K = {cells} smoke cells (tiny_bert, no intermediate task, {epochs} epochs, 1 torch thread per "
            f"process) per mode, each mode one whole `python -m itt.train -m` command in a fresh output "
            f"directory, after a warm-up sweep that builds the model and tokenizes the data. The yardstick is "
            f"K times one cell run alone (`python -m itt.train` without `-m`, a fresh process, as a user runs "
            f"one cell): {one['wall_s']} s per cell, {k_alone} s for K.", "")
    sec.table(["mode", "cells", "wall (s)", "cells per minute", "speed-up over basic", "wall / (K x one cell alone)"],
              [[r["mode"], r["cells"], r["wall_s"], r["cells_per_min"], r["speedup_vs_basic"],
                r["ratio_to_k_cells_alone"]] for r in rows])
    sec.data.update(rows=rows, one_cell=one, k_cells_alone_s=k_alone)
    parallel = next((r for r in rows if r["mode"] == f"itt_local x{workers}"), rows[-1])
    sec.add(f"A cell run alone pays the process start-up (imports, composing the config; section 5c) on top of "
            f"its training; a sweep pays it once per process (basic: once; itt_local: once per worker). "
            f"Two workers on {os.cpu_count()} cores can at best halve the compute part.", "")
    sec.goals.append(Goal(f"sweep on {workers} workers / (K x one cell alone), K={cells}",
                          parallel["ratio_to_k_cells_alone"], None, higher_is_better=False))
    sec.goals.append(Goal(f"sweep on {workers} workers / sequential sweep (speed-up, K={cells})",
                          parallel["speedup_vs_basic"], None))
    return sec


def gpu(settings: Settings, wl: Any = None) -> Section:
    """Item 7: the GPU path, configured and documented; measured where CUDA is present."""
    import torch

    sec = Section("gpu", "7. GPU path", settings.command("gpu"))
    cuda = torch.cuda.is_available()
    sec.add("Configuration (all settings exist in conf/ and are used by `itt.stages.fit` / `itt.cell`):", "",
            "- `trainer=gpu`: `accelerator: gpu`, `precision: bf16-mixed` (Lightning autocasts matmuls to bf16, "
            "keeps fp32 master weights; the evaluation in `itt.evaluation.predict` autocasts the same way); "
            "ITTModule's AdamW is fused on CUDA.",
            "- `trainer.compile=true`: `torch.compile` of the encoder (`itt.builders.build_module`); worth it for long "
            "runs, as every new batch width can recompile (length-grouped batches have many widths; "
            "`pad_to_multiple_of` on the Collator bounds them).",
            "- `data.num_workers=N`: loader worker processes (persistent), collating the next batches while the "
            "GPU trains; `data.pin_memory=auto` pins host memory when CUDA is used (asynchronous copies).",
            "- Several GPUs: `trainer=ddp` (one cell on several devices) or `hydra/launcher=itt_local "
            "hydra.launcher.workers=N` (one cell per GPU).", "",
            "Model FLOPs utilisation (`benchmarks/mfu.py`): model FLOPs of a step on real tokens, "
            "6·N·T + 12·L·d·T² per sequence of T tokens (N non-embedding parameters, L layers, hidden size d; "
            "forward and backward), per second, divided by the device's dense bf16 peak (table in mfu.py, or "
            "`ITT_PEAK_FLOPS`). The training benchmark reports it when CUDA is available.", "")
    sec.add("Base encoders on a GPU: `python -m benchmarks.gpu_bench --out DIR --time-budget-s 420` builds "
            "BERT-base, RoBERTa-base, XLNet-base and XLM-R-base from their published configs (random weights, no "
            "hub) and measures training tokens/s and MFU for fp32, bf16, bf16 + SDPA and bf16 + torch.compile, "
            "itt's training path against a bare loop and transformers' Trainer (group_by_length) with accuracy, "
            "peak memory and the largest batch, and from those the paper grid's GPU-hours; it writes "
            "DIR/gpu_bench.md, a section naming the device (`--tiny` is its CPU test: tiny encoders, no GPU "
            "figures).", "")
    if cuda:
        sec.add(f"This run had a GPU ({torch.cuda.get_device_name(0)}): the throughput benchmarks above ran on it "
                f"with `trainer=gpu`.", "")
    else:
        sec.add("This run had no GPU: nothing in this section was measured. On a GPU machine the same command "
                "(`make bench`) runs the suite there: the workload is composed with `trainer=gpu` (bf16-mixed), "
                "the bare loop autocasts to bf16 likewise, and the training section adds MFU.", "")
    sec.goals.append(Goal("model FLOPs utilisation on a GPU", None, None, unit="share"))
    return sec


# ----------------------------------------------------------------------------- report
def _goal_rows(sections: list[Section]) -> list[list[str]]:
    rows = []
    for sec in sections:
        for g in sec.goals:
            rows.append([sec.title.split(".")[0], g.name, g.target_text(), g.value_text(), g.status(),
                         f"`{sec.command}`"])
    return rows


def _limits(sections: list[Section]) -> list[str]:
    """What keeps goals from being met (or met only narrowly), from this run's data."""
    by = {s.key: s for s in sections}
    out: list[str] = []
    tr = by.get("training")
    if tr is not None and tr.data.get("framework_ms"):
        fw = tr.data["framework_ms"]
        extra = fw["itt_ms"] - fw["bare_ms"]
        share = extra / tr.data["step_ms"]
        out.append(f"- Training loop (item 1): Lightning adds {extra:.2f} ms per step to a bare loop (trivial-model "
                   f"probe, section 1). Against this workload's {tr.data['step_ms']:.0f} ms per step that predicts "
                   f"a ratio of {1 / (1 + share):.3f}; measured: median {statistics.median(tr.data['ratio']):.3f}, "
                   f"per-round range {min(tr.data['ratio']):.2f}–{max(tr.data['ratio']):.2f} (the machine's load "
                   f"moves single rounds more than the loop does). The progress bar is "
                   f"{fw['itt_ms'] - fw.get('itt_no_bar_ms', fw['itt_ms']):.2f} ms of it "
                   f"(`trainer.enable_progress_bar=false` for sweeps). On a GPU a step of this model takes "
                   f"milliseconds and the "
                   f"same fixed cost would be a large share: bigger batches (or `stage.grad_accum`) amortise it.")
    hf = by.get("hf")
    if hf is not None and hf.data.get("itt_accuracy") and hf.data.get("default_batching", "length_grouped") \
            == "length_grouped":
        out.append("- Against transformers' Trainer (item 2) both sides compute nearly the same padded tokens "
                   "(padding efficiencies in section 3); the difference is per step: the optimizer kernel (section "
                   "2), the collator and the framework around the step.")
    elif hf is not None and hf.data.get("itt_accuracy"):
        def mean(v: list[float]) -> float:
            return sum(v) / len(v)

        line = (f"- Against transformers' Trainer (item 2): the Trainer groups by length, itt's default is "
                f"{hf.data['default_batching']} order (section 3b), so itt computes far more padding (section 3) and "
                f"its epochs take {1 / statistics.median(hf.data['train_ratio']):.1f}x the Trainer's; held-out "
                f"accuracy itt {mean(hf.data['itt_accuracy']):.3f}, Trainer {mean(hf.data['hf_accuracy']):.3f}.")
        if hf.data.get("grouped_ratio"):
            line += (f" Like for like, itt with `data.batching=length_grouped` trains "
                     f"{statistics.median(hf.data['grouped_ratio']):.2f}x as fast as the Trainer (accuracy "
                     f"{mean(hf.data['grouped_accuracy']):.3f}); the difference there is per step: the optimizer "
                     f"kernel (section 2), the collator and the framework around the step.")
        out.append(line)
    pa = by.get("parity")
    if pa is not None and pa.data.get("results"):
        out += _parity_limits(pa.data)
    bt = by.get("batching")
    if bt is not None and bt.data.get("efficiency"):
        eff = bt.data["efficiency"]
        grouped = eff.get("length_grouped", eff.get("default"))
        out.append(f"- Batching (item 3): the padding ratio bounds grouping's gain: length grouping computes "
                   f"{grouped / eff['max_length']:.1f}x the real-token share of max-length padding and "
                   f"{grouped / eff['random']:.1f}x that of random order (section 3, whole epoch); attention's "
                   f"quadratic cost adds to it for long padded batches, fixed per-step costs (optimizer, framework) "
                   f"take from it. itt's default computes {eff['default'] / eff['random']:.1f}x random order's "
                   f"share.")
    pp = by.get("preprocess")
    if pp is not None and pp.data.get("rerun_parts"):
        parts = pp.data["rerun_parts"]
        top = max(parts, key=parts.get)
        out.append(f"- Rerun preprocessing (item 4): a cache hit still has to find its entry (hash each split's "
                   f"columns, the {top.replace('_', ' ')} the largest part, section 4) and load it; what is left "
                   f"of a rerun's whole preparation is reading and splitting the data through datasets' own "
                   f"cache (section 4's second row).")
    out.append("- Timings on a shared machine: every figure is a median of interleaved per-round ratios; the "
               "ranges show how much the load moved within a run. Re-running `make bench` on a quiet machine "
               "narrows them.")
    return out


def _parity_limits(data: dict[str, Any]) -> list[str]:
    """The accuracy bullet, from section 3b's figures."""
    results = data["results"]
    per = []
    for name, r in results.items():
        rows = {k: v for k, v in r["rows"].items() if k != "random"}
        kept = [v["label"].replace("length_grouped, ", "") for v in rows.values() if v["keeps"]]
        diffs = [v["diff"] for v in rows.values()]
        per.append(f"workload {name} (random order {r['random_mean']:.3f} ± {r['random_sd']:.3f}): groupings "
                   f"{min(diffs):+.3f} to {max(diffs):+.3f}, kept by {', '.join(kept) if kept else 'none'}")
    pick = data["pick"]
    lines = [f"- Accuracy (item 3, section 3b): {'; '.join(per)}. Sorting by length puts texts of alike length "
             f"together; where length goes with the label (workload A: a text's domain) a batch then holds fewer "
             f"labels and each step's gradient leans towards them, and shuffling the order of the batches does not "
             f"change what is in them. Smaller mega-batches mix more labels but give back the speed."]
    if pick == "random":
        lines.append("  By the rule (accuracy first) no grouping qualifies on both workloads, so the default is "
                     "random order (`data.batching=random`), and the speed goals of items 2 and 3 are measured at "
                     "it: they are missed because the accuracy goal comes first. Length grouping stays available "
                     "(`data.batching=length_grouped`, `data.mega_batch_factor`) for tasks whose labels do not go "
                     "with length, where it kept accuracy (workload B) at the speed in section 3.")
    else:
        lines.append(f"  By the rule (accuracy first) the default is `{pick}`; the speed goals of items 2 and 3 are "
                     f"measured at it.")
    return lines


def write_report(sections: list[Section], info: dict[str, Any], settings: Settings, path: Path | None,
                 workload: dict[str, Any] | None, total_s: float) -> str:
    lines = ["# Benchmarks", "",
             f"Written by `{' '.join(['python -m benchmarks.run'] + settings.argv)}` (`make bench`); every figure "
             f"below was produced by this run, beside the command that reproduces its section. Total time "
             f"{total_s / 60:.1f} min.", "",
             "## Machine", "",
             "| | |", "|---|---|"]
    for key in ("date_utc", "cpu", "cores", "cores_usable", "torch_threads", "gpu", "load_average_at_start",
                "python", "torch", "transformers", "pytorch_lightning", "datasets", "git"):
        lines.append(f"| {key} | {info.get(key)} |")
    lines += ["", "Timings are medians of ratios between contenders run side by side in one process, alternating "
              "(A, B, A, B, ...); absolute times are for orientation only. One torch thread by default "
              "(`--threads`): on a shared machine OpenMP threads spin-wait for cores other jobs hold.", ""]
    if workload:
        lines += ["## Workload (items 1–4)", ""] + [f"- {k}: {v}" for k, v in workload.items()] + [""]
    lines += ["## Goals", ""]
    header = ["item", "goal", "target", "measured", "status", "command"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in _goal_rows(sections)]
    lines.append("")
    for sec in sections:
        lines += section_text(sec)
    lines += ["## What limits the rest", ""] + _limits(sections) + [""]
    text = "\n".join(lines)
    if path is not None:
        path.write_text(text, encoding="utf-8")
    return text


def section_text(sec: Section) -> list[str]:
    return [f"## {sec.title}", "", f"Command: `{sec.command}` ({sec.seconds:.0f} s)", ""] + sec.lines


def _number_key(heading: str) -> tuple[int, str] | None:
    """(3, "b") for a heading "## 3b. ...", None for an unnumbered one."""
    import re

    m = re.match(r"## (\d+)([a-z]*)\. ", heading)
    return (int(m.group(1)), m.group(2)) if m else None


def update_report(text: str, sections: list[Section], info: dict[str, Any]) -> str:
    """``text`` (an earlier BENCHMARKS.md) with these sections and their goal rows replaced
    (matched by section number) or added before "What limits the rest"; the rest unchanged."""
    lines = text.splitlines()
    for sec in sections:
        number = sec.title.split(".")[0]
        stamp = (f"Updated on its own by `python -m benchmarks.run --only {sec.key} --update` on "
                 f"{info.get('date_utc')} (load average at start {info.get('load_average_at_start')}, "
                 f"git {info.get('git')}).")
        block = section_text(sec)
        block[3:3] = [stamp, ""]
        start = next((i for i, line in enumerate(lines) if line.startswith(f"## {number}.")), None)
        if start is None:
            # A new section goes before the first numbered section after it (3b before 4), or
            # before "What limits the rest".
            start = next((i for i, line in enumerate(lines) if line.startswith("## What limits the rest")
                          or (_number_key(line) is not None and _number_key(line) > _number_key(f"## {number}. "))),
                         len(lines))
            end = start
        else:
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = block
        goals = next((i for i, line in enumerate(lines) if line == "## Goals"), None)
        if goals is None:
            continue
        first = next(i for i in range(goals + 1, len(lines)) if lines[i].startswith("|"))
        last = first
        while last + 1 < len(lines) and lines[last + 1].startswith("|"):
            last += 1
        rows = [r for r in lines[first + 2:last + 1] if not r.startswith(f"| {number} |")]
        rows += ["| " + " | ".join(r) + " |" for r in _goal_rows([sec])]
        lines[first + 2:last + 1] = rows
    _refresh_limits(lines, _limits(sections))
    return "\n".join(lines) + "\n"


def _bullets(lines: list[str]) -> list[tuple[str, list[str]]]:
    """The bullets of "What limits the rest" as (key, lines): a bullet and its indented
    continuation lines; the key is its head up to "(item N...)" (or its first 40 characters)."""
    import re

    out: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("- "):
            m = re.match(r"- ([^:(]*\(item \d+)", line)
            out.append((m.group(1) if m else line[:40], [line]))
        elif line.startswith("  ") and out:
            out[-1][1].append(line)
    return out


def _refresh_limits(lines: list[str], new: list[str]) -> None:
    """Replace in place the bullets of "What limits the rest" that this run wrote anew (by
    key); add the others before the last bullet (the note on timings)."""
    start = next((i for i, line in enumerate(lines) if line.startswith("## What limits the rest")), None)
    if start is None:
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    items = _bullets(lines[start + 1:end])
    keys = [k for k, _ in items]
    for key, body in _bullets(new):
        if key in keys:
            items[keys.index(key)] = (key, body)
        else:
            items.insert(max(0, len(items) - 1), (key, body))
            keys.insert(max(0, len(keys) - 1), key)
    lines[start + 1:end] = [""] + [x for _, body in items for x in body] + ([""] if end < len(lines) else [])


def _describe(wl: Any) -> dict[str, Any]:
    from benchmarks import mfu

    s = wl.length_summary()
    enc = wl.encoder()
    shape = wl.model_shape
    return {
        "model": (f"BERT built by `itt.models.tiny.build_tiny`: hidden {shape['hidden_size']}, "
                  f"{shape['num_layers']} layers, {shape['num_heads']} heads, FFN {shape['intermediate_size']}, "
                  f"WordPiece vocabulary {wl.tokenizer.vocab_size} trained on the training texts; "
                  f"{sum(p.numel() for p in enc.parameters()) / 1e6:.2f} M parameters "
                  f"({mfu.non_embedding_params(enc) / 1e6:.2f} M outside the embeddings)"),
        "texts": wl.source,
        "splits": (f"train {len(wl.tok['train'])}, validation {len(wl.tok['validation'])}, "
                   f"test {len(wl.tok['test']['en'])}"),
        "training lengths (tokens)": (f"median {s['median']:.0f}, mean {s['mean']:.1f}, p90 {s['p90']:.0f}, "
                                      f"p99 {s['p99']:.0f}, max {s['max']} (max_length {wl.sizes.max_length}; "
                                      f"{s['truncated']} cut)"),
        "training settings": (f"batch {wl.stage['batch_size']}, lr {wl.stage['lr']}, warmup "
                              f"{wl.stage['warmup_ratio']}, weight decay {wl.stage['weight_decay']}, clipping "
                              f"{wl.stage['grad_clip']}, batching `{wl.cfg['data']['batching']}` (mega-batch factor "
                              f"{wl.cfg['data']['mega_batch_factor']} with `length_grouped`), "
                              f"trainer `{wl.cfg['trainer'].get('accelerator')}` / "
                              f"`{wl.cfg['trainer'].get('precision')}`, progress bar "
                              f"{'on' if wl.cfg['trainer'].get('enable_progress_bar') else 'off'} (conf/ defaults)"),
    }


def _quiet() -> None:
    """Lightning's and transformers' per-run notices would bury the progress lines."""
    import warnings

    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric",
                 "pytorch_lightning.utilities.rank_zero", "lightning.fabric", "transformers", "datasets", "itt"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except Exception:  # noqa: BLE001
        pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="write the report here (default: stdout)")
    parser.add_argument("--quick", action="store_true", help="tiny inputs: seconds, for tests (figures meaningless)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--synthetic", action="store_true", help="generated text even where the offline suite exists")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--update", action="store_true",
                        help="replace only the sections run (and their goal rows) in the --out file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    _quiet()
    set_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="itt-bench-", dir=args.work_dir) as scratch:
        settings = Settings(quick=args.quick, threads=args.threads, synthetic=args.synthetic, work_dir=Path(scratch),
                            argv=argv, log=log)
        info = machine_info(settings)
        wl = None
        described = None
        if any(BENCHMARKS[n][0] for n in names):
            from benchmarks import workload

            log("building the workload ...")
            wl = workload.build(settings)
            described = _describe(wl)
        sections: list[Section] = []
        import importlib

        for name in names:
            needs_wl, module, func = BENCHMARKS[name]
            log(f"[{name}]")
            t0 = time.perf_counter()
            try:
                fn: Callable[[Settings, Any], Section] = getattr(importlib.import_module(module), func)
                sec = fn(settings, wl)
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not lose the others' figures
                traceback.print_exc()
                sec = Section(name, f"{name}: failed", settings.command(name))
                sec.add(f"The benchmark failed: `{type(exc).__name__}: {str(exc)[:300]}`", "")
            sec.seconds = time.perf_counter() - t0
            log(f"[{name}] {sec.seconds:.0f} s")
            sections.append(sec)
        total = time.perf_counter() - start
        if args.update and args.out is not None and args.out.exists():
            text = update_report(args.out.read_text(encoding="utf-8"), sections, info)
            args.out.write_text(text, encoding="utf-8")
        else:
            text = write_report(sections, info, settings, args.out, described, total)
    if args.out is None:
        print(text)
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "workload": described, "sections": {
            s.key: {"data": s.data, "goals": [g.__dict__ for g in s.goals], "seconds": s.seconds} for s in sections}},
            indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
