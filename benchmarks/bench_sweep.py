"""Sweep throughput: the same K smoke cells run sequentially and on the local launcher's
parallel workers, in one invocation, side by side.

    python benchmarks/bench_sweep.py                  # 8 cells, 2 workers
    python benchmarks/bench_sweep.py --cells 12 --workers 4 --json bench_sweep.json

Modes (each into a fresh output directory, so no cell is skipped; the tiny model and the
tokenized data are built once beforehand by a warm-up cell and shared):

* ``one cell alone``: a single cell as its own ``python -m itt.train`` command (no ``-m``),
  once per smoke target; K times its mean wall time is what running the K cells one command
  at a time costs, the yardstick the sweep modes are divided by;
* ``basic``: Hydra's basic launcher, every cell in the sweep's own process, one after the other;
* ``itt_local x1``: the local launcher with one worker (process start-up and hand-off costs);
* ``itt_local xN``: the local launcher with N workers (one GPU each when there are GPUs,
  the CPU cores shared between them otherwise).

The cells are baselines (``intermediate=none``) so that stage-1 sharing does not enter the
comparison. Timings are wall clock of the whole ``python -m itt.train -m`` command and
depend on what else the machine runs; the numbers are for comparing modes within one run
(``--repeat 3`` alternates the order of the modes and reports each mode's fastest run). On a
CPU shared with other jobs, processes with several torch threads slow down far more than
single-threaded ones; ``--threads 1`` compares the modes at equal threading.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _sweep(cells: int, extra: list[str]) -> list[str]:
    """K cells: the two smoke targets x ceil(K/2) seeds."""
    seeds = max(1, math.ceil(cells / 2))
    return [sys.executable, "-m", "itt.train", "-m", "experiment=smoke", "logger=none",
            "trainer.enable_progress_bar=false", "model=tiny_bert", "intermediate=none",
            "hydra.sweeper.params=null", "target=smoke_products,smoke_xling",
            f"seed={','.join(str(s) for s in range(seeds))}", *extra]


def _single(target: str, extra: list[str]) -> list[str]:
    """One cell by itself: a plain run of the app, as a user runs a single cell."""
    return [sys.executable, "-m", "itt.train", "experiment=smoke", "logger=none",
            "trainer.enable_progress_bar=false", "model=tiny_bert", "intermediate=none",
            f"target={target}", "seed=0", *extra]


def _env(out: Path, cache: Path, threads: int | None) -> dict[str, str]:
    env = dict(os.environ, ITT_OUTPUT_DIR=str(out), ITT_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled")
    if threads:  # the launcher's workers keep a thread count set in their environment
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def _one_cell(out: Path, cache: Path, extra: list[str], threads: int | None) -> dict:
    """Each smoke target's cell run alone (a fresh process each); the mean wall time."""
    walls = []
    for target in ("smoke_products", "smoke_xling"):
        cmd = _single(target, extra)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=_env(out / target, cache, threads), capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        if proc.returncode != 0 or not list((out / target).rglob("result.json")):
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"one cell alone ({target}) failed (exit status {proc.returncode})")
    return {"mode": "one cell alone", "cells": 1, "wall_s": round(sum(walls) / len(walls), 1), "walls": walls,
            "command": " ".join(_single("<target>", extra)[1:])}


