"""``hydra/launcher=itt_local``: the cells of a sweep on N parallel workers of one machine,
one GPU (or ``gpus_per_worker`` GPUs) per worker.

    python -m itt.train -m experiment=paper hydra/launcher=itt_local hydra.launcher.workers=4

Each worker is a long-lived process (started with ``spawn``) that runs cells one after the
other exactly as Hydra's basic launcher does (same job config, run directory, job logging),
so the libraries are imported once per worker, not once per cell. ``CUDA_VISIBLE_DEVICES``
is set per worker before it starts; without GPUs the workers share the CPU cores (and
``OMP_NUM_THREADS`` is set to their share). A free worker takes the next cell; cells that
share a stage-1 model wait for each other through the stage-1 file lock. A worker's
output goes to ``<sweep dir>/.launcher/worker<k>.log`` (each cell also logs to its own
``train.log``); the console shows one line per finished cell and one progress line for the
sweep (:class:`SweepProgress`: cells done / total, failed, the running cells, elapsed, ETA). A worker that dies (out of memory,
killed) loses only its cell, which gets an error.json; a new worker takes its place.

(No ``from __future__ import annotations``: Hydra's plugin scanner runs this module before
registering it, which breaks dataclasses with string annotations.)
"""
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)


@dataclass
class ITTLocalLauncherConf:
    _target_: str = "hydra_plugins.itt_launcher.itt_local.ITTLocalLauncher"
    workers: int = 1                   # cells run in parallel
    gpus: Optional[Any] = None         # GPU ids to hand out; null: every visible GPU; []: CPU only
    gpus_per_worker: int = 1           # > 1 for multi-GPU (trainer=ddp) cells
    cpu_threads: Optional[int] = None  # threads per worker without GPUs; null: cores / workers
    log_dir: str = "${hydra.sweep.dir}/.launcher"


# The schema of conf/hydra/launcher/itt_local.yaml (which lists it in its defaults).
ConfigStore.instance().store(group="hydra/launcher", name="itt_local_schema", node=ITTLocalLauncherConf,
                             provider="itt")


