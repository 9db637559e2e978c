"""Interrupted cells resume where they stopped.

In-process: a stage interrupted after a checkpoint (at an epoch's end, or within an epoch)
and run again continues from ``last.ckpt`` with the same batches, the same dropout draws
and the same optimiser state, so its numbers equal those of an uninterrupted run.

End to end: a sweep on two parallel workers, killed (SIGKILL to its process group) while a
stage-1 model trains, is run again: finished cells are not rerun, the interrupted stage-1
model resumes from its checkpoint, and every stage-1 key is trained exactly once.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocess sweeps and whole cells

from itt.cell import run_cell
from itt.models.module import ITTModule

REPO = Path(__file__).resolve().parent.parent


class Interrupted(RuntimeError):
    pass


@pytest.fixture
def record_steps(monkeypatch):
    """(epoch, batch_idx) -> (item indices, loss) of every training step."""
    steps: dict[tuple[int, int], tuple[tuple[int, ...], float]] = {}
    original = ITTModule.training_step

    def training_step(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        steps[(self.current_epoch, batch_idx)] = (tuple(batch["index"].tolist()), float(loss.detach()))
        return loss

    monkeypatch.setattr(ITTModule, "training_step", training_step)
    return steps


# Where the interrupted run stops, where its last checkpoint was written, and so where the
# resumed run starts: (epoch, batch) of 6 batches an epoch.
CASES = {
    "epoch_end": ([], (2, 0), (2, 0)),                                          # checkpoint at validation
    "mid_epoch": (["stage2.val_check_interval=0.5"], (1, 4), (1, 3)),           # validation after batch 2
    "time_based": (["run.checkpoint_minutes=0.00001"], (1, 4), (1, 4)),         # after every batch
}
_REFERENCES: dict[tuple, tuple[dict, dict]] = {}


@pytest.mark.parametrize("where", list(CASES))
def test_interrupted_stage_resumes_exactly(make_cfg, tmp_path, monkeypatch, record_steps, where):
    extra, stop_at, first = CASES[where]
    base = ["intermediate=none", "stage2.max_train_examples=96", "stage2.batch_size=16", "stage2.epochs=3",
            "stage2.lr=3e-3"]
    semantic = tuple(o for o in extra if not o.startswith("run."))  # run.* does not change training
    if semantic not in _REFERENCES:
        _REFERENCES[semantic] = (run_cell(make_cfg(*base, *semantic), tmp_path / "reference"), dict(record_steps))
    reference, ref_steps = _REFERENCES[semantic]
    assert len(ref_steps) == 3 * 6
    cfg = make_cfg(*base, *extra)
    armed = [True]

    def on_train_batch_start(self, batch, batch_idx):
        if armed[0] and (self.current_epoch, batch_idx) == stop_at:
            raise Interrupted("stopped for the test")

    monkeypatch.setattr(ITTModule, "on_train_batch_start", on_train_batch_start)
    run_dir = tmp_path / "interrupted"
    with pytest.raises(Interrupted):
        run_cell(cfg, run_dir)
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and (run_dir / "error.json").exists()
    armed[0] = False
    record_steps.clear()
    resumed = run_cell(cfg, run_dir)

    assert min(record_steps) == first, "training continues after the checkpoint, not from the start"
    assert record_steps == {k: v for k, v in ref_steps.items() if k >= first}, \
        "same batches, same losses as the uninterrupted run"
    assert resumed["stage2"]["resumed_from"]["epoch"] == 1
    assert resumed["stage2"]["steps"] == reference["stage2"]["steps"] == 18
    assert resumed["stage2"]["best_val"] == reference["stage2"]["best_val"]
    assert resumed["metrics"] == reference["metrics"]
    assert not (run_dir / "error.json").exists() and (run_dir / "error.resolved.json").exists()


def test_checkpoints_of_another_config_are_not_resumed(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg("intermediate=none", "stage2.max_train_examples=64", "stage2.epochs=2")

    armed = [True]

    def on_train_batch_start(self, batch, batch_idx):
        if armed[0] and self.current_epoch == 1:
            raise Interrupted("stopped for the test")

    monkeypatch.setattr(ITTModule, "on_train_batch_start", on_train_batch_start)
    with pytest.raises(Interrupted):
        run_cell(cfg, tmp_path / "cell")
    armed[0] = False
    changed = make_cfg("intermediate=none", "stage2.max_train_examples=64", "stage2.epochs=2", "stage2.lr=1e-4")
    result = run_cell(changed, tmp_path / "cell")
    assert result["stage2"]["resumed_from"] is None


# ----------------------------------------------------------------------------- end to end
SWEEP = ["experiment=smoke", "logger=none", "trainer.enable_progress_bar=false", "model=tiny_bert",
         "stage1.max_train_examples=96", "stage2.max_train_examples=64", "stage1.epochs=4", "stage2.epochs=1",
         "stage1.lr=9.7e-4",  # stage-1 keys of this test alone
         "hydra/launcher=itt_local", "hydra.launcher.workers=2",
         # Hydra's order with seeds outermost: both workers start on cells of the same stage-1
         # key, so a cell finishes while the second seed's stage-1 model is still in training.
         "hydra.sweeper.order=grid",
         "hydra.sweeper.params=null", "seed=0,1", "intermediate=smoke_movies,none",
         "target=smoke_products,smoke_xling"]


def _results(sweep: Path) -> dict[tuple, dict]:
    out = {}
    for path in sweep.rglob("result.json"):
        r = json.loads(path.read_text())
        c = r["cell"]
        out[(c["intermediate"], c["target"], c["seed"])] = r
    return out


def _found(root: Path, pattern: str) -> bool:
    """Whether ``root.glob(pattern)`` matches, polled while the sweep runs: a worker may remove
    a folder (a finished cell's checkpoints) while the glob walks it, which pathlib reports as
    FileNotFoundError; that poll then counts as no match."""
    try:
        return any(True for _ in root.glob(pattern))
    except FileNotFoundError:
        return False


def test_killed_parallel_sweep_reruns_only_what_is_missing(tmp_path, output_root):
    env = dict(os.environ, ITT_OUTPUT_DIR=str(tmp_path), ITT_CACHE_DIR=str(output_root / "cache"))
    sweep = tmp_path / "multirun" / "smoke"
    stage1_cache = output_root / "cache" / "stage1"
    cmd = [sys.executable, "-m", "itt.train", "-m", *SWEEP]
    log1 = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log1, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Kill once a cell has finished and the second seed's stage-1 model is in training:
        # it has written an epoch checkpoint but is not published yet.
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and proc.poll() is None:
            if _found(sweep, "**/result.json") and _found(stage1_cache, "*.partial/checkpoints/last.ckpt"):
                break
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log1.close()
    before = _results(sweep)
    partial = [p.parent.parent.name.removesuffix(".partial") for p in
               stage1_cache.glob("*.partial/checkpoints/last.ckpt")]
    assert before and len(partial) == 1

    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    after = _results(sweep)
    assert len(after) == 8
    for key, result in before.items():  # finished cells are skipped, not redone
        assert after[key]["finished_at"] == result["finished_at"], key
    with_itt = [r for r in after.values() if r["stage1"] is not None]
    keys = {r["stage1"]["key"] for r in with_itt}
    trained = [r for r in with_itt if not r["stage1"]["reused"]]
    assert len(keys) == 2 and len(trained) == len(keys), "each stage-1 key is trained exactly once"
    resumed = [r for r in trained if r["stage1"]["key"] == partial[0]]
    assert resumed and resumed[0]["stage1"]["resumed_from"] is not None, \
        "the interrupted stage-1 model continues from its checkpoint"
    assert not list(stage1_cache.glob("*.partial")), "a published stage-1 model leaves no partial state"
    # Workers ran on the CPU, sharing its cores.
    worker_log = (sweep / ".launcher" / "worker0.log").read_text()
    assert "CUDA_VISIBLE_DEVICES=''" in worker_log
