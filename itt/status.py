"""Which cells of a sweep are finished, failed or missing.

    python -m itt.status                               # every sweep under outputs/multirun
    python -m itt.status outputs/multirun/paper --show all
    python -m itt.status outputs/multirun/paper --json

A sweep directory holds ``plan.json`` (every cell the sweep set out to run, written before
it launched anything) and one directory per cell with ``result.json`` (finished) or
``error.json`` (failed). Missing cells are planned cells with neither; a missing cell with
checkpoints was interrupted (or is running) and resumes from them when the sweep is run
again. Reads JSON files only, so it is quick on a login node while a sweep runs.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from itt.records import ERROR, RESULT, MalformedFileError, cell_key, format_cell, multirun_root, read_error, read_plan, \
    read_result, run_dir_state
from itt.records import PLAN as PLAN_FILE

STATES = ("finished", "failed", "missing")


@dataclass
class CellStatus:
    """One cell: ``state`` is finished, failed or missing; ``detail`` says when it finished,
    why it failed, or how far an interrupted one got."""

    model: str
    intermediate: str
    target: str
    seed: int
    state: str
    detail: str = ""
    path: str | None = None
    overrides: list[str] | None = None

    @property
    def cell(self) -> dict[str, Any]:
        return {"model": self.model, "intermediate": self.intermediate, "target": self.target, "seed": self.seed}


@dataclass
class SweepStatus:
    root: str
    experiment: str | None
    planned: int | None                                   # None: the directory has no plan.json
    cells: list[CellStatus] = field(default_factory=list)  # planned cells (or all found, without a plan)
    unplanned: list[CellStatus] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(c.state == state for c in self.cells)


def _cells_on_disk(root: Path) -> dict[tuple, CellStatus]:
    """Every cell with a result.json or error.json under ``root``."""
    found: dict[tuple, CellStatus] = {}
    dirs = {p.parent for name in (RESULT, ERROR) for p in root.rglob(name)}
    for run_dir in sorted(dirs):
        try:
            data = read_result(run_dir) or read_error(run_dir)
            key = cell_key(data["cell"]) if data else None
        except MalformedFileError:
            key = None
        if key is None:
            continue
        state, detail = run_dir_state(run_dir)
        status = CellStatus(*key, state=state, detail=detail, path=str(run_dir))
        old = found.get(key)
        # The same cell in two directories: a finished one wins over a failed one.
        if old is None or (old.state != "finished" and state == "finished"):
            found[key] = status
    return found


def sweep_status(root: str | Path) -> SweepStatus:
    """The status of every planned cell of the sweep at ``root`` (every found cell without a plan)."""
    root = Path(root)
    plan = read_plan(root)
    on_disk = _cells_on_disk(root) if root.exists() else {}
    if plan is None:
        return SweepStatus(str(root), None, None, cells=sorted(on_disk.values(), key=_order))
    cells: list[CellStatus] = []
    planned_keys = set()
    for entry in plan["cells"]:
        try:
            key = cell_key(entry)
        except MalformedFileError:
            continue
        planned_keys.add(key)
        status = on_disk.get(key)
        if status is None:
            run_dir = root / entry["dir"] if entry.get("dir") else None
            detail = run_dir_state(run_dir)[1] if run_dir is not None else ""
            status = CellStatus(*key, state="missing", detail=detail,
                                path=str(run_dir) if run_dir is not None else None)
        status.overrides = entry.get("overrides")
        cells.append(status)
    unplanned = [s for k, s in on_disk.items() if k not in planned_keys]
    return SweepStatus(str(root), plan.get("experiment"), len(cells), cells=cells,
                       unplanned=sorted(unplanned, key=_order))


def _order(c: CellStatus) -> tuple:
    return (c.model, c.target, c.intermediate, c.seed)


def find_sweeps(paths: Iterable[str | Path]) -> list[Path]:
    """Sweep roots in ``paths``: a directory with plan.json, the directories with one below
    it, or (when there is none) the directory itself."""
    roots: list[Path] = []
    for path in map(Path, paths):
        if (path / PLAN_FILE).exists():
            roots.append(path)
            continue
        below = sorted(p.parent for p in path.rglob(PLAN_FILE)) if path.exists() else []
        roots += below or [path]
    return roots


def render(status: SweepStatus, show: Iterable[str] = ("failed", "missing")) -> str:
    show = set(show)
    head = f"{status.root}"
    if status.experiment:
        head += f"  (experiment {status.experiment})"
    counts = ", ".join(f"{status.count(s)} {s}" for s in STATES if s != "missing" or status.planned is not None)
    planned = f"{status.planned} planned: " if status.planned is not None else "no plan.json: "
    lines = [head, f"  {planned}{counts}"]
    if status.unplanned:
        lines[-1] += f"; {len(status.unplanned)} more cells not in the plan"
    started = sum(c.state == "missing" and c.detail.startswith("interrupted") for c in status.cells)
    if started:
        lines[-1] += f" ({started} missing cells resume from checkpoints)"
    for c in status.cells:
        if c.state in show:
            text = f"  {c.state:<8} {format_cell(c.cell)}"
            if c.detail:
                text += f"  | {c.detail}"
            if c.state == "failed" and c.path:
                text += f"  | {Path(c.path) / ERROR}"
            lines.append(text)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m itt.status", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="*", help="sweep directories (default: outputs/multirun)")
    parser.add_argument("--show", nargs="+", default=["failed", "missing"], choices=[*STATES, "all"],
                        help="which cells to list (default: failed missing)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--check", action="store_true", help="exit with status 1 unless every planned cell finished")
    args = parser.parse_args(argv)
    absent = [d for d in args.dirs if not Path(d).exists()]
    if absent:
        print(f"error: no such directory: {absent[0]} (a sweep directory is outputs/multirun/<experiment>; "
              f"ITT_OUTPUT_DIR moves outputs/)", file=sys.stderr)
        return 2
    roots = find_sweeps(args.dirs or [multirun_root()])
    statuses = [sweep_status(r) for r in roots]
    if args.json:
        print(json.dumps([asdict(s) for s in statuses], indent=1))
    else:
        show = STATES if "all" in args.show else args.show
        for status in statuses:
            if not Path(status.root).exists():
                print(f"{status.root}: no such directory", file=sys.stderr)
                continue
            print(render(status, show))
    if args.check:
        return int(any(s.count("failed") or s.count("missing") for s in statuses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
