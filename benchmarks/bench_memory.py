"""Item 6: peak memory of a cell's training process per offline encoder, and the largest
batch that fits.

Each encoder is probed in a process of its own (``python -m benchmarks.bench_memory
--probe``), so that one model's allocations do not hide in another's peak. The probe loads
the encoder as a cell does, builds the ITTModule and runs real training steps (forward,
backward, AdamW) and an evaluation batch:

* peak of a cell: the process's peak resident memory with the cell's batch settings;
* largest batch: on a GPU, found by doubling the batch until CUDA runs out of memory and
  bisecting (``torch.cuda.max_memory_allocated``); on a CPU there is no hard limit, so the
  peak of a training step is measured at three batch sizes, a line is fitted (memory grows
  linearly with the batch) and solved for the memory available to this process.

CPU peaks come from the kernel's high-water mark (VmHWM), reset between measurements
through /proc/self/clear_refs where the kernel allows it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT, Goal, Section, Settings

GIB = 1024 ** 3


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_bytes() -> int:
    """The process's peak resident memory since the last reset (or since it started)."""
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kib) * 1024


def available_bytes() -> int:
    """Memory this process could still take: MemAvailable, capped by a cgroup limit."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            current = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            avail = min(avail or 1 << 62, int(limit) - current)
    except (OSError, ValueError):
        pass
    return int(avail or 0)


# ----------------------------------------------------------------------------- the probe
def _batch(tokenizer: Any, n: int, length: int, n_labels: int) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, min(tokenizer.vocab_size, 30000), (n, length), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, n_labels, (n,), generator=g),
            "index": torch.arange(n)}


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one encoder (runs in its own process)."""
    import torch

    from benchmarks.workload import bench_card, compose_cfg
    from itt.builders import build_module as _module
    from itt.models.encoder import load_encoder

    torch.set_num_threads(int(spec.get("threads", 1)))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    cfg = compose_cfg([f"model={spec['model']}"])
    card = bench_card(["a", "b"])
    _reset_peak()
    base = peak_bytes()
    encoder, tokenizer, _ = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
    module = _module(encoder, card, cfg, "stage2").to(device).train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-5)
    out: dict[str, Any] = {"model": spec["model"], "params": sum(p.numel() for p in module.parameters()),
                           "device": device.type, "peak_reset": _reset_peak()}
    loaded = peak_bytes()
    out["loaded_bytes"] = loaded
    out["process_base_bytes"] = base

    def step(n: int, length: int) -> None:
        batch = {k: v.to(device) for k, v in _batch(tokenizer, n, length, 2).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = module.impl.loss(module(batch), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def evaluate(n: int, length: int) -> None:
        batch = {k: v.to(device) for k, v in _batch(tokenizer, n, length, 2).items()}
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            module(batch)

    # The cell: a training step at the stage's batch size, then an evaluation batch.
    tb, tl, eb = int(spec["train_batch"]), int(spec["length"]), int(spec["eval_batch"])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    step(tb, tl)
    step(tb, tl)      # optimizer state exists from the first step on
    evaluate(eb, tl)
    out["cell_peak_bytes"] = int(torch.cuda.max_memory_allocated()) if cuda else peak_bytes()
    # The largest batch.
    length = int(spec["probe_length"])
    if cuda:
        out.update(_largest_cuda(step, length))
    else:
        points = []
        for n in spec["probe_batches"]:
            _reset_peak()
            step(int(n), length)
            points.append((int(n), peak_bytes()))
        out["points"] = points
    return out


def _largest_cuda(step: Any, length: int) -> dict[str, Any]:
    import torch

    def fits(n: int) -> bool:
        try:
            torch.cuda.empty_cache()
            step(n, length)
            torch.cuda.synchronize()
            return True
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return False

    lo, hi = 0, 1
    while fits(hi) and hi < 1 << 16:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return {"largest_batch": lo, "total_bytes": int(torch.cuda.get_device_properties(0).total_memory)}


# ----------------------------------------------------------------------------- the benchmark
def _fit_line(points: list[tuple[int, int]]) -> tuple[float, float]:
    import numpy as np

    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def memory(settings: Settings, wl: Any = None) -> Section:
    sec = Section("memory", "6. Peak memory per cell and the largest batch that fits", settings.command("memory"))
    assets = Path(os.environ.get("ITT_ASSETS_DIR", REPO_ROOT / "outputs" / "assets")) / "models"
    if settings.quick:
        models = ["tiny_bert"]
        spec = {"train_batch": 4, "eval_batch": 8, "length": 32, "probe_length": 32, "probe_batches": [2, 4, 8]}
    else:
        models = [m for m in ("minilm", "me5_small") if (assets / m).exists()] + ["tiny_roberta", "tiny_xlnet"]
        # The mini grid's stage 2 (batch 16, max_length 64, evaluation batch 128); the largest
        # batch at the default max_length of 128.
        spec = {"train_batch": 16, "eval_batch": 128, "length": 64, "probe_length": 128, "probe_batches": [4, 8, 16]}
    avail = available_bytes()
    rows = []
    for model in models:
        args = dict(spec, model=model, threads=settings.threads)
        if settings.quick:   # in this process: seconds instead of a fresh interpreter's imports
            got = probe(args)
        else:
            proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", "--probe", json.dumps(args)],
                                  cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                err = proc.stderr.strip().splitlines()[-1][:120] if proc.stderr.strip() else ""
                rows.append([model, "failed", err, "", ""])
                continue
            got = json.loads(lines[-1])
        settings.log(f"  {model}: {got}")
        if "largest_batch" in got:
            largest = f"{got['largest_batch']} (bisected on {got['total_bytes'] / GIB:.0f} GiB)"
        else:
            slope, intercept = _fit_line(got["points"])
            span = got["points"][-1][0] - got["points"][0][0]
            if slope * span < 16 * 2 ** 20:
                # The peak hardly moved: activations are below the allocator's granularity here.
                largest = (f"not measurable: the peak grew by {slope * span / 2 ** 20:.1f} MiB from batch "
                           f"{got['points'][0][0]} to {got['points'][-1][0]}")
            else:
                # The whole probe process must fit in what was available before it started.
                largest = (f"~{int((avail - intercept) / slope):,} (line through {len(got['points'])} points, "
                           f"{slope / 2 ** 20:.1f} MiB per example)")
        if not got.get("peak_reset"):
            largest += " (peak could not be reset: upper bound)"
        rows.append([model, f"{got['params'] / 1e6:.1f} M", f"{got['loaded_bytes'] / GIB:.2f} GiB",
                     f"{got['cell_peak_bytes'] / GIB:.2f} GiB", largest])
        sec.data[model] = got
    where = "In this process (--quick)" if settings.quick else "One process per encoder"
    sec.add(f"{where}; a cell's training step at batch {spec['train_batch']} x {spec['length']} tokens "
            f"twice (AdamW state allocated), then an evaluation batch of {spec['eval_batch']}; the largest batch is for "
            f"training at {spec['probe_length']} tokens. Memory available to this process at the start: "
            f"{avail / GIB:.1f} GiB.", "")
    sec.table(["encoder", "parameters", "peak after loading", "peak of a cell (training + evaluation)",
               "largest training batch that fits"], rows)
    measured = sum(1 for r in rows if r[1] != "failed")
    sec.goals.append(Goal(f"peak memory and largest batch of the offline encoders ({measured}/{len(models)} measured)",
                          float(measured) if measured else None, None, unit="encoders"))
    return sec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probe", required=True, help="JSON spec of one measurement")
    args = parser.parse_args()
    print(json.dumps(probe(json.loads(args.probe))), flush=True)


if __name__ == "__main__":
    main()
