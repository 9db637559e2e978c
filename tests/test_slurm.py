"""The grid on a real single-node SLURM cluster (tests/slurm/cluster.sh: munge, MariaDB +
slurmdbd, slurmctld, slurmd), through ``hydra/launcher=slurm``:

* the smoke grid: every cell finishes, each stage-1 key is trained once, itt.status agrees,
  and each task asked what the model card says; a rerun submits no job;
* ``scontrol requeue`` during stage 1, then ``scancel --signal=USR2`` during stage 2: the
  cell resumes from its checkpoints and ends with the metrics of an uninterrupted run;
* preemption by a job in a higher-priority partition (PreemptMode=REQUEUE): the same;
* ``scancel`` of a running cell: the sweep ends, the cell's error.json names the
  cancellation, the other cell finishes, the exit status is non-zero; a rerun submits that
  cell alone.

Skipped where the machine cannot run the cluster (not root, no apt-get): see
tests/slurm/cluster.py. The cluster is started once for the module and stopped by PID.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from slurm.cluster import Cluster, skip_reason, wait_for

REPO = Path(__file__).resolve().parent.parent
BASE = ["experiment=smoke", "logger=none", "trainer.enable_progress_bar=false", "model=tiny_bert", "seed=0"]
# One cell with stages long enough to be interrupted after a checkpoint (one at every
# validation) and well before they end: `scontrol requeue` and `scancel` send SIGTERM, which
# submitit's task ignores, and SIGKILL KillWait (3 s) later, so stage 1 (100 epochs of 2
# steps) must outlast its first checkpoint by more than that. USR2 stops a task at once.
CELL = BASE + ["intermediate=smoke_movies", "target=smoke_products", "stage1.max_train_examples=64",
               "stage1.max_val_examples=32", "stage1.epochs=100", "stage1.lr=1.03e-3",
               "stage2.max_train_examples=64", "stage2.epochs=30"]
CELL_DIR = Path("tiny_bert/smoke_movies__smoke_products/seed0")
SWEEP_TIMEOUT = 600

pytestmark = [pytest.mark.slow, pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))]


@pytest.fixture(scope="module")
def cluster():
    # Under /tmp, not pytest's tmp (mode 0700): munged runs as the munge user.
    root = Path(tempfile.mkdtemp(prefix="itt-slurm-"))

    def interrupted(signum, frame):  # a CI time-out: stop the daemons on the way out
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        cluster = Cluster.start(root)
        sys.stderr.write(f"\n[slurm] cluster started in {cluster.start_seconds:.1f}s ({root})\n")
        yield cluster
    finally:
        Cluster(root, 0.0).stop()
        shutil.rmtree(root, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def start_sweep(cluster: Cluster, out: Path, name: str, overrides: list[str],
                log_name: str | None = None) -> tuple[subprocess.Popen, Path]:
    """``python -m itt.train -m ... hydra/launcher=slurm`` into ``out``/sweep, jobs named
    ``name``. Every sweep shares this session's output tree (ITT_OUTPUT_DIR: the generated
    data, the stage-1 cache) with the in-process reference run, as one cluster's jobs do."""
    env = dict(cluster.env, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    log = out / f"{log_name or name}.log"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "itt.train", "-m", *overrides, "hydra/launcher=slurm",
           f"hydra.launcher.name={name}", f"hydra.sweep.dir={out / 'sweep'}"]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    return proc, log


def finish(proc: subprocess.Popen, log: Path, cluster: Cluster) -> int:
    try:
        return proc.wait(timeout=SWEEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the sweep did not end in {SWEEP_TIMEOUT}s:\n{log.read_text()[-4000:]}\n"
                             f"{cluster.log_tail()}")


def job_of(run_dir: Path) -> str:
    """The SLURM job (array task) running a cell, from the Hydra record the cell wrote."""
    from omegaconf import OmegaConf

    return str(OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.job.id)


def ended(cluster: Cluster, name: str) -> list[dict[str, str]]:
    """sacct's records of the jobs called ``name`` once none is pending or running (a task
    ends a moment after its cell wrote result.json and the sweep returned)."""
    def records() -> list[dict[str, str]] | None:
        out = cluster.sacct(name)
        return out if out and not {r["state"] for r in out} & {"PENDING", "RUNNING", "COMPLETING"} else None

    return wait_for(f"the jobs {name} to end", records, 60, poll_s=1)  # type: ignore[return-value]


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def assert_same_training(got: dict, reference: dict) -> None:
    """The cell's numbers are those of the uninterrupted run of the same config and seed."""
    assert got["config_hash"] == reference["config_hash"]
    assert got["metrics"] == reference["metrics"]
    assert got["baselines"] == reference["baselines"]
    assert got["stage2"]["steps"] == reference["stage2"]["steps"]
    assert got["stage2"]["best_val"] == reference["stage2"]["best_val"]
    assert got["stage1"]["key"] == reference["stage1"]["key"]
    assert got["stage1"]["val"] == reference["stage1"]["val"]