def _run(label: str, out: Path, cache: Path, cells: int, extra: list[str], threads: int | None = None) -> dict:
    env = _env(out, cache, threads)
    cmd = _sweep(cells, extra)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{label}: the sweep failed (exit status {proc.returncode})")
    finished = sorted(datetime.fromisoformat(json.loads(p.read_text())["finished_at"])
                      for p in out.rglob("result.json"))
    # From the first cell finished to the last: throughput once the processes are up.
    window = (finished[-1] - finished[0]).total_seconds() if len(finished) > 1 else None
    return {"mode": label, "cells": len(finished), "wall_s": round(wall, 1),
            "cells_per_min": round(60 * len(finished) / wall, 2) if wall else None,
            "first_to_last_cell_s": window, "command": " ".join(cmd[1:])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=8, help="smoke cells per mode (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="parallel workers of the local launcher")
    parser.add_argument("--epochs", type=int, default=12, help="stage-2 epochs of each cell (compute per cell)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per mode, in alternating order (ABC CBA ...); the fastest is reported")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of every cell in every mode (default: basic and one worker use "
                             "all cores, N workers share them); 1 compares the modes at equal threading")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    work = args.dir or Path(tempfile.mkdtemp(prefix="itt-bench-sweep-"))
    cache = work / "cache"
    common = [f"stage2.epochs={args.epochs}"]
    threading = f"{args.threads} thread(s) per cell" if args.threads else "default threads"
    print(f"bench_sweep: {args.cells} cells per mode, {args.workers} workers, {threading}, work dir {work}",
          flush=True)
    _run("warm-up", work / "warmup", cache, 2, common, args.threads)  # builds the tiny model, tokenizes both targets
    modes = [("basic", []), ("itt_local x1", ["hydra/launcher=itt_local", "hydra.launcher.workers=1"]),
             (f"itt_local x{args.workers}", ["hydra/launcher=itt_local", f"hydra.launcher.workers={args.workers}"])]
    runs: dict[str, list[dict]] = {label: [] for label, _ in modes}
    singles: list[dict] = []
    for r in range(max(1, args.repeat)):
        # Alternate the order so that a drift in the machine's load does not favour one mode.
        if r % 2 == 0:
            singles.append(_one_cell(work / f"r{r}-single", cache, common, args.threads))
            print(f"  one cell alone: {singles[-1]['wall_s']:.1f}s", flush=True)
        for i, (label, extra) in enumerate(modes if r % 2 == 0 else modes[::-1]):
            runs[label].append(_run(label, work / f"r{r}-{label.replace(' ', '')}", cache, args.cells,
                                    common + extra, args.threads))
            print(f"  {label}: {runs[label][-1]['wall_s']:.1f}s", flush=True)
        if r % 2 == 1:
            singles.append(_one_cell(work / f"r{r}-single", cache, common, args.threads))
            print(f"  one cell alone: {singles[-1]['wall_s']:.1f}s", flush=True)
    # The fastest run of each mode: the one least disturbed by whatever else the machine ran.
    rows = [dict(min(rs, key=lambda x: x["wall_s"]), runs=[x["wall_s"] for x in rs]) for rs in runs.values()]
    single = dict(min(singles, key=lambda x: x["wall_s"]), runs=[x["wall_s"] for x in singles])
    k_alone = single["wall_s"] * args.cells
    base = rows[0]["wall_s"]
    for row in rows:
        row["speedup_vs_basic"] = round(base / row["wall_s"], 2) if row["wall_s"] else None
        # the yardstick: the sweep's wall time against K times one cell's
        row["ratio_to_k_cells_alone"] = round(row["wall_s"] / k_alone, 3) if k_alone else None
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPU cores, {threading}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"one cell alone: {single['wall_s']:.1f} s (fastest of {len(singles)}); K = {args.cells} cells alone: "
          f"{k_alone:.1f} s")
    print(f"{'mode':<16}{'cells':>6}{'wall s':>9}{'cells/min':>11}{'speed-up':>10}{'/ K alone':>11}"
          f"{'1st->last cell s':>18}   runs (s)")
    for row in rows:
        window = row["first_to_last_cell_s"]
        print(f"{row['mode']:<16}{row['cells']:>6}{row['wall_s']:>9.1f}{row['cells_per_min']:>11.2f}"
              f"{row['speedup_vs_basic']:>9.2f}x{row['ratio_to_k_cells_alone']:>11.3f}"
              f"{(f'{window:.0f}' if window is not None else '-'):>18}"
              f"   {' '.join(f'{x:.1f}' for x in row['runs'])}")
    if args.json:
        args.json.write_text(json.dumps({"cells": args.cells, "workers": args.workers, "threads": args.threads,
                                         "one_cell": single, "k_cells_alone_s": round(k_alone, 1),
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
