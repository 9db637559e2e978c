"""Bad input gets a clear error naming the thing and the fix, and loses nothing."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from itt.cell import run_cell
from itt.errors import DataError, HubUnavailableError, ModelError

REPO = Path(__file__).resolve().parent.parent


def _local_target(cfg: dict, path: Path) -> dict:
    cfg["intermediate"] = {"name": "none", "type": "none"}
    cfg["target"]["source"] = {"kind": "local", "data_files": {"all": str(path)}, "format": "json"}
    return cfg


def test_missing_data_file_names_its_path(make_cfg, tmp_path):
    missing = tmp_path / "nowhere" / "data.jsonl"
    cfg = _local_target(make_cfg(), missing)
    with pytest.raises(DataError, match=str(missing).replace(".", r"\.")):
        run_cell(cfg, tmp_path / "run")
    err = json.loads((tmp_path / "run" / "error.json").read_text())
    assert err["status"] == "failed" and "DataError" in err["exception"]
    assert err["cell"]["target"] == "smoke_products"


def test_missing_asset_points_to_fetch(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg("intermediate=none", "target=vader_amazon")
    cfg["target"]["source"]["data_files"]["all"] = str(tmp_path / "assets" / "data" / "vader_amazon.jsonl")
    cfg["paths"]["assets_dir"] = str(tmp_path / "assets")
    with pytest.raises(DataError, match="python -m itt.assets fetch"):
        run_cell(cfg, tmp_path / "run")


def test_label_outside_label_set_names_row_and_value(make_cfg, tmp_path):
    rows = [{"text": f"good film {i}", "label": "positive"} for i in range(30)]
    rows[17]["label"] = "neutral"
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _local_target(make_cfg(), path)
    with pytest.raises(DataError) as info:
        run_cell(cfg, tmp_path / "run")
    msg = str(info.value)
    assert "row 17" in msg and "'neutral'" in msg and "negative" in msg and str(path) in msg


def test_empty_split_names_the_split(make_cfg, tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text(json.dumps({"text": "good", "label": "positive"}) + "\n")
    cfg = _local_target(make_cfg(), path)
    with pytest.raises(DataError, match=r"the (validation|test) split for language 'en' is empty"):
        run_cell(cfg, tmp_path / "run")


def test_malformed_file_names_file(make_cfg, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "good", "label": "positive"}\n{"text": broken\n')
    cfg = _local_target(make_cfg(), path)
    with pytest.raises(DataError, match="broken.jsonl"):
        run_cell(cfg, tmp_path / "run")


def test_hub_model_offline_fails_fast_and_points_to_offline_configs(make_cfg, tmp_path):
    cfg = make_cfg("model=bert", "intermediate=none")
    t0 = time.perf_counter()
    with pytest.raises(HubUnavailableError) as info:
        run_cell(cfg, tmp_path / "run")
    assert time.perf_counter() - t0 < 10
    msg = str(info.value)
    assert "bert-base-cased" in msg and "tiny_bert" in msg and "experiment=mini" in msg


def test_hub_dataset_offline_fails_fast(make_cfg, tmp_path):
    cfg = make_cfg("intermediate=none", "target=imdb")
    t0 = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="stanfordnlp/imdb"):
        run_cell(cfg, tmp_path / "run")
    assert time.perf_counter() - t0 < 10


def test_missing_offline_model_points_to_fetch(make_cfg, tmp_path):
    cfg = make_cfg("model=minilm", "intermediate=none")
    cfg["model"]["pretrained"] = str(tmp_path / "no-minilm")
    with pytest.raises(ModelError, match="python -m itt.assets fetch"):
        run_cell(cfg, tmp_path / "run")


def test_failed_cell_keeps_finished_result(make_cfg, tmp_path):
    cfg = make_cfg("intermediate=none")
    first = run_cell(cfg, tmp_path / "run")
    bad = make_cfg("intermediate=none", "stage2.epochs=1")
    bad["target"]["source"]["data_files"] = {"all": str(tmp_path / "gone.jsonl")}
    bad["target"]["source"].pop("generator", None)
    with pytest.raises(DataError):
        run_cell(bad, tmp_path / "run")
    kept = json.loads((tmp_path / "run" / "result.json").read_text())
    assert kept["finished_at"] == first["finished_at"]
    assert (tmp_path / "run" / "error.json").exists()


@pytest.mark.slow
def test_cli_prints_clear_error_without_traceback(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "ITT_OUTPUT_DIR": str(tmp_path),
           "PATH": "/usr/bin:/bin", "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "itt.train", "model=xlnet", "intermediate=none",
                           "logger=none"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "xlnet-base-cased" in proc.stderr and "Traceback" not in proc.stderr
    unknown = subprocess.run([sys.executable, "-m", "itt.train", "model=gpt9"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2
    assert "unknown model 'gpt9'" in unknown.stderr and "tiny_bert" in unknown.stderr
    assert "Traceback" not in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1