@pytest.fixture(scope="module")
def reference(cluster, output_root, tmp_path_factory):
    """CELL run uninterrupted, in this process (one torch thread, as the SLURM tasks); its
    published stage-1 model is then removed so that the cluster trains it again."""
    import torch

    from itt import stage1_cache
    from itt.cell import run_cell
    from itt.config import compose, to_dict

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = to_dict(compose(CELL))
        ref = run_cell(cfg, tmp_path_factory.mktemp("reference"))
    finally:
        torch.set_num_threads(threads)
    shutil.rmtree(stage1_cache.stage1_dir(cfg["paths"]["cache_dir"], ref["stage1"]["key"]))
    return ref


# ----------------------------------------------------------------------------- the smoke grid
SMOKE = BASE + ["stage1.max_train_examples=64", "stage2.max_train_examples=64", "stage1.epochs=1",
                "stage2.epochs=1", "stage1.lr=1.09e-3"]  # intermediate x target from experiment=smoke: 4 cells


@pytest.fixture(scope="module")
def smoke_sweep(cluster, tmp_path_factory, output_root):
    out = tmp_path_factory.mktemp("smoke")
    proc, log = start_sweep(cluster, out, "itt-smoke", SMOKE)
    rc = finish(proc, log, cluster)
    return out, rc, log


def test_smoke_grid_runs_as_array_jobs_with_the_model_cards_resources(cluster, smoke_sweep):
    from itt.status import sweep_status

    out, rc, log = smoke_sweep
    assert rc == 0, log.read_text()[-4000:]
    sweep = out / "sweep"
    results = [json.loads(p.read_text()) for p in sorted(sweep.rglob("result.json"))]
    assert sorted((r["cell"]["intermediate"], r["cell"]["target"]) for r in results) == [
        ("none", "smoke_products"), ("none", "smoke_xling"),
        ("smoke_movies", "smoke_products"), ("smoke_movies", "smoke_xling")]
    with_itt = [r for r in results if r["stage1"] is not None]
    assert len({r["stage1"]["key"] for r in with_itt}) == 1
    assert sorted(r["stage1"]["reused"] for r in with_itt) == [False, True], "the stage-1 key is trained once"
    status = sweep_status(sweep)
    assert (status.planned, status.count("finished"), status.count("failed"), status.count("missing")) == (4, 4, 0, 0)
    records = ended(cluster, "itt-smoke")
    assert len(records) == 4 and {r["state"] for r in records} == {"COMPLETED"}, records
    # tiny_bert's card: resources.cpus 1, mem_gb 4
    assert {(r["cpus"], r["mem"]) for r in records} == {("1", "4G")}, records
    assert len({r["job"].split("_")[0] for r in records}) == 1, "one array"


def test_rerun_of_a_finished_sweep_submits_no_job(cluster, smoke_sweep, output_root):
    out, rc, _ = smoke_sweep
    assert rc == 0
    sweep = out / "sweep"
    before = {p: json.loads(p.read_text())["finished_at"] for p in sweep.rglob("result.json")}
    tasks = cluster.task_ids("itt-smoke")
    proc, log = start_sweep(cluster, out, "itt-smoke", SMOKE, log_name="rerun")
    assert finish(proc, log, cluster) == 0, log.read_text()[-4000:]
    text = log.read_text()
    assert "4 of 4 cells already finished with this config (result.json): not launched; 0 to launch" in text
    assert "SLURM array" not in text
    assert cluster.task_ids("itt-smoke") == tasks, "no job submitted"
    assert {p: json.loads(p.read_text())["finished_at"] for p in sweep.rglob("result.json")} == before


# ----------------------------------------------------------------------------- interruptions
def test_requeue_in_stage1_and_usr2_in_stage2_resume_to_the_uninterrupted_metrics(cluster, reference,
                                                                                     output_root, tmp_path):
    proc, log = start_sweep(cluster, tmp_path, "itt-requeue", CELL)
    run_dir = tmp_path / "sweep" / CELL_DIR
    key = reference["stage1"]["key"]
    partial = output_root / "cache" / "stage1" / f"{key}.partial" / "checkpoints" / "last.ckpt"
    try:
        wait_for("a stage-1 checkpoint", partial.exists, 300, proc, log)
        job = job_of(run_dir)
        cluster.cmd("scontrol", "requeue", job)
        stage2_ckpt = run_dir / "checkpoints" / "last.ckpt"
        wait_for("a stage-2 checkpoint after the requeue", stage2_ckpt.exists, 300, proc, log)
        assert job_of(run_dir) == job, "the requeued task keeps its id"
        cluster.cmd("scancel", "--signal=USR2", job)
        rc = finish(proc, log, cluster)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, log.read_text()[-4000:]
    from itt import stage1_cache

    got = result(run_dir)
    # The last attempt found stage 1 published by the one before it; the published model
    # records that its training continued from a checkpoint.
    meta = stage1_cache.read_meta(stage1_cache.stage1_dir(output_root / "cache", key))
    assert meta["resumed_from"] is not None, "stage 1 continued from its checkpoint after scontrol requeue"
    assert got["stage2"]["resumed_from"] is not None, "stage 2 continued from its checkpoint after USR2"
    assert_same_training(got, reference)
    states = [r["state"] for r in ended(cluster, "itt-requeue")]
    assert states.count("REQUEUED") == 2 and states[-1] == "COMPLETED", states


