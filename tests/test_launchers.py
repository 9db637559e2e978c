"""The sweep through hydra-submitit-launcher's local mode (the SLURM launcher's twin: one
process per cell, all at once), with W&B offline: two cells that need the same stage-1
model train it once between them, and every stage's W&B run is grouped by the experiment,
typed by the stage and tagged with the cell."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from itt.wandb_offline import read_offline_run

REPO = Path(__file__).resolve().parent.parent


def test_submitit_local_sweep_with_wandb(tmp_path, output_root):
    env = dict(os.environ, ITT_OUTPUT_DIR=str(tmp_path), ITT_CACHE_DIR=str(output_root / "cache"),
               WANDB_MODE="offline")
    cmd = [sys.executable, "-m", "itt.train", "-m", "experiment=smoke", "hydra/launcher=submitit_local",
           "hydra.launcher.timeout_min=20", "logger=wandb", "trainer.enable_progress_bar=false", "model=tiny_bert",
           "intermediate=smoke_movies", "target=smoke_products,smoke_xling", "seed=0",
           "stage1.max_train_examples=64", "stage2.max_train_examples=64", "stage1.epochs=1", "stage2.epochs=1",
           "stage1.lr=1.01e-3"]  # a stage-1 key of this test alone
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweep = tmp_path / "multirun" / "smoke"
    assert list((sweep / ".submitit").iterdir()), "submitit ran the jobs"
    results = {}
    for target in ("smoke_products", "smoke_xling"):
        run_dir = sweep / "tiny_bert" / f"smoke_movies__{target}" / "seed0"
        results[target] = (run_dir, json.loads((run_dir / "result.json").read_text()))
    trained = [t for t, (_, r) in results.items() if not r["stage1"]["reused"]]
    assert len(trained) == 1 and len({r["stage1"]["key"] for _, r in results.values()}) == 1

    for target, (run_dir, result) in results.items():
        runs = [read_offline_run(p) for p in sorted((run_dir / "wandb").glob("offline-run-*"))]
        stages = sorted(r["job_type"] for r in runs)
        assert stages == (["stage1", "stage2"] if target in trained else ["stage2"])
        for run in runs:
            assert run["group"] == "smoke"
            assert {"model:tiny_bert", "intermediate:smoke_movies", f"target:{target}", "seed:0",
                    f"stage:{run['job_type']}"} <= set(run["tags"])
        stage2 = next(r for r in runs if r["job_type"] == "stage2")
        assert stage2["summary"]["test/accuracy"] == result["metrics"]["main"]
