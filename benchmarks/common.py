"""What every benchmark shares: settings, side-by-side timing, ratio statistics and the
section a benchmark hands to the report writer.

Ratios, not absolute timings, are the figures: the machine this runs on is shared, and a
timing taken minutes apart from its rival measures the neighbours as much as the code.
Contenders therefore run in one process, alternating round by round, and a figure is the
median of per-round ratios with its range.
"""
from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Settings:
    """Run-wide settings; ``quick`` shrinks every workload to seconds (tests, smoke checks)."""

    quick: bool = False
    threads: int = 1
    synthetic: bool = False          # generated text even where the offline suite is present
    work_dir: Path | None = None     # scratch (checkpoints, caches); a temporary folder if None
    argv: list[str] = field(default_factory=list)
    log: Callable[[str], None] = print

    def command(self, only: str) -> str:
        """The command that reproduces one section's figures."""
        flags = " --quick" if self.quick else ""
        flags += " --synthetic" if self.synthetic else ""
        flags += f" --threads {self.threads}" if self.threads != 1 else ""
        return f"python -m benchmarks.run --only {only}{flags}"


@dataclass
class Goal:
    """One of the issue's goals: the measured figure against its target."""

    name: str
    value: float | None
    target: float | None           # None: a figure the issue asks for without a target
    higher_is_better: bool = True
    unit: str = "x"
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def status(self) -> str:
        if self.value is None:
            return "not measured"
        if self.target is None:
            return "reported"
        return "met" if self.met else "missed"

    def target_text(self) -> str:
        if self.target is None:
            return "—"
        return f"{'≥' if self.higher_is_better else '≤'} {self.target:g}{'' if self.unit == 'x' else ' ' + self.unit}"

    def value_text(self) -> str:
        if self.value is None:
            return "—"
        if self.unit == "share":
            return f"{100 * self.value:.0f}%"
        if self.unit == "x":
            return f"{self.value:.3f}"
        return f"{self.value:.2f} {self.unit}"


@dataclass
class Section:
    """A benchmark's contribution to BENCHMARKS.md."""

    key: str
    title: str
    command: str
    lines: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            self.lines.append("| " + " | ".join(str(x) for x in row) + " |")
        self.lines.append("")


# ----------------------------------------------------------------------------- timing
@dataclass
class RatioStats:
    """Per-round ratios of a contender against a reference (>1: the contender is faster)."""

    ratios: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def low(self) -> float:
        return min(self.ratios)

    @property
    def high(self) -> float:
        return max(self.ratios)

    def fmt(self, digits: int = 3) -> str:
        if len(self.ratios) == 1:
            return f"{self.ratios[0]:.{digits}f} (1 round)"
        return f"{self.median:.{digits}f} (range {self.low:.{digits}f}–{self.high:.{digits}f}, {len(self.ratios)} rounds)"


def ratio_stats(numerator: Sequence[float], denominator: Sequence[float]) -> RatioStats:
    """Round-by-round ratios of two equally long series (round i against round i)."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError("ratio_stats needs two series of the same, non-zero length")
    return RatioStats([a / b for a, b in zip(numerator, denominator)])


def interleave(contenders: dict[str, Callable[[int], Any]], rounds: int,
               log: Callable[[str], None] | None = None) -> dict[str, list[Any]]:
    """Run every contender once per round, in turn (A, B, A, B, ...); the order within a
    round alternates so that neither side always runs right after the other's warm-up."""
    out: dict[str, list[Any]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            out[name].append(contenders[name](r))
            if log is not None:
                log(f"  round {r + 1}/{rounds}: {name} -> {_short(out[name][-1])}")
    return out


def _short(result: Any) -> str:
    if isinstance(result, dict):
        keys = [k for k in ("tok_per_s", "seconds", "accuracy") if k in result]
        return ", ".join(f"{k}={result[k]:.4g}" for k in keys)
    return str(result)


@contextlib.contextmanager
def timer() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - start


def set_threads(n: int) -> None:
    """Intra-op threads for torch. One by default: on a shared machine, OpenMP workers
    spin-wait for cores that other jobs hold, and two threads measured ten times slower
    than one under load; one thread keeps every contender's timing stable."""
    import torch

    torch.set_num_threads(max(1, int(n)))


# ----------------------------------------------------------------------------- machine
def machine_info(settings: Settings) -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    info: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": settings.threads,
        "cpu": _cpu_name(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    for pkg in ("transformers", "pytorch_lightning", "datasets"):
        try:
            info[pkg] = __import__(pkg).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is reported, not fatal
            info[pkg] = "absent"
    try:
        import subprocess

        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                     text=True, timeout=10).stdout.strip() or "unknown"
    except Exception:  # noqa: BLE001
        info["git"] = "unknown"
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def python() -> str:
    return sys.executable
