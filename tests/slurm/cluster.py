"""The throwaway SLURM cluster of tests/slurm/cluster.sh, from Python: start, stop, and the
few queries the tests make (sacct, squeue, scontrol) with SLURM_CONF pointing at it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

SCRIPT = Path(__file__).resolve().parent / "cluster.sh"
PACKAGES = ("slurmctld", "slurmd", "slurm-client", "slurmdbd", "munge", "mariadb-server")


def _installed(package: str) -> bool:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return out.returncode == 0 and "install ok installed" in out.stdout


def skip_reason() -> str | None:
    """Why this machine cannot run the SLURM tests, or None when it can."""
    if os.environ.get("ITT_SLURM_TESTS", "1") == "0":
        return "ITT_SLURM_TESTS=0"
    if not sys.platform.startswith("linux"):
        return "the test SLURM cluster needs Linux"
    if os.geteuid() != 0:
        return "the test SLURM cluster needs root (it installs Debian packages and starts munged, mariadbd, " \
               "slurmdbd, slurmctld and slurmd)"
    if shutil.which("dpkg-query") is None:
        return "the test SLURM cluster needs a Debian system (dpkg, apt-get)"
    missing = [p for p in PACKAGES if not _installed(p)]
    if missing and shutil.which("apt-get") is None:
        return f"SLURM packages missing ({' '.join(missing)}) and no apt-get to install them"
    return None


class Cluster:
    """A running test cluster rooted at ``root`` (configs, state, logs, database)."""

    def __init__(self, root: Path, start_seconds: float) -> None:
        self.root = root
        self.start_seconds = start_seconds
        self.env = dict(os.environ, SLURM_CONF=str(root / "slurm.conf"))

    @classmethod
    def start(cls, root: Path, timeout_s: float = 900) -> "Cluster":
        t0 = time.monotonic()
        proc = subprocess.run(["bash", str(SCRIPT), "start", str(root)], capture_output=True, text=True,
                              timeout=timeout_s)
        if proc.returncode != 0:
            subprocess.run(["bash", str(SCRIPT), "stop", str(root)], capture_output=True, timeout=120)
            raise RuntimeError(f"tests/slurm/cluster.sh start failed (exit {proc.returncode}):\n"
                               f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        return cls(root, time.monotonic() - t0)

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.root)], capture_output=True, timeout=180)

    def cmd(self, *args: str, timeout_s: float = 60) -> str:
        proc = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def sacct(self, name: str) -> list[dict[str, str]]:
        """Every record of the jobs called ``name``, requeued attempts included (sacct -D)."""
        out = self.cmd("sacct", "-n", "-P", "-X", "-D", "-S", "now-1day", f"--name={name}",
                       "-o", "JobID,State,AllocCPUS,ReqMem,Partition")
        keys = ("job", "state", "cpus", "mem", "partition")
        return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]

    def task_ids(self, name: str) -> set[str]:
        """The array tasks (``<array>_<i>``) of the jobs called ``name``."""
        return {r["job"] for r in self.sacct(name)}

    def log_tail(self, n: int = 40) -> str:
        out = []
        for f in sorted((self.root / "log").glob("slurm*.log")):
            lines = f.read_text(errors="replace").splitlines()[-n:]
            out.append(f"== {f.name}\n" + "\n".join(lines))
        return "\n".join(out)


def wait_for(what: str, predicate: Callable[[], object], timeout_s: float,
             proc: subprocess.Popen | None = None, log: Path | None = None, poll_s: float = 0.1) -> object:
    """Until ``predicate()`` is truthy (its value is returned); fails after ``timeout_s`` or
    when ``proc`` (a sweep) ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-4000:] if log is not None and log.exists() else ""
            raise AssertionError(f"the sweep ended (exit {proc.returncode}) before {what}:\n{tail}")
        time.sleep(poll_s)
    tail = log.read_text()[-4000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{tail}")
