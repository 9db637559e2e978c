"""Where the time of `make run` goes: one mini cell phase by phase, and the mini sweep's
efficiency.

    python -m benchmarks.bench_mini profile --model me5_small --intermediate vader_movie \
        --target sentiment_xling --json /tmp/p.json      # one cell in a fresh process
    python -m benchmarks.bench_mini sweep --seeds 0 --json /tmp/s.json   # the grid (a scaled copy)

``profile`` runs one cell of ``experiment=mini`` in a fresh process and splits its wall time
and CPU time into process start-up, imports, config composition and, inside the cell,
encoder loading, data (load, split, tokenize, loaders), Trainer set-up, stage-1 and stage-2
training, evaluation (test languages, majority and zero-shot baselines) and writing
(stage-1 cache, loggers, result.json). Phases are timed exclusively: a phase nested in
another (the Trainer built inside a fit) counts once, in the inner one.

``sweep`` runs ``python -m itt.train -m experiment=mini`` as ``make run`` does (two
workers of one thread each), optionally on fewer seeds, and reports the sweep efficiency:
the sum of the cells' training and evaluation time (stage 1 counted only in the cell that
trained it) over the sweep's wall time times the workers.

On a shared machine wall times stretch with the load; every measurement records the load
average before and after, and its CPU time, which the load stretches much less.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}

PHASES = ("process start-up", "imports", "config composition", "encoder loading", "data", "Trainer set-up",
          "stage 1 training", "stage 2 training", "evaluation", "writing", "other (in the cell)")


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------- profile (child)
class PhaseClock:
    """Exclusive wall and CPU time per phase: entering a phase pauses the enclosing one."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.stack: list[tuple[str, float, float]] = []

    def _charge(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        now, cpu = time.perf_counter(), time.process_time()
        if self.stack:
            outer, w0, c0 = self.stack[-1]
            self._charge(outer, now - w0, cpu - c0)
        self.stack.append((name, now, cpu))
        try:
            yield
        finally:
            name, w0, c0 = self.stack.pop()
            now, cpu = time.perf_counter(), time.process_time()
            self._charge(name, now - w0, cpu - c0)
            if self.stack:
                outer, _, _ = self.stack[-1]
                self.stack[-1] = (outer, now, cpu)


def _wrap(owner: Any, attr: str, clock: PhaseClock, name: str | Callable[[], str]) -> bool:
    fn = getattr(owner, attr, None)
    if fn is None:
        return False

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with clock.phase(name() if callable(name) else name):
            return fn(*args, **kwargs)

    setattr(owner, attr, wrapped)
    return True


def _child(args: argparse.Namespace) -> int:
    entered = time.time()
    clock = PhaseClock()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    with clock.phase("imports"):
        import pytorch_lightning as pl

        import itt.train  # noqa: F401 - the entry point's imports, as a cell pays them
        from itt import cell, stages
        from itt.models import encoder
    with clock.phase("config composition"):
        from hydra import compose, initialize_config_dir

        from itt.config import to_dict

        overrides = ["experiment=mini", f"model={args.model}", f"intermediate={args.intermediate}",
                     f"target={args.target}", f"seed={args.seed}", "logger=csv",
                     "trainer.enable_progress_bar=false", f"paths.cache_dir={args.work}/cache", *args.override]
        with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
            cfg = to_dict(compose("config", overrides=overrides))
    in_stage1 = [False]
    from itt import builders

    _wrap(encoder, "load_encoder", clock, "encoder loading")
    # build_stage calls these by their module-level names in itt.builders; the cell calls
    # build_module itself for the zero-shot baseline.
    for attr in ("prepare_data", "make_loaders"):
        _wrap(builders, attr, clock, "data")
    for attr in ("build_module", "make_logger"):
        _wrap(builders, attr, clock, "Trainer set-up")
    _wrap(cell, "build_module", clock, "Trainer set-up")
    _wrap(pl.Trainer, "__init__", clock, "Trainer set-up")
    _wrap(stages, "fit", clock, lambda: "stage 1 training" if in_stage1[0] else "stage 2 training")
    for attr in ("evaluate", "majority_baseline"):
        _wrap(cell, attr, clock, "evaluation")
    _wrap(cell, "finish_logger", clock, "writing")
    from itt import records, stage1_cache

    for module, attrs in ((stage1_cache, ("save", "publish")), (records, ("write_result",))):
        for attr in attrs:
            _wrap(module, attr, clock, "writing")
    train_stage1 = getattr(cell, "_train_stage1", None)
    if train_stage1 is not None:
        def flagged(*a: Any, **k: Any) -> Any:
            in_stage1[0] = True
            try:
                return train_stage1(*a, **k)
            finally:
                in_stage1[0] = False
        cell._train_stage1 = flagged
    run_dir = Path(args.work) / "cell"
    with clock.phase("other (in the cell)"):
        result = cell.run_cell(cfg, run_dir)
    total_wall, total_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    out = {"entered_at": entered, "wall": clock.wall, "cpu": clock.cpu, "total_wall": total_wall,
           "total_cpu": total_cpu, "status": result.get("status"),
           "main": (result.get("metrics") or {}).get("main"),
           "precision": cfg["trainer"]["precision"],
           "test_examples": {k: v.get("n") for k, v in ((result.get("metrics") or {}).get("per_language") or {}).items()}}
    Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def profile_cell(model: str, intermediate: str, target: str, seed: int = 0, overrides: list[str] | None = None,
                 work: Path | None = None) -> dict[str, Any]:
    """One mini cell in a fresh process (``OMP_NUM_THREADS=1``, as a make-run worker)."""
    import tempfile

    work = Path(work or tempfile.mkdtemp(prefix="itt-profile-"))
    work.mkdir(parents=True, exist_ok=True)
    out = work / "profile.json"
    env = {**os.environ, **OFFLINE, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "benchmarks.bench_mini", "_child", "--model", model, "--intermediate",
           intermediate, "--target", target, "--seed", str(seed), "--work", str(work), "--json", str(out)]
    for o in overrides or []:
        cmd += ["--override", o]
    load_before = load_average()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawned = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"profiled cell failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    data = json.loads(out.read_text())
    startup = data["entered_at"] - spawned
    wall_by = {"process start-up": startup, **data["wall"]}
    cpu_total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu_by = {"process start-up": max(0.0, cpu_total - data["total_cpu"]), **data["cpu"]}
    return {"cell": f"{model} {intermediate}→{target} seed {seed}", "wall": wall_by, "cpu": cpu_by,
            "process_wall": wall, "process_cpu": cpu_total, "load_before": load_before,
            "load_after": load_average(), "main": data["main"], "test_examples": data["test_examples"],
            "precision": data.get("precision")}


# ----------------------------------------------------------------------------- sweep
def sweep_efficiency(sweep_dir: Path, wall_s: float, workers: int) -> dict[str, Any]:
    """(Σ cells' training + evaluation time) / (sweep wall × workers), from result.json files.

    A cell's stage 1 counts only where it was trained (``stage1.reused`` false): a cell
    that waited for another worker's stage-1 model must not count the wait as work.
    """
    work = 0.0
    cells = 0
    per_phase = {"stage1": 0.0, "stage2": 0.0, "eval": 0.0}
    for path in sorted(Path(sweep_dir).glob("**/result.json")):
        doc = json.loads(path.read_text())
        times = doc.get("wall_time_s") or {}
        s1 = doc.get("stage1") or {}
        trained = bool(s1) and not s1.get("reused", False)
        parts = {"stage1": float(times.get("stage1") or 0.0) if trained else 0.0,
                 "stage2": float(times.get("stage2") or 0.0), "eval": float(times.get("eval") or 0.0)}
        for k, v in parts.items():
            per_phase[k] += v
        work += sum(parts.values())
        cells += 1
    return {"cells": cells, "work_s": round(work, 1), "per_phase_s": {k: round(v, 1) for k, v in per_phase.items()},
            "wall_s": round(wall_s, 1), "workers": workers,
            "efficiency": round(work / (wall_s * workers), 3) if wall_s > 0 else float("nan")}


def run_sweep(out_dir: Path, seeds: str | None = None, workers: int = 2, extra: list[str] | None = None) -> dict[str, Any]:
    """The make-run sweep into ``out_dir`` (ITT_OUTPUT_DIR; the assets stay where they are)."""
    from itt.assets.store import assets_dir

    env = {**os.environ, **OFFLINE, "ITT_OUTPUT_DIR": str(out_dir), "ITT_ASSETS_DIR": str(assets_dir())}
    cmd = [sys.executable, "-m", "itt.train", "-m", "experiment=mini", "logger=csv",
           "trainer.enable_progress_bar=false", "hydra/launcher=itt_local", f"hydra.launcher.workers={workers}"]
    if seeds:
        cmd.append(f"seed={seeds}")
    cmd += extra or []
    load_before = load_average()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    eff = sweep_efficiency(out_dir / "multirun" / "mini", wall, workers)
    eff.update(exit=proc.returncode, load_before=load_before, load_after=load_average(),
               cpu_s=round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
               command=" ".join(["python -m itt.train -m"] + cmd[4:]), stderr_tail=proc.stderr[-1500:])
    return eff


# ----------------------------------------------------------------------------- BENCHMARKS.md sections
# (model, intermediate, target, overrides): a cell that trains stage 1, the same cell in fp32
# (experiment=mini runs bf16 where the CPU has it: the pair measures what that buys), and the
# grid's largest test set without stage 1.
PROFILED_CELLS = (("me5_small", "vader_movie", "sentiment_xling", ()),
                  ("me5_small", "vader_movie", "sentiment_xling", ("trainer.precision=32-true",)),
                  ("minilm", "none", "stsb_xling", ()))


def profile_section(settings: Any, wl: Any = None) -> Any:
    """8. One mini cell, phase by phase (two cells: one that trains stage 1, one without)."""
    from benchmarks.common import Section

    sec = Section("profile", "8. Where a mini cell's time goes", settings.command("profile"))
    if settings.quick:
        sec.add("Skipped with --quick (it trains real encoders).", "")
        return sec
    runs = []
    for m, i, t, extra in PROFILED_CELLS:
        tag = "-".join(o.split("=")[-1] for o in extra)
        run = profile_cell(m, i, t, overrides=list(extra),
                           work=Path(settings.work_dir or "/tmp") / f"profile-{m}-{i}-{t}{'-' + tag if tag else ''}")
        if extra:
            run["cell"] += " (" + ", ".join(extra) + ")"
        runs.append(run)
    sec.add("Each cell of `experiment=mini` in a fresh process with one torch thread, as a `make run` worker "
            "runs it but paying its own start-up (a worker pays start-up and imports once for all its cells). "
            "Phases are exclusive; CPU is the process's user + system time, which the load of other jobs "
            "stretches far less than wall time. Load average (1, 5, 15 min) before → after each cell: "
            + "; ".join(f"{r['cell']}: {r['load_before']} → {r['load_after']}" for r in runs)
            + ". On a loaded machine read the CPU columns.", "")
    header = ["phase"] + [f"{r['cell']}: wall (s)" for r in runs] + [f"{r['cell']}: CPU (s)" for r in runs]
    rows = []
    for phase in PHASES:
        rows.append([phase] + [f"{r['wall'].get(phase, 0.0):.1f}" for r in runs]
                    + [f"{r['cpu'].get(phase, 0.0):.1f}" for r in runs])
    rows.append(["**total (process)**"] + [f"{r['process_wall']:.1f}" for r in runs]
                + [f"{r['process_cpu']:.1f}" for r in runs])
    sec.table(header, rows)
    sec.add("Precision each cell ran in (trainer.precision after resolution): " + "; ".join(
        f"{r['cell']}: {r['precision']}" for r in runs) + ".", "")
    bf16 = [r for r in runs if r["precision"] == "bf16-mixed"]
    fp32 = [r for r in runs if r["precision"] == "32-true"]
    if bf16 and fp32 and bf16[0]["cell"].split(" (")[0] == fp32[0]["cell"].split(" (")[0]:
        b, f = bf16[0], fp32[0]
        parts = ", ".join(f"{ph} {f['cpu'].get(ph, 0.0) / max(b['cpu'].get(ph, 0.0), 1e-9):.2f}x"
                          for ph in ("stage 1 training", "stage 2 training", "evaluation"))
        sec.add(f"bf16 against fp32 on the same cell (CPU time fp32 / bf16): whole process "
                f"{f['process_cpu'] / b['process_cpu']:.2f}x; {parts}. Main metric: bf16 {b['main']}, "
                f"fp32 {f['main']}.", "")
        sec.data.update(bf16_speedup=round(f["process_cpu"] / b["process_cpu"], 3))
    sec.add("Test examples per language: " + "; ".join(
        f"{r['cell']}: " + ", ".join(f"{k} {v}" for k, v in r["test_examples"].items()) for r in runs), "")
    sec.data.update(runs=runs)
    return sec


def mini_sweep_section(settings: Any, wl: Any = None, seeds: str | None = None) -> Any:
    """9. The mini sweep as make run runs it: wall, CPU and the sweep efficiency."""
    from benchmarks.common import Goal, Section

    sec = Section("mini", "9. The mini sweep: wall time, CPU time and efficiency", settings.command("mini"))
    if settings.quick:
        sec.add("Skipped with --quick (it runs the whole grid).", "")
        return sec
    seeds = seeds if seeds is not None else os.environ.get("ITT_BENCH_MINI_SEEDS")
    out = Path(settings.work_dir or "/tmp") / "mini-sweep"
    data = run_sweep(out, seeds)
    sec.command = f"python -m benchmarks.bench_mini sweep --out DIR{' --seeds ' + seeds if seeds else ''}"
    sec.add(f"`{data['command']}` into a fresh output folder (the stage-1 cache empty, the assets built), as "
            f"`make run` runs it{' on seeds ' + seeds + ' only (a scaled copy of the grid)' if seeds else ''}. "
            f"Load average before → after: {data['load_before']} → {data['load_after']}.", "")
    sec.table(["cells", "exit", "sweep wall (s)", "CPU (s, all processes)", "Σ stage 1 trained (s)",
               "Σ stage 2 (s)", "Σ evaluation (s)", "efficiency"],
              [[data["cells"], data["exit"], data["wall_s"], data["cpu_s"], data["per_phase_s"]["stage1"],
                data["per_phase_s"]["stage2"], data["per_phase_s"]["eval"], data["efficiency"]]])
    sec.add("Efficiency = (Σ over cells of stage-1 training where the cell trained it, stage-2 training and "
            "evaluation) / (sweep wall × 2 workers): the share of the workers' time spent on the cells' own "
            "work rather than on start-up, imports, data preparation, waiting for a stage-1 model another "
            "worker trains, and the tail when one worker has nothing left.", "")
    sec.goals.append(Goal("sweep efficiency (mini grid)", data["efficiency"], 0.85, unit="share"))
    sec.data.update(data)
    return sec


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("profile", "_child"):
        p = sub.add_parser(name)
        p.add_argument("--model", default="me5_small")
        p.add_argument("--intermediate", default="vader_movie")
        p.add_argument("--target", default="sentiment_xling")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--override", action="append", default=[])
        p.add_argument("--work", default=None)
        p.add_argument("--json", required=name == "_child")
    s = sub.add_parser("sweep")
    s.add_argument("--seeds", default=None, help="e.g. 0 (a scaled copy: one seed); default: the experiment's")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--out", required=True, help="output folder (ITT_OUTPUT_DIR)")
    s.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.cmd == "_child":
        return _child(args)
    if args.cmd == "profile":
        data = profile_cell(args.model, args.intermediate, args.target, args.seed, args.override,
                            Path(args.work) if args.work else None)
    else:
        data = run_sweep(Path(args.out), args.seeds, args.workers)
    text = json.dumps(data, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
