"""benchmarks.bench_mini: exclusive phase times, the sweep efficiency from result.json files,
and BENCHMARKS.md sections replaced in place."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_mini import PhaseClock, sweep_efficiency  # noqa: E402
from benchmarks.common import Goal, Section  # noqa: E402
from benchmarks.run import update_report  # noqa: E402


def test_phase_clock_counts_nested_phases_once() -> None:
    clock = PhaseClock()
    with clock.phase("outer"):
        time.sleep(0.05)
        with clock.phase("inner"):
            time.sleep(0.10)
        time.sleep(0.05)
    assert clock.wall["inner"] == pytest.approx(0.10, abs=0.04)
    assert clock.wall["outer"] == pytest.approx(0.10, abs=0.04)   # without the inner 0.10
    assert set(clock.cpu) == {"outer", "inner"}


def _result(path: Path, stage1: float, stage2: float, ev: float, reused: bool | None) -> None:
    path.mkdir(parents=True)
    doc = {"wall_time_s": {"stage1": stage1, "stage2": stage2, "eval": ev},
           "stage1": None if reused is None else {"reused": reused}}
    (path / "result.json").write_text(json.dumps(doc))


def test_sweep_efficiency_counts_stage1_where_trained(tmp_path: Path) -> None:
    _result(tmp_path / "a", 30.0, 10.0, 2.0, reused=False)   # trained stage 1
    _result(tmp_path / "b", 25.0, 10.0, 2.0, reused=True)    # waited 25 s for it: not work
    _result(tmp_path / "c", 0.0, 8.0, 1.0, reused=None)      # no ITT
    eff = sweep_efficiency(tmp_path, wall_s=40.0, workers=2)
    assert eff["cells"] == 3 and eff["work_s"] == pytest.approx(63.0)
    assert eff["per_phase_s"] == {"stage1": 30.0, "stage2": 28.0, "eval": 5.0}
    assert eff["efficiency"] == pytest.approx(63.0 / 80.0, abs=1e-3)


def test_update_report_replaces_one_section_and_its_goal_rows() -> None:
    old = "\n".join([
        "# Benchmarks", "", "## Goals", "", "| item | goal | target | measured | status | command |",
        "|---|---|---|---|---|---|", "| 1 | speed | ≥ 1 | 1.2 | met | `x` |", "| 9 | old | ≥ 0.85 | 0.5 | not met | `y` |",
        "", "## 1. Training", "", "keep me", "", "## 9. The mini sweep", "", "old text", "",
        "## What limits the rest", "", "limits", ""])
    sec = Section("mini", "9. The mini sweep: new", "python -m benchmarks.run --only mini")
    sec.add("new text", "")
    sec.goals.append(Goal("sweep efficiency (mini grid)", 0.9, 0.85, unit="share"))
    new_sec = Section("profile", "8. Where a mini cell's time goes", "cmd")
    new_sec.add("profile text", "")
    text = update_report(old, [sec, new_sec], {"date_utc": "2026-12-03", "load_average_at_start": "1.0",
                                                "git": "abc"})
    assert "keep me" in text and "old text" not in text and "new text" in text
    assert "| 1 | speed | ≥ 1 | 1.2 | met | `x` |" in text and "| 9 | old |" not in text
    assert "| 9 | sweep efficiency (mini grid) |" in text
    assert text.index("## 8. Where") < text.index("## What limits the rest")
    assert text.count("## 9.") == 1 and "Updated on its own by" in text
