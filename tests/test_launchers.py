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


def test_slurm_config_makes_a_requeueable_array_job_with_one_gpu_per_cell(tmp_path, monkeypatch):
    """conf/hydra/launcher/slurm.yaml through hydra-submitit-launcher's parameter mapping to
    the sbatch script submitit would submit (a stand-in `srun` on PATH; nothing is submitted)."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    from itt.config import CONF_DIR

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", ["experiment=paper", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                 f"hydra.sweep.dir={tmp_path / 'sweep'}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    launcher = instantiate(cfg.hydra.launcher)
    params = dict(launcher.params)
    # As SlurmLauncher.launch builds its executor:
    executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    assert executor._executor.max_num_timeout == 20
    text = executor._executor._make_submission_file_text("python -m submitit.core._submit x", "uid")
    sbatch = {line.split()[1].split("=")[0]: line.split()[1] for line in text.splitlines()
              if line.startswith("#SBATCH")}
    assert sbatch["--gpus-per-node"] == "--gpus-per-node=1" and sbatch["--ntasks-per-node"].endswith("=1")
    assert sbatch["--partition"].endswith("=gpu") and sbatch["--job-name"] == "--job-name=itt-paper"
    assert sbatch["--time"] == "--time=1440" and sbatch["--signal"] == "--signal=USR2@300"
    assert "--requeue" in sbatch
