"""The grid: which cells a sweep plans (pairing, plan.json, dry run) and what
``python -m itt.status`` makes of a sweep directory. No training here: fast."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from itt.plan import read_plan, single_cell_command, write_plan
from itt.status import main as status_main
from itt.status import sweep_status

REPO = Path(__file__).resolve().parent.parent
PAPER_PAIRS = {("imdb", "rotten_tomatoes"), ("imdb", "allocine"),
               ("yelp_polarity", "amazon_polarity"), ("yelp_polarity", "amazon_reviews_de"),
               ("paws", "stsb"), ("paws", "stsb_de")}
PAPER_TARGETS = {t for _, t in PAPER_PAIRS}


def _dry_run(tmp_path: Path, *overrides: str, importtime: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, ITT_OUTPUT_DIR=str(tmp_path / "out"))
    cmd = [sys.executable] + (["-X", "importtime"] if importtime else []) + \
        ["-m", "itt.train", "-m", *overrides, "run.dry_run=true"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _listed_cells(stdout: str) -> list[dict]:
    cells = []
    for line in stdout.splitlines():
        if line.strip().startswith("#") and "model=" in line:
            cell = dict(part.split("=", 1) for part in line.split() if "=" in part and not part.startswith("->"))
            cells.append(cell)
    return cells


@pytest.mark.slow
def test_paper_dry_run_lists_the_paired_grid_without_loading_a_model(tmp_path):
    proc = _dry_run(tmp_path, "experiment=paper", importtime=True)
    cells = _listed_cells(proc.stdout)
    assert len(cells) == 3 * 6 * 2 * 3 == 108
    assert {c["model"] for c in cells} == {"bert", "roberta", "xlnet"}
    assert {c["seed"] for c in cells} == {"0", "1", "2"}
    with_itt = {(c["intermediate"], c["target"]) for c in cells if c["intermediate"] != "none"}
    assert with_itt == PAPER_PAIRS, "an intermediate task pairs only with its own field's targets"
    assert {c["target"] for c in cells if c["intermediate"] == "none"} == PAPER_TARGETS
    assert "108 to run; nothing was run" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert not {"torch", "transformers", "pytorch_lightning"} & imported, "a dry run loads no model code"
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"


@pytest.mark.slow
def test_every_experiment_sweeps_through_the_itt_sweeper(tmp_path):
    smoke = _listed_cells(_dry_run(tmp_path, "experiment=smoke").stdout)
    assert len(smoke) == 2 * 2 * 2 * 2  # all smoke tasks are sentiment: nothing is left out
    mini = _listed_cells(_dry_run(tmp_path, "experiment=mini").stdout)
    assert mini and all(c["intermediate"] == "none" or
                        (c["intermediate"], c["target"]) in {("vader_movie", "vader_amazon"),
                                                            ("vader_movie", "sentiment_xling"),
                                                            ("newsgroups20", "bbc_news"),
                                                            ("newsgroups20", "topics_xling"),
                                                            ("stsb_en", "stsb_xling")} for c in mini)
    full = _listed_cells(_dry_run(tmp_path, "experiment=paper", "hydra.sweeper.pairing=all").stdout)
    assert len(full) == 3 * 4 * 6 * 3
    subset = _listed_cells(_dry_run(tmp_path, "experiment=paper", "model=bert", "seed=0").stdout)
    assert len(subset) == 12 and {c["model"] for c in subset} == {"bert"}


def test_plan_json_merges_sweeps_and_reads_as_the_report_expects(tmp_path):
    from itt.reporting.load import parse_plan

    a = {"model": "bert", "intermediate": "none", "target": "stsb", "seed": 0, "dir": "bert/none__stsb/seed0",
         "overrides": ["model=bert", "intermediate=none", "target=stsb", "seed=0"]}
    b = dict(a, model="roberta", dir="roberta/none__stsb/seed0")
    assert write_plan(tmp_path, "paper", [a]) == (1, 1)
    assert write_plan(tmp_path, "paper", [a, b]) == (2, 1)  # a later sweep into the same directory adds
    plan = read_plan(tmp_path)
    assert plan["experiment"] == "paper" and [c["model"] for c in plan["cells"]] == ["bert", "roberta"]
    rows = parse_plan(tmp_path / "plan.json")
    assert [(r["model"], r["target"], r["seed"]) for r in rows] == [("bert", "stsb", 0), ("roberta", "stsb", 0)]


def _cell_dir(root: Path, model: str, inter: str, target: str, seed: int) -> Path:
    d = root / model / f"{inter}__{target}" / f"seed{seed}"
    d.mkdir(parents=True)
    return d


def test_status_names_finished_failed_and_missing_cells(tmp_path, capsys):
    cells = [{"model": "m", "intermediate": i, "target": "t", "seed": s, "dir": f"m/{i}__t/seed{s}",
              "overrides": [f"intermediate={i}", f"seed={s}"]}
             for i in ("none", "x") for s in (0, 1)]
    write_plan(tmp_path, "exp", cells)
    ok = _cell_dir(tmp_path, "m", "none", "t", 0)
    (ok / "result.json").write_text(json.dumps({"status": "ok", "cell": cells[0] | {"dir": None},
                                                "metrics": {"main": 0.5},
                                                "finished_at": "2026-01-01T00:00:00+00:00"}))
    bad = _cell_dir(tmp_path, "m", "none", "t", 1)
    (bad / "error.json").write_text(json.dumps({"status": "failed", "cell": cells[1],
                                                "exception": "ValueError: boom\nmore",
                                                "failed_at": "2026-01-01T00:00:00+00:00"}))
    half = _cell_dir(tmp_path, "m", "x", "t", 0)
    (half / "checkpoints").mkdir()
    (half / "checkpoints" / "last.ckpt").write_bytes(b"")
    stray = _cell_dir(tmp_path, "m", "x", "other", 0)
    (stray / "result.json").write_text(json.dumps({"status": "ok", "cell": {"model": "m", "intermediate": "x",
                                                                           "target": "other", "seed": 0},
                                                   "metrics": {"main": 0.5}}))

    status = sweep_status(tmp_path)
    assert (status.count("finished"), status.count("failed"), status.count("missing")) == (1, 1, 2)
    assert len(status.unplanned) == 1
    by_seed = {(c.intermediate, c.seed): c for c in status.cells}
    assert by_seed[("none", 1)].detail == "ValueError: boom"
    assert by_seed[("x", 0)].detail.startswith("interrupted in stage 2")
    assert by_seed[("x", 1)].overrides == ["intermediate=x", "seed=1"]

    assert status_main([str(tmp_path.parent)]) == 0  # finds the sweep below the directory given
    out = capsys.readouterr().out
    assert "4 planned: 1 finished, 1 failed, 2 missing" in out
    assert "failed   model=m intermediate=none target=t seed=1  | ValueError: boom" in out
    assert "finished model=" not in out  # listed only with --show finished/all
    assert status_main([str(tmp_path), "--check"]) == 1
    capsys.readouterr()
    assert status_main([str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["planned"] == 4 and {c["state"] for c in data[0]["cells"]} == {"finished", "failed", "missing"}


def test_single_cell_command_keeps_the_cell_and_drops_the_sweep():
    cmd = single_cell_command(["model=bert", "seed=1"], "/x/y", config_name="config",
                              hydra_overrides=["hydra/launcher=itt_local", "hydra.launcher.workers=4",
                                               "hydra.sweep.dir=/s", "hydra.mode=MULTIRUN", "hydra.verbose=true"])
    assert cmd[1:3] == ["-m", "itt.train"] and "-m" not in cmd[3:], "a plain run, not a sweep"
    assert cmd[-3:] == ["seed=1", "hydra.verbose=true", "hydra.run.dir='/x/y'"]
    assert not any(c.startswith(("hydra/launcher", "hydra.launcher", "hydra.sweep", "hydra.mode")) for c in cmd)


def test_stage1_first_order_launches_each_intermediate_model_before_its_reusers():
    from hydra_plugins.itt_sweeper.itt_sweeper import stage1_first

    grid = [(m, i, t) for m in ("a", "b") for i in ("none", "x", "y") for t in ("t1", "t2")]
    jobs = [[f"model={m}", f"intermediate={i}", f"target={t}", "seed=0", "stage2.lr=1e-4"] for m, i, t in grid]
    cells = [{"model": m, "intermediate": i, "target": t} for m, i, t in grid]
    order = stage1_first(jobs, cells)
    assert sorted(map(tuple, order)) == sorted(map(tuple, jobs)), "every cell once"
    names = [(j[0][6:], j[1][13:], j[2][7:]) for j in order]
    # the four stage-1 models (a/x, a/y, b/x, b/y) come first, one cell each, in grid order
    assert names[:4] == [("a", "x", "t1"), ("a", "y", "t1"), ("b", "x", "t1"), ("b", "y", "t1")]
    assert all(i == "none" for _, i, _ in names[4:8])
    assert names[8:] == [("a", "x", "t2"), ("a", "y", "t2"), ("b", "x", "t2"), ("b", "y", "t2")]
    # a different seed (or stage-1 setting) is a different intermediate model
    seeded = [j[:3] + ["seed=1"] for j in jobs[2:4]]
    assert [j[3] for j in stage1_first(jobs[2:4] + seeded, cells[2:4] * 2)[:2]] == ["seed=0", "seed=1"]


def test_local_launcher_hands_out_gpus_per_worker():
    from hydra_plugins.itt_launcher.itt_local import assign_devices

    assert assign_devices(2, [], 1) == [[], []]
    assert assign_devices(4, ["0", "1", "2", "3"], 1) == [["0"], ["1"], ["2"], ["3"]]
    assert assign_devices(2, ["0", "1", "2", "3"], 2) == [["0", "1"], ["2", "3"]]
    assert assign_devices(3, ["0", "1"], 1) == [["0"], ["1"], ["0"]]  # more workers than GPUs: shared


def test_launcher_configs_compose(make_cfg):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from hydra_plugins.itt_launcher.itt_local import ITTLocalLauncherConf
    from itt.config import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        local = compose("config", ["hydra/launcher=itt_local", "hydra.launcher.workers=3"], return_hydra_config=True)
        slurm = compose("config", ["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = OmegaConf.to_container(local.hydra.launcher, resolve=False)
    assert set(launcher) == {f.name for f in fields(ITTLocalLauncherConf)} and launcher["workers"] == 3
    s = slurm.hydra.launcher
    assert s._target_.endswith("SlurmLauncher") and s.tasks_per_node == 1
    # GPUs, CPUs, memory and time come per cell from the model card's resources block
    assert s.gpus_per_node is None and s.cpus_per_task is None and s.timeout_min is None
    assert s.max_num_timeout > 0 and s.array_parallelism > 1
    assert str(OmegaConf.to_container(s, resolve=False)["submitit_folder"]).startswith("${hydra.sweep.dir}")


@pytest.mark.parametrize("devices,strategy,expected", [(1, "auto", False), (2, "auto", True),
                                                        (1, "ddp", True), (2, "ddp_spawn", False),
                                                        ([0], "auto", False), ("auto", "auto", True)])
def test_multi_process_trainers_are_recognised(devices, strategy, expected):
    from itt.train import spans_processes

    assert spans_processes({"devices": devices, "strategy": strategy, "num_nodes": 1}) is expected


@pytest.mark.slow
def test_a_bad_setting_stops_the_sweep_before_any_cell(tmp_path):
    """A value no cell could run with ends the sweep before launching: exit 2, one line, no
    cell directories (a cell that fails at run time: tests/test_records.py)."""
    env = dict(os.environ, ITT_OUTPUT_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "itt.train", "-m", "experiment=smoke", "logger=none",
                           "model=tiny_bert", "intermediate=none", "target=smoke_products,smoke_xling", "seed=0",
                           "stage2.lr=-1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "error: stage2.lr must be positive, got -1.0" in proc.stderr and "nothing was launched" in proc.stderr
    assert not list(tmp_path.glob("multirun/smoke/*/*/seed0"))
