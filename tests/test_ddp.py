"""One cell on two processes (trainer=ddp; Lightning's DDP over gloo on the CPU), inside a
sweep: the cell runs as a plain run of its own, Lightning starts the second rank, the ranks
split the batches, rank 0 alone trains-and-publishes the stage-1 model under the lock and
writes result.json, and validation scores every item (predictions gathered from both)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ddp_cell_in_a_sweep(tmp_path, output_root):
    cache = output_root / "cache"
    env = dict(os.environ, ITT_OUTPUT_DIR=str(tmp_path), ITT_CACHE_DIR=str(cache))
    cmd = [sys.executable, "-m", "itt.train", "-m", "experiment=smoke", "logger=none",
           "trainer.enable_progress_bar=false", "trainer=ddp", "model=tiny_bert", "intermediate=smoke_movies",
           "target=smoke_products", "seed=0", "stage1.max_train_examples=64", "stage2.max_train_examples=64",
           "stage1.epochs=2", "stage2.epochs=2", "stage1.lr=1.03e-3"]  # a stage-1 key of this test alone
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cell = tmp_path / "multirun" / "smoke" / "tiny_bert" / "smoke_movies__smoke_products" / "seed0"
    assert not (cell / "error.json").exists(), (cell / "error.json").read_text()[-3000:]
    result = json.loads((cell / "result.json").read_text())
    assert result["status"] == "ok" and result["config"]["trainer"]["devices"] == 2
    log = (cell / "train.log").read_text()
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log

    # Stage 1: trained here (not reused), published once by rank 0, nothing left half-written.
    key = result["stage1"]["key"]
    assert result["stage1"]["reused"] is False
    stage1 = cache / "stage1"
    meta = json.loads((stage1 / key / "stage1.json").read_text())
    assert not list(stage1.glob(f"{key}.tmp*")) and not (stage1 / f"{key}.partial").exists()
    # 64 examples: 2 batches of 32 per epoch in stage 1, 4 of 16 in stage 2, split over 2 ranks.
    assert meta["steps"] == 2 * 1 and result["stage2"]["steps"] == 2 * 2
    assert meta["val"] and result["stage2"]["best_val"]  # both ranks' predictions, gathered
    assert result["metrics"]["per_language"]["en"]["n"] == 120  # rank 0 scores the whole test set
    assert list(cell.parent.parent.rglob("result.json")) == [cell / "result.json"]
