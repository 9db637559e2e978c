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

import pytest

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


def _slurm_launcher(tmp_path, monkeypatch, *overrides):
    """The `slurm` launcher as a sweep instantiates it (a stand-in `srun` on PATH, for
    submitit's sbatch text; nothing is submitted), and the config it was composed from."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from itt.config import CONF_DIR

    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", ["experiment=paper", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                 f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return instantiate(cfg.hydra.launcher), cfg


def _sbatch(launcher, request) -> dict:
    text = launcher.executor(request)._executor._make_submission_file_text("python -m submitit.core._submit x", "u")
    return {line.split()[1].split("=")[0]: line.split()[1] for line in text.splitlines() if line.startswith("#SBATCH")}


def test_slurm_resources_come_from_the_model_card_one_array_per_request(tmp_path, monkeypatch):
    """conf/hydra/launcher/slurm.yaml through the launcher's parameter mapping to the sbatch
    script submitit would submit: a base encoder's cell asks a GPU and its card's CPUs,
    memory and time, a tiny encoder's cell 1 CPU and no GPU; a sweep over both makes two
    arrays; a value set on the launcher applies to every cell."""
    from hydra_plugins.itt_launcher.itt_slurm import card_resources, cell_request
    from omegaconf import OmegaConf

    from itt.config import compose

    launcher, _ = _slurm_launcher(tmp_path, monkeypatch)
    assert launcher.params["max_num_timeout"] == 20
    cells = {m: compose(["experiment=paper", f"model={m}"]) for m in ("bert", "xlnet", "tiny_bert")}
    groups = launcher.groups(list(cells.values()))
    assert sorted(groups.values()) == [[0, 1], [2]], "bert and xlnet share a request, tiny_bert has its own"
    base = cell_request(launcher.params, card_resources(cells["bert"]))
    tiny = cell_request(launcher.params, card_resources(cells["tiny_bert"]))
    card = OmegaConf.to_container(cells["bert"].model.resources)
    assert base == {"cpus_per_task": card["cpus"], "mem_gb": card["mem_gb"], "gpus_per_node": card["gpus"],
                    "timeout_min": card["time_min"]} and card["gpus"] >= 1
    assert tiny == {"cpus_per_task": 1, "mem_gb": 4, "gpus_per_node": None, "timeout_min": 60}

    sbatch = _sbatch(launcher, base)
    assert sbatch["--gpus-per-node"] == f"--gpus-per-node={card['gpus']}"
    assert sbatch["--cpus-per-task"] == f"--cpus-per-task={card['cpus']}"
    assert sbatch["--mem"] == f"--mem={card['mem_gb']}GB" and sbatch["--time"] == f"--time={card['time_min']}"
    assert sbatch["--ntasks-per-node"].endswith("=1") and sbatch["--partition"].endswith("=gpu")
    assert sbatch["--job-name"] == "--job-name=itt-paper" and sbatch["--signal"] == "--signal=USR2@300"
    assert "--requeue" in sbatch
    sbatch = _sbatch(launcher, tiny)
    assert "--gpus-per-node" not in sbatch and sbatch["--cpus-per-task"] == "--cpus-per-task=1"
    assert sbatch["--mem"] == "--mem=4GB" and sbatch["--time"] == "--time=60"

    launcher, _ = _slurm_launcher(tmp_path, monkeypatch, "hydra.launcher.mem_gb=16", "hydra.launcher.gpus_per_node=2")
    assert len(launcher.groups(list(cells.values()))) == 2
    for model in cells:
        request = cell_request(launcher.params, card_resources(cells[model]))
        assert request["mem_gb"] == 16 and request["gpus_per_node"] == 2


def test_a_bad_resources_block_is_a_config_error(make_cfg):
    from hydra_plugins.itt_launcher.itt_slurm import card_resources
    from omegaconf import OmegaConf

    from itt.errors import ConfigError

    cfg = OmegaConf.create({"model": {"name": "m", "resources": {"cpus": 0}}})
    with pytest.raises(ConfigError, match=r"model.resources.cpus of 'm' must be an integer >= 1"):
        card_resources(cfg)
    cfg = OmegaConf.create({"model": {"name": "m", "resources": {"gpu": 1}}})
    with pytest.raises(ConfigError, match=r"model.resources.gpu of 'm' is not a resource"):
        card_resources(cfg)