def test_preempted_cell_resumes_to_the_uninterrupted_metrics(cluster, reference, output_root, tmp_path):
    cpus = os.cpu_count() or 1
    # The cell holds every CPU of the node (a per-sweep override of the card's 1 CPU), so a
    # 1-CPU job in the `high` partition must preempt it.
    proc, log = start_sweep(cluster, tmp_path, "itt-preempt", CELL + [f"hydra.launcher.cpus_per_task={cpus}"])
    run_dir = tmp_path / "sweep" / CELL_DIR
    try:
        wait_for("a stage-2 checkpoint", (run_dir / "checkpoints" / "last.ckpt").exists, 300, proc, log)
        cluster.cmd("sbatch", "--partition=high", "--job-name=itt-high", "--cpus-per-task=1", "--mem=100",
                    "--output=/dev/null", "--wrap", "sleep 1")
        rc = finish(proc, log, cluster)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, log.read_text()[-4000:]
    records = ended(cluster, "itt-preempt")
    # SLURM signals the preempted task (preempt_send_user_signal: its --signal, USR2);
    # submitit requeues it at once, so sacct records the attempt as REQUEUED (PREEMPTED when
    # SLURM's own requeue comes first).
    states = [r["state"] for r in records]
    assert {"REQUEUED", "PREEMPTED"} & set(states[:-1]) and states[-1] == "COMPLETED", records
    assert {r["cpus"] for r in records} == {str(cpus)}
    assert [r["state"] for r in ended(cluster, "itt-high")] == ["COMPLETED"]
    logs = "".join(p.read_text() for p in (tmp_path / "sweep" / ".submitit").glob("*/*_log.err"))
    assert "Caught signal SIGUSR2" in logs and "this job is preempted" in logs
    got = result(run_dir)
    assert got["stage2"]["resumed_from"] is not None, "stage 2 continued from its checkpoint after preemption"
    assert_same_training(got, reference)


# ----------------------------------------------------------------------------- cancellation
CANCEL = BASE + ["intermediate=none", "target=smoke_products,smoke_xling", "stage2.max_train_examples=64",
                 "stage2.max_val_examples=32", "stage2.epochs=60", "stage2.lr=1.07e-3"]


@pytest.fixture(scope="module")
def cancelled_sweep(cluster, tmp_path_factory, output_root):
    """Two cells; the first to write a checkpoint is cancelled with scancel."""
    out = tmp_path_factory.mktemp("cancel")
    sweep = out / "sweep"
    dirs = [sweep / "tiny_bert" / f"none__{t}" / "seed0" for t in ("smoke_products", "smoke_xling")]
    proc, log = start_sweep(cluster, out, "itt-cancel", CANCEL)
    try:
        victim = wait_for("a stage-2 checkpoint", lambda: next(
            (d for d in dirs if (d / "checkpoints" / "last.ckpt").exists()), None), 300, proc, log)
        job = job_of(victim)
        cluster.cmd("scancel", job)
        t_cancel = time.monotonic()
        rc = finish(proc, log, cluster)
        seconds = time.monotonic() - t_cancel
    finally:
        if proc.poll() is None:
            proc.kill()
    other = next(d for d in dirs if d != victim)
    return {"out": out, "rc": rc, "log": log, "victim": victim, "other": other, "job": job,
            "seconds_after_cancel": seconds}


def test_cancelled_cell_fails_alone_and_the_sweep_ends(cluster, cancelled_sweep):
    c = cancelled_sweep
    text = c["log"].read_text()
    assert c["rc"] != 0, text[-4000:]
    assert "1 job(s) did not complete" in text
    error = json.loads((c["victim"] / "error.json").read_text())
    assert error["exception"].startswith(f"SlurmJobEnded: SLURM job {c['job']} ended in state CANCELLED"), error
    assert not (c["victim"] / "result.json").exists()
    assert result(c["other"])["status"] == "ok", "the other cell finished"
    # The sweep waits for the other cell, then ends: no wait on the cancelled one.
    assert c["seconds_after_cancel"] < 240
    from itt.status import sweep_status

    status = sweep_status(c["out"] / "sweep")
    assert (status.count("finished"), status.count("failed")) == (1, 1)


def test_rerun_after_one_failure_submits_exactly_that_cell(cluster, cancelled_sweep, output_root):
    c = cancelled_sweep
    tasks = cluster.task_ids("itt-cancel")
    before = result(c["other"])["finished_at"]
    proc, log = start_sweep(cluster, c["out"], "itt-cancel", CANCEL, log_name="rerun")
    assert finish(proc, log, cluster) == 0, log.read_text()[-4000:]
    text = log.read_text()
    assert "1 of 2 cells already finished with this config (result.json): not launched; 1 to launch" in text
    new = cluster.task_ids("itt-cancel") - tasks
    assert len(new) == 1, new
    assert result(c["victim"])["status"] == "ok" and result(c["other"])["finished_at"] == before
    assert not (c["victim"] / "error.json").exists()
