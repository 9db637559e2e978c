"""The records module: one cell key, output paths under ITT_OUTPUT_DIR, typed checks of
result.json, writers that keep earlier results, the user's umask, exit codes."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from itt import records
from itt.builders import FINISHED_RUNS, supersede_killed_runs
from itt.records import CellKey, MalformedFileError

REPO = Path(__file__).resolve().parent.parent


def _result(**over):
    base = {"status": "ok", "cell": {"model": "m", "intermediate": None, "target": "t", "seed": 1},
            "metrics": {"main": 0.5, "per_language": {"en": {"accuracy": 0.5}}, "average": {"accuracy": 0.5}},
            "config_hash": "abc", "finished_at": "2026-01-01T00:00:00Z"}
    base.update(over)
    return base


def test_cell_key_is_one_definition():
    key = CellKey.of({"model": "m", "intermediate": None, "target": "t", "seed": "2"})
    assert key == CellKey("m", "none", "t", 2) and str(key) == "model=m intermediate=none target=t seed=2"
    assert records.cell_key(key.as_dict()) == ("m", "none", "t", 2)
    with pytest.raises(MalformedFileError, match="seed"):
        CellKey.of({"model": "m", "intermediate": "x", "target": "t", "seed": 1.5})
    with pytest.raises(MalformedFileError, match="lacks target"):
        CellKey.of({"model": "m", "intermediate": "x", "seed": 1})


@pytest.mark.parametrize("bad, message", [
    ({"metrics": {"main": "high"}}, "metrics.main is 'high'"),
    ({"cell": {"model": "m"}}, "cell lacks"),
    ({"status": "failed"}, "status is 'failed'"),
    ({"config_hash": 3}, "config_hash is 3"),
])
def test_result_schema_names_the_bad_field(bad, message):
    with pytest.raises(MalformedFileError, match=message):
        records.validate_result(_result(**bad))


def test_write_result_keeps_other_configs_and_resolves_errors(tmp_path):
    run = tmp_path / "cell"
    run.mkdir()
    (run / records.ERROR).write_text("{}")
    records.write_result(run, _result(config_hash="old"))
    assert (run / "error.resolved.json").exists() and not (run / records.ERROR).exists()
    records.write_result(run, _result(config_hash="new"), {"target": {"en": {"pred": [1], "gold": [1]}}})
    assert json.loads((run / "result.old.json").read_text())["config_hash"] == "old"
    assert records.finished_result(run, "new")["examples"] == records.EXAMPLES
    assert records.finished_result(run, "old") is None
    assert records.read_examples(run)["config_hash"] == "new"
    (run / records.RESULT).write_text('{"status": "ok"')  # truncated
    assert records.finished_result(run, "new") is None
    assert records.run_dir_state(run)[0] == "failed"


def test_files_follow_the_users_umask(tmp_path):
    records.write_result(tmp_path, _result())
    mode = stat.S_IMODE((tmp_path / records.RESULT).stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_output_paths_honour_itt_output_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ITT_OUTPUT_DIR", str(tmp_path / "o"))
    assert records.multirun_root() == tmp_path / "o" / "multirun"
    assert records.default_result_dirs() == [tmp_path / "o" / "multirun", tmp_path / "o" / "runs"]
    assert records.report_dir([tmp_path / "o" / "multirun" / "mini"]) == tmp_path / "o" / "report" / "mini"
    from itt.reporting.load import _as_paths

    assert _as_paths(None) == records.default_result_dirs()


def test_killed_attempts_wandb_runs_are_superseded(tmp_path):
    wandb = tmp_path / "wandb"
    for name in ("offline-run-1-done", "offline-run-2-killed"):
        (wandb / name).mkdir(parents=True)
    (wandb / FINISHED_RUNS).write_text("offline-run-1-done\n")
    moved = supersede_killed_runs(tmp_path)
    assert [p.name for p in moved] == ["offline-run-2-killed"]
    assert sorted(p.name for p in wandb.glob("offline-run-*")) == ["offline-run-1-done"]


def test_status_exits_2_for_a_missing_directory(tmp_path):
    from itt.status import main

    assert main([str(tmp_path / "nope")]) == 2


@pytest.mark.slow
def test_sweep_with_a_failed_cell_exits_1_after_the_rest(tmp_path):
    conf = tmp_path / "conf" / "target"
    conf.mkdir(parents=True)
    card = (REPO / "conf" / "task" / "smoke_products.yaml").read_text()
    broken = card.replace("name: smoke_products", "name: broken").replace(
        "generator: smoke", "generator: null").replace("smoke/smoke_products.jsonl", "smoke/absent.jsonl")
    (conf / "broken.yaml").write_text(broken)
    env = dict(os.environ, ITT_OUTPUT_DIR=str(tmp_path / "out"))
    proc = subprocess.run([sys.executable, "-m", "itt.train", "-m", "--config-dir", str(tmp_path / "conf"),
                           "experiment=smoke", "intermediate=none", "target=smoke_products,broken", "logger=none",
                           "stage2.epochs=1", "stage2.max_train_examples=32", "trainer.enable_progress_bar=false"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    sweep = tmp_path / "out" / "multirun" / "smoke"
    done = list(sweep.glob("*/none__smoke_products/seed*/" + records.RESULT))
    failed = list(sweep.glob("*/none__broken/seed*/" + records.ERROR))
    assert done and len(done) == len(failed), "the good cells finished after the bad ones failed"
    assert all("absent.jsonl" in json.loads(p.read_text())["exception"] for p in failed)
    assert f"{len(failed)} planned cell(s) failed" in proc.stderr
