"""End to end: the smoke cell, the baseline cell, skipping finished cells, W&B offline."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from itt.cell import run_cell


def _run(make_cfg, tmp_path: Path, *overrides: str) -> tuple[dict, Path]:
    cfg = make_cfg(*overrides)
    run_dir = tmp_path / "cell"
    return run_cell(cfg, run_dir), run_dir


def test_smoke_cell_end_to_end(make_cfg, tmp_path):
    # A learning rate of its own: no other test shares this stage-1 key, so it is trained here.
    result, run_dir = _run(make_cfg, tmp_path, "stage1.lr=4.1e-4")
    on_disk = json.loads((run_dir / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert on_disk["status"] == "ok"
    assert on_disk["cell"] == {"model": "tiny_bert", "intermediate": "smoke_movies",
                               "target": "smoke_products", "seed": 0}
    for key in ("config", "config_hash", "versions", "git", "wall_time_s", "metrics", "baselines"):
        assert key in on_disk
    assert on_disk["config"]["stage1"]["max_train_examples"] == 640
    assert on_disk["versions"]["torch"].startswith("2.13")
    assert on_disk["stage1"]["key"] and on_disk["stage1"]["reused"] is False
    assert on_disk["target"]["split"]["train_fraction"] == 0.7
    metrics = on_disk["metrics"]
    assert set(metrics["per_language"]) == {"en"}
    assert metrics["per_language"]["en"]["n"] == 120  # 30% of 400
    assert metrics["main"] == metrics["average"]["accuracy"]
    # The generated task is learnable: clearly above always predicting the majority class.
    assert metrics["main"] > on_disk["baselines"]["majority"]["main"] + 0.15
    assert on_disk["baselines"]["zero_shot"] is not None  # same label set as the intermediate task
    assert not list(run_dir.glob("**/*.ckpt")), "checkpoints are removed unless keep_checkpoints"
    # Per-example predictions for the report's paired tests, consistent with the metrics.
    assert on_disk["examples"] == "examples.json"
    ex = json.loads((run_dir / "examples.json").read_text())
    assert ex["config_hash"] == on_disk["config_hash"] and ex["main_metric"] == "accuracy"
    rows = ex["target"]["en"]
    assert len(rows["pred"]) == len(rows["gold"]) == 120
    acc = sum(p == g for p, g in zip(rows["pred"], rows["gold"])) / 120
    assert acc == pytest.approx(metrics["main"], abs=1e-6)
    zs = ex["zero_shot"]["en"]
    assert zs["gold"] == rows["gold"]
    assert sum(p == g for p, g in zip(zs["pred"], zs["gold"])) / 120 == \
        pytest.approx(on_disk["baselines"]["zero_shot"]["main"], abs=1e-6)


def test_baseline_cell_runs_without_stage1(make_cfg, tmp_path):
    result, _ = _run(make_cfg, tmp_path, "intermediate=none", "target=smoke_sts")
    assert result["stage1"] is None and result["intermediate"] is None
    assert result["baselines"]["zero_shot"] is None
    assert result["target"]["type"] == "text_pair_regression"
    assert set(result["metrics"]["average"]) == {"pearson", "spearman"}
    assert result["metrics"]["main"] > 0.3
    assert result["baselines"]["majority"]["main"] is None  # a constant has no correlation


def test_cross_lingual_target_scores_every_language(make_cfg, tmp_path):
    result, _ = _run(make_cfg, tmp_path, "intermediate=none", "target=smoke_xling")
    assert set(result["metrics"]["per_language"]) == {"en", "de"}
    assert result["target"]["train_language"] == "en"


def test_finished_cell_is_skipped_and_changed_config_keeps_old_result(make_cfg, tmp_path):
    first, run_dir = _run(make_cfg, tmp_path, "intermediate=none")
    t0 = time.perf_counter()
    again, _ = _run(make_cfg, tmp_path, "intermediate=none")
    assert again["finished_at"] == first["finished_at"]
    assert time.perf_counter() - t0 < 5
    changed, _ = _run(make_cfg, tmp_path, "intermediate=none", "stage2.epochs=1")
    assert changed["config_hash"] != first["config_hash"]
    kept = run_dir / f"result.{first['config_hash']}.json"
    assert json.loads(kept.read_text())["finished_at"] == first["finished_at"]


def test_wandb_offline_run_holds_logged_metrics(make_cfg, tmp_path):
    from itt.wandb_offline import read_offline_run

    result, run_dir = _run(make_cfg, tmp_path, "logger=wandb", "intermediate=none")
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, "one offline W&B run per trained stage"
    run = read_offline_run(runs[0])
    assert run["summary"]["test/accuracy"] == pytest.approx(result["metrics"]["main"])
    assert any("train/loss" in h for h in run["history"])
    assert any("val/accuracy" in h for h in run["history"])
    assert run["job_type"] == "stage2" and run["group"] == "smoke"
    assert {"model:tiny_bert", "target:smoke_products", "seed:0"} <= set(run["tags"])
    assert "smoke_products" in json.dumps(run["config"])