def visible_gpus() -> List[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi
    lists (no torch import: the launching process stays light)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def assign_devices(workers: int, gpus: Sequence[str], per_worker: int) -> List[List[str]]:
    """The GPUs of each worker: consecutive groups of ``per_worker``, reused round-robin when
    there are more workers than groups; no GPUs gives every worker an empty list (CPU)."""
    if not gpus:
        return [[] for _ in range(workers)]
    per_worker = max(1, min(per_worker, len(gpus)))
    groups = [list(gpus[i:i + per_worker]) for i in range(0, len(gpus) - per_worker + 1, per_worker)]
    if workers > len(groups):
        log.warning("%d workers for %d GPU group(s) of %d: workers share GPUs", workers, len(groups), per_worker)
    return [groups[i % len(groups)] for i in range(workers)]


def _task_reference(task_function: TaskFunction) -> Tuple[str, str, str]:
    """How a worker finds the task function: (kind, module name or script path, qualname)."""
    module = task_function.__module__
    if module == "__main__":
        main = sys.modules["__main__"]
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:
            return "module", spec.name, task_function.__qualname__
        return "path", os.path.abspath(main.__file__), task_function.__qualname__
    return "module", module, task_function.__qualname__


def _load_task(ref: Tuple[str, str, str]) -> TaskFunction:
    import importlib
    import inspect
    import runpy

    kind, where, qualname = ref
    if kind == "module":
        namespace: Any = importlib.import_module(where)
        obj = namespace
        for part in qualname.split("."):
            obj = getattr(obj, part)
    else:
        obj = runpy.run_path(where, run_name="__itt_task__")[qualname]
    return inspect.unwrap(obj)  # hydra.main's wrapper -> the task function


def _worker(slot: int, payload: bytes, jobs: Any, results: Any, log_path: str) -> None:
    """A worker process: run the cells sent on ``jobs`` until None arrives."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import cloudpickle
    from hydra.core.singleton import Singleton
    from hydra.core.utils import run_job
    from omegaconf import open_dict

    print(f"itt_local worker{slot} (pid {os.getpid()}): CUDA_VISIBLE_DEVICES="
          f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')!r}",
          flush=True)
    state = cloudpickle.loads(payload)
    Singleton.set_state(state["singletons"])
    setup_globals()
    hydra_context, config = state["hydra_context"], state["config"]
    task_function = _load_task(state["task"])
    parent = os.getppid()
    while True:
        try:
            item = jobs.get(timeout=5.0)
        except queue.Empty:
            if os.getppid() != parent:  # the launcher is gone: nobody will send more cells
                return
            continue
        if item is None:
            return
        idx, overrides = item
        start, started_at = time.perf_counter(), time.time()
        cell_error: Optional[str] = None
        try:
            sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"{idx}"
                sweep_config.hydra.job.num = idx
            ret = run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                          job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
            ok = ret.status == JobStatus.COMPLETED
            value = ret._return_value if ok else f"{type(ret._return_value).__name__}: {ret._return_value}"
            if not ok:
                traceback.print_exception(ret._return_value)
            message = (idx, ok, value, ret.working_dir, ret.task_name)
            if ok:  # a failing cell writes error.json and returns normally
                cell_error = _cell_error(str(Path(str(sweep_config.hydra.sweep.dir))
                                             / str(sweep_config.hydra.sweep.subdir)), started_at)
        except Exception as exc:  # noqa: BLE001 - reported to the launcher, the worker goes on
            traceback.print_exc()
            message = (idx, False, f"{type(exc).__name__}: {exc}", None, None)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            results.put(("done", slot) + message + (time.perf_counter() - start, cell_error))
        except Exception:  # noqa: BLE001 - e.g. a return value that does not pickle
            results.put(("done", slot, idx, message[1], repr(message[2]), message[3], message[4],
                         time.perf_counter() - start, cell_error))


def _duration(seconds: float) -> str:
    seconds = int(round(max(0.0, seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class SweepProgress:
    """The sweep's one progress line: ``12/60 cells, 1 failed | running: a, b | 3m10s, ETA ~7m``.

    On a terminal the line is redrawn in place (at most once a second, and on every start
    and end); the per-cell end lines are written above it. Elsewhere (a log file, a pipe)
    the line is written once per finished cell. The ETA assumes the cells left take, per
    worker, the mean time of the cells finished so far; it is a rough guide, since stage-1
    cells run first and take longer than the ones that reuse their model.
    """

    def __init__(self, total: int, workers: int, stream: Any = None, live: Optional[bool] = None,
                 clock: Any = time.monotonic) -> None:
        self.total, self.workers = total, max(1, workers)
        self.stream = stream if stream is not None else sys.stderr
        self.live = (hasattr(self.stream, "isatty") and self.stream.isatty()) if live is None else live
        self.clock = clock
        self.started = clock()
        self.done = self.failed = 0
        self.running: Dict[int, Tuple[str, float]] = {}
        self.durations: List[float] = []
        self._last_draw = 0.0
        self._width = 0

    def line(self) -> str:
        now = self.clock()
        elapsed = now - self.started
        text = f"{self.done}/{self.total} cells"
        if self.failed:
            text += f", {self.failed} failed"
        if self.running:
            names = [f"{label} ({_duration(now - t0)})" for label, t0 in self.running.values()]
            text += " | running: " + "; ".join(names)
        text += f" | {_duration(elapsed)}"
        left = self.total - self.done
        if left and self.durations:
            mean = sum(self.durations) / len(self.durations)
            in_flight = sum(max(0.0, mean - (now - t0)) for _, t0 in self.running.values())
            queued = left - len(self.running)
            eta = (in_flight + max(0, queued) * mean) / self.workers
            text += f", ETA ~{_duration(eta)}"
        elif not left:
            text += ", all done"
        return text

    def _draw(self, force: bool = False) -> None:
        if not self.live:
            return
        now = self.clock()
        if not force and now - self._last_draw < 1.0:
            return
        self._last_draw = now
        text = self.line()
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def _message(self, text: str) -> None:
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, idx: int, label: str) -> None:
        self.running[idx] = (label, self.clock())
        self._draw(force=True)

    def finish(self, idx: int, ok: bool, seconds: float, message: str) -> None:
        self.running.pop(idx, None)
        self.done += 1
        self.failed += 0 if ok else 1
        self.durations.append(seconds)
        if message:
            self._message(message)
        if self.live:
            self._draw(force=True)
        else:
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def tick(self) -> None:
        self._draw()

    def close(self) -> None:
        if self.live and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def _cell_error(working_dir: Optional[str], since: float) -> Optional[str]:
    """The first line of the error.json a cell wrote during this launch, if any: the app
    turns a failing cell into error.json and a normal return, so the job itself completes."""
    if not working_dir:
        return None
    path = Path(working_dir) / "error.json"
    try:
        if path.stat().st_mtime < since:
            return None
        import json

        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(doc.get("exception") or "failed").splitlines()[0] if isinstance(doc, dict) else "failed"


def _labels(job_overrides: Sequence[Sequence[str]]) -> List[str]:
    """Per job, the overrides that tell it apart from the others (all of them for one job)."""
    jobs = [filter_overrides(list(o)) for o in job_overrides]
    if len(jobs) < 2:
        return [" ".join(j) for j in jobs]
    common = set(jobs[0]).intersection(*map(set, jobs[1:]))
    return [" ".join(o for o in j if o not in common) or " ".join(j) for j in jobs]


class WorkerDied(RuntimeError):
    """The worker process running a cell ended before the cell did (killed, out of memory)."""


class ITTLocalLauncher(Launcher):
    """Hydra launcher: the jobs of a batch on ``workers`` spawned worker processes (see the
    module docstring); returns one JobReturn per job, in the jobs' order."""

    def __init__(self, workers: int = 1, gpus: Optional[Any] = None, gpus_per_worker: int = 1,
                 cpu_threads: Optional[int] = None, log_dir: Optional[str] = None) -> None:
        if int(workers) < 1:
            raise ValueError(f"hydra.launcher.workers must be at least 1, not {workers}")
        self.workers = int(workers)
        self.gpus = None if gpus is None else [str(g) for g in
                                               (gpus.split(",") if isinstance(gpus, str) else gpus) if str(g)]
        self.gpus_per_worker = int(gpus_per_worker)
        self.cpu_threads = cpu_threads
        self.log_dir = log_dir
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    # ------------------------------------------------------------------------------
    def _worker_env(self, devices: List[str], workers: int) -> Dict[str, str]:
        env = {"CUDA_VISIBLE_DEVICES": ",".join(devices)}
        if not devices:
            threads = self.cpu_threads or max(1, (os.cpu_count() or 1) // workers)
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[name] = os.environ.get(name, str(threads))
        return env

    def _start(self, ctx: Any, slot: int, devices: List[str], workers: int, payload: bytes, results: Any,
               log_dir: Path) -> Tuple[Any, Any]:
        jobs = ctx.Queue()
        saved = dict(os.environ)
        os.environ.update(self._worker_env(devices, workers))
        try:  # a spawned process starts with this environment
            proc = ctx.Process(target=_worker, name=f"itt-worker-{slot}",
                               args=(slot, payload, jobs, results, str(log_dir / f"worker{slot}.log")))
            proc.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return proc, jobs

    def _lost(self, overrides: Sequence[str], reason: str) -> Optional[str]:
        """Write error.json for a cell whose worker died; returns the cell's directory."""
        assert self.hydra_context is not None and self.config is not None
        try:
            from itt import records
            from itt.config import to_dict

            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            run_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
            records.write_error(run_dir, to_dict(cfg), WorkerDied(reason), None)
            return str(run_dir)
        except Exception as exc:  # noqa: BLE001 - the failure is logged either way
            log.warning("Could not write error.json for %s: %s", " ".join(overrides), exc)
            return None

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import multiprocessing

        import cloudpickle
        from hydra.core.singleton import Singleton

        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log_dir = Path(str(self.log_dir)) if self.log_dir else sweep_dir / ".launcher"
        n = len(job_overrides)
        workers = min(self.workers, n)
        gpus = visible_gpus() if self.gpus is None else self.gpus
        devices = assign_devices(workers, gpus, self.gpus_per_worker)
        log.info("Launching %d cells on %d worker(s) (%s); worker logs in %s", n, workers,
                 ", ".join(f"worker{i}: GPU {','.join(d)}" if d else f"worker{i}: CPU"
                           for i, d in enumerate(devices)), log_dir)
        label = _labels(job_overrides)
        payload = cloudpickle.dumps({"singletons": Singleton.get_state(), "hydra_context": self.hydra_context,
                                     "config": self.config, "task": _task_reference(self.task_function)})
        ctx = multiprocessing.get_context("spawn")
        results_q = ctx.Queue()
        pending = deque(range(n))
        procs: Dict[int, Any] = {}
        queues: Dict[int, Any] = {}
        busy: Dict[int, Tuple[int, float]] = {}
        returns: Dict[int, JobReturn] = {}
        def _terminated(signum: int, frame: Any) -> None:
            raise SystemExit(128 + signum)

        try:  # stop the workers too when terminated (possible from the main thread only)
            previous: Any = signal.signal(signal.SIGTERM, _terminated)
        except ValueError:
            previous = None
        progress = SweepProgress(n, workers)
        try:
            for slot in range(workers):
                procs[slot], queues[slot] = self._start(ctx, slot, devices[slot], workers, payload, results_q, log_dir)
            while len(returns) < n:
                for slot in procs:
                    if slot not in busy and pending:
                        i = pending.popleft()
                        busy[slot] = (i, time.perf_counter())
                        queues[slot].put((initial_job_idx + i, list(job_overrides[i])))
                        log.debug("#%d start  (worker%d) %s", initial_job_idx + i, slot, label[i])
                        progress.start(i, label[i])
                try:
                    _, slot, idx, ok, value, wd, task_name, seconds, cell_error = results_q.get(timeout=1.0)
                except queue.Empty:  # check on the workers
                    lost = set(range(n)) - set(returns)
                    self._check_workers(ctx, procs, queues, busy, pending, returns, job_overrides, initial_job_idx,
                                        devices, workers, payload, results_q, log_dir)
                    for i in sorted(lost & set(returns)):   # cells of workers that died
                        progress.finish(i, False, 0.0, "")   # _check_workers logged it
                    progress.tick()
                    continue
                i = idx - initial_job_idx
                busy.pop(slot, None)
                status = JobStatus.COMPLETED if ok else JobStatus.FAILED
                returns[i] = JobReturn(overrides=list(job_overrides[i]), working_dir=wd, task_name=task_name,
                                       status=status, _return_value=value if ok else RuntimeError(value))
                error = cell_error if ok else str(value)
                state = "done  " if error is None else "FAILED"
                text = f"#{idx} {state} ({seconds:.0f}s) {label[i]}" + ("" if error is None else f": {error}")
                log.debug("%s (worker%d)", text, slot)
                progress.finish(i, error is None, seconds, text)
        finally:
            progress.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            for slot, q in queues.items():
                try:
                    q.put(None)
                except Exception:  # noqa: BLE001
                    pass
            # Idle workers exit at once; after an interruption busy ones are stopped.
            deadline = time.monotonic() + (30 if len(returns) == n else 0)
            for proc in procs.values():
                proc.join(timeout=max(0.1, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.terminate()
                    proc.join(timeout=5)
        return [returns[i] for i in range(n)]

    def _check_workers(self, ctx: Any, procs: Dict[int, Any], queues: Dict[int, Any], busy: Dict[int, Tuple[int, float]],
                       pending: deque, returns: Dict[int, JobReturn], job_overrides: Sequence[Sequence[str]],
                       initial_job_idx: int, devices: List[List[str]], workers: int, payload: bytes,
                       results_q: Any, log_dir: Path) -> None:
        """A worker that died loses its cell (error.json) and is replaced while cells remain."""
        for slot, proc in list(procs.items()):
            if proc.is_alive():
                continue
            reason = f"worker process exited with status {proc.exitcode}"
            if slot in busy:
                i, _ = busy.pop(slot)
                run_dir = self._lost(job_overrides[i], reason)
                log.error("#%d FAILED (worker%d died: %s) %s%s", initial_job_idx + i, slot, proc.exitcode,
                          " ".join(filter_overrides(job_overrides[i])), f"; see {run_dir}" if run_dir else "")
                returns[i] = JobReturn(overrides=list(job_overrides[i]), working_dir=run_dir,
                                       status=JobStatus.FAILED, _return_value=RuntimeError(reason))
            del procs[slot]
            queues.pop(slot, None)
            if pending:
                procs[slot], queues[slot] = self._start(ctx, slot, devices[slot], workers, payload, results_q,
                                                        log_dir)
        if not procs and pending:
            raise RuntimeError("every worker died; see the worker logs")
