"""Sweep throughput: the same K smoke cells run sequentially and on the local launcher's
parallel workers, in one invocation, side by side.

    python benchmarks/bench_sweep.py                  # 8 cells, 2 workers
    python benchmarks/bench_sweep.py --cells 12 --workers 4 --json bench_sweep.json

Modes (each into a fresh output directory, so no cell is skipped; the tiny model and the
tokenized data are built once beforehand by a warm-up cell and shared):

* ``basic``: Hydra's basic launcher, every cell in the sweep's own process, one after the other;
* ``itt_local x1``: the local launcher with one worker (process start-up and hand-off costs);
* ``itt_local xN``: the local launcher with N workers (one GPU each when there are GPUs,
  the CPU cores shared between them otherwise).

The cells are baselines (``intermediate=none``) so that stage-1 sharing does not enter the
comparison. Timings are wall clock of the whole ``python -m itt.train -m`` command and
depend on what else the machine runs; the numbers are for comparing modes within one run.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _sweep(cells: int, extra: list[str]) -> list[str]:
    """K cells: the two smoke targets x ceil(K/2) seeds."""
    seeds = max(1, math.ceil(cells / 2))
    return [sys.executable, "-m", "itt.train", "-m", "experiment=smoke", "logger=none",
            "trainer.enable_progress_bar=false", "model=tiny_bert", "intermediate=none",
            "hydra.sweeper.params=null", "target=smoke_products,smoke_xling",
            f"seed={','.join(str(s) for s in range(seeds))}", *extra]


def _run(label: str, out: Path, cache: Path, cells: int, extra: list[str]) -> dict:
    env = dict(os.environ, ITT_OUTPUT_DIR=str(out), ITT_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled")
    cmd = _sweep(cells, extra)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{label}: the sweep failed (exit status {proc.returncode})")
    done = len(list(out.rglob("result.json")))
    return {"mode": label, "cells": done, "wall_s": round(wall, 1),
            "cells_per_min": round(60 * done / wall, 2) if wall else None, "command": " ".join(cmd[1:])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=8, help="smoke cells per mode (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="parallel workers of the local launcher")
    parser.add_argument("--epochs", type=int, default=4, help="stage-2 epochs of each cell")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per mode, in alternating order (ABC CBA ...); the median is reported")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    work = args.dir or Path(tempfile.mkdtemp(prefix="itt-bench-sweep-"))
    cache = work / "cache"
    common = [f"stage2.epochs={args.epochs}"]
    print(f"bench_sweep: {args.cells} cells per mode, {args.workers} workers, work dir {work}", flush=True)
    _run("warm-up", work / "warmup", cache, 2, common)  # builds the tiny model, tokenizes both targets
    modes = [("basic", []), ("itt_local x1", ["hydra/launcher=itt_local", "hydra.launcher.workers=1"]),
             (f"itt_local x{args.workers}", ["hydra/launcher=itt_local", f"hydra.launcher.workers={args.workers}"])]
    runs: dict[str, list[dict]] = {label: [] for label, _ in modes}
    for r in range(max(1, args.repeat)):
        # Alternate the order so that a drift in the machine's load does not favour one mode.
        for i, (label, extra) in enumerate(modes if r % 2 == 0 else modes[::-1]):
            runs[label].append(_run(label, work / f"r{r}-{label.replace(' ', '')}", cache, args.cells,
                                    common + extra))
            print(f"  {label}: {runs[label][-1]['wall_s']:.1f}s", flush=True)
    rows = [dict(sorted(rs, key=lambda x: x["wall_s"])[len(rs) // 2], runs=[x["wall_s"] for x in rs])
            for rs in runs.values()]
    base = rows[0]["wall_s"]
    for row in rows:
        row["speedup_vs_basic"] = round(base / row["wall_s"], 2) if row["wall_s"] else None
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPU cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'mode':<16}{'cells':>6}{'wall s':>9}{'cells/min':>11}{'speed-up':>10}   runs (s)")
    for row in rows:
        print(f"{row['mode']:<16}{row['cells']:>6}{row['wall_s']:>9.1f}{row['cells_per_min']:>11.2f}"
              f"{row['speedup_vs_basic']:>9.2f}x   {' '.join(f'{x:.1f}' for x in row['runs'])}")
    if args.json:
        args.json.write_text(json.dumps({"cells": args.cells, "workers": args.workers, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
