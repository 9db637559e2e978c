"""benchmarks/gpu_bench.py: the encoders' configs, the largest-batch search, the time
budget, the paper grid's cost, and the whole script with tiny encoders on the CPU (its
figures test the script; they are not GPU figures and nothing here asserts a speed)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_bench as gb
from itt.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- encoders
#: Parameter counts of the published checkpoints (AutoModel, no task head).
PUBLISHED_PARAMS = {"bert": 108_310_272, "roberta": 124_645_632, "xlnet": 116_718_336, "xlmr_base": 278_043_648}


@pytest.mark.parametrize("name", list(gb.ENCODERS))
def test_encoder_configs_have_the_published_size(name):
    from transformers import AutoConfig, AutoModel

    spec = gb.arch_config(name, tiny=False)
    with torch.device("meta"):   # shapes only, no memory
        model = AutoModel.from_config(AutoConfig.for_model(spec.pop("model_type"), **spec))
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS[name]


def test_xlnet_has_no_sdpa_and_the_others_do():
    assert gb.sdpa_support(gb.arch_config("xlnet", tiny=True)) is not None
    for name in ("bert", "roberta", "xlmr_base"):
        assert gb.sdpa_support(gb.arch_config(name, tiny=True)) is None


def test_xlnet_word_embedding_is_not_counted_as_model_flops():
    from transformers import XLNetConfig, XLNetModel

    from benchmarks import mfu

    model = XLNetModel(XLNetConfig(vocab_size=1000, d_model=32, n_layer=1, n_head=2, d_head=16, d_inner=64))
    total = sum(p.numel() for p in model.parameters())
    assert mfu.non_embedding_params(model) == total - 1000 * 32   # word_embedding.weight


# ----------------------------------------------------------------------------- largest batch
@pytest.mark.parametrize("limit", [1, 7, 8, 37, 63, 64, 100, 1000, 5000])
def test_largest_fitting_finds_the_limit(limit):
    calls = []

    def fits(b):
        calls.append(b)
        return b <= limit

    got = gb.largest_fitting(fits, start=8, cap=4096, grain=1, max_probes=40)
    assert got["largest"] == (min(limit, 4096))
    assert got["exact"]
    assert len(calls) == len(got["probes"]) <= 40
    assert got["first_failing"] == (None if limit >= 4096 else limit + 1)


def test_largest_fitting_respects_grain_cap_and_probe_bound():
    got = gb.largest_fitting(lambda b: b <= 37, start=16, cap=256, grain=8)
    assert (got["largest"], got["first_failing"], got["exact"]) == (32, 40, True)
    assert all(b % 8 == 0 for b, _ in got["probes"])
    capped = gb.largest_fitting(lambda b: True, start=16, cap=100, grain=4)
    assert capped["largest"] == 100 and capped["first_failing"] is None and capped["exact"]
    none = gb.largest_fitting(lambda b: False, start=64, cap=256, grain=8)
    assert none["largest"] is None and none["first_failing"] == 8
    short = gb.largest_fitting(lambda b: b <= 3000, start=8, cap=1 << 20, grain=1, max_probes=5)
    assert len(short["probes"]) == 5 and not short["exact"] and short["largest"] == 128
    with pytest.raises(ValueError):
        gb.largest_fitting(lambda b: True, start=4, cap=2, grain=1)


# ----------------------------------------------------------------------------- the time budget
def test_jobs_beyond_the_budget_are_skipped_with_a_reason():
    ran = []

    def job(name, kind, estimate, fail=False):
        def run():
            ran.append(name)
            if fail:
                raise RuntimeError("boom")
            return name
        return gb.Job(name, kind, "bert", run, estimate)

    # A fake clock: every job "takes" 30 s as the scheduler measures it.
    ticks = iter(range(0, 10_000, 30))
    done = []
    rows = gb.run_jobs([job("a", "k", 1), job("b", "k", 1), job("c", "other", 100), job("d", "other", 1, fail=True),
                        job("e", "x", 1)],
                       gb.Budget(60, reserve=5), lambda j, r: done.append((j.name, r)), clock=lambda: next(ticks))
    status = {r["job"]: r["status"] for r in rows}
    # b: the last 'k' job took 30 s, less than the ~55 s left; c: its guess (100 s) exceeds it.
    assert status == {"a": "done", "b": "done", "c": "skipped", "d": "failed", "e": "done"}
    assert ran == ["a", "b", "d", "e"]
    assert ("d", None) in done and ("e", "e") in done
    skipped = next(r for r in rows if r["job"] == "c")
    assert "budget" in skipped["note"] and "100 s" in skipped["note"]
    failed = next(r for r in rows if r["job"] == "d")
    assert "RuntimeError: boom" in failed["note"]
    # Once the budget is spent every remaining job is skipped.
    rows = gb.run_jobs([job("f", "y", 1)], gb.Budget(1, reserve=5), lambda j, r: None)
    assert rows[0]["status"] == "skipped"


# ----------------------------------------------------------------------------- the grid's cost
def test_split_sizes_follow_the_cards_split_and_caps():
    card = {"name": "imdb", "split": {"protocol": "ratio", "train_fraction": 0.7, "validation_fraction": 0.1},
            "max_examples": None}
    stage = {"max_train_examples": None, "max_eval_examples": None, "max_val_examples": None}
    # 50,000 rows, the paper's split: 63% training, 7% validation, 30% test.
    assert gb.split_sizes(card, stage, gb.HUB_ROWS) == {"train": 31_500, "validation": 3_500, "test": 15_000}
    capped = dict(card, name="rotten_tomatoes", max_examples=5000)
    assert gb.split_sizes(capped, stage, gb.HUB_ROWS) == {"train": 3_150, "validation": 350, "test": 1_500}
    small = dict(stage, max_train_examples=1000, max_eval_examples=200, max_val_examples=50)
    assert gb.split_sizes(card, small, gb.HUB_ROWS) == {"train": 1000, "validation": 50, "test": 200}
    with pytest.raises(ConfigError, match="--rows nowhere=N"):
        gb.split_sizes(dict(card, name="nowhere"), stage, gb.HUB_ROWS)
    with pytest.raises(ConfigError, match="own splits"):
        gb.split_sizes(dict(card, split={"protocol": "given"}), stage, gb.HUB_ROWS)


def test_grid_cost_of_composed_paper_cells_by_hand():
    cells = [{"model": "bert", "intermediate": i, "target": t, "seed": s,
              "overrides": ["model=bert", f"intermediate={i}", f"target={t}", f"seed={s}"]}
             for i, t, s in [("imdb", "rotten_tomatoes", 0), ("imdb", "allocine", 0), ("none", "rotten_tomatoes", 0),
                             ("imdb", "rotten_tomatoes", 1)]]
    cells.append({"model": "xlnet", "intermediate": "none", "target": "stsb", "seed": 0,
                  "overrides": ["model=xlnet", "intermediate=none", "target=stsb", "seed=0"]})
    composed = gb.compose_cells(cells, "paper", gpu=False)
    s1, s2 = composed[0][1]["stage1"], composed[0][1]["stage2"]
    train_shapes, eval_shapes = gb.grid_shapes(composed)
    assert train_shapes == {(s1["batch_size"], s1["max_length"]), (s2["batch_size"], s2["max_length"])}
    tr, ev, ratio = 0.1, 0.05, 0.8
    measured = {"bert": {"train_step_s": {f"{b}x{n}": tr for b, n in train_shapes},
                         "eval_step_s": {f"{b}x{n}": ev for b, n in eval_shapes}, "itt_over_bare": ratio}}
    got = gb.grid_cost(composed, measured, gb.HUB_ROWS)

    def stage(sizes, st, tests):
        steps = math.ceil(sizes[0] / st["batch_size"]) * st["epochs"]
        return (steps * tr / ratio + st["epochs"] * math.ceil(sizes[1] / st["eval_batch_size"]) * ev
                + tests * math.ceil(sizes[2] / st["eval_batch_size"]) * ev)

    imdb = stage((31_500, 3_500, 15_000), s1, 0)                     # once per seed: two stage-1 models
    # rotten_tomatoes has imdb's labels: an ITT cell also scores the stage-1 model zero-shot.
    rt_itt, rt_base = stage((3_150, 350, 1_500), s2, 2), stage((3_150, 350, 1_500), s2, 1)
    allocine = stage((3_150, 350, 1_500), s2, 2)
    want = (2 * imdb + 2 * rt_itt + allocine + rt_base) / 3600
    assert got["stage1_models"] == 2 and got["cells"] == 5
    assert got["per_model"]["bert"]["total_h"] == pytest.approx(want, rel=1e-9)
    assert got["per_model"]["bert"]["stage1_models"] == 2
    # xlnet was not measured: no total, the measured part reported apart, and said so.
    assert got["total_gpu_hours"] is None and got["models_without_measurement"] == ["xlnet"]
    assert got["measured_gpu_hours"] == pytest.approx(want, rel=1e-9)
    assert got["costliest_cell"]["cell"]["intermediate"] == "imdb"
    assert "upper bound" in got["basis"]


# ----------------------------------------------------------------------------- the command
def _env():
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                TOKENIZERS_PARALLELISM="false")


def test_bad_arguments_exit_2_with_the_fix(tmp_path, capsys):
    assert gb.main(["--out", str(tmp_path), "--encoders", "bert,gpt9"]) == 2
    assert "unknown encoder 'gpt9'" in capsys.readouterr().err
    assert gb.main(["--out", str(tmp_path), "--tiny", "--plan", str(tmp_path / "nowhere" / "plan.json")]) == 2
    assert "not a readable plan.json" in capsys.readouterr().err
    assert gb.main(["--out", str(tmp_path), "--tiny", "--rows", "imdb=many"]) == 2
    assert "expected TASK=N" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_run_writes_json_and_markdown(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("the tiny test run is for machines without a GPU")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "benchmarks.gpu_bench", "--tiny", "--no-compile", "--encoders", "bert,xlnet",
           "--out", str(out), "--time-budget-s", "400", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "gpu_bench.json").read_text())
    assert res["tiny"] is True and res["cuda"] is False and res["peak_flops"] is None
    assert {j["status"] for j in res["jobs"]} == {"done"}, res["jobs"]
    bert = {r["variant"]: r for r in res["variants"]["bert"]}
    assert set(bert) == {"fp32", "bf16", "bf16_sdpa"}
    for row in bert.values():
        assert row["tok_per_s"] > 0 and row["model_tflop_per_s"] > 0 and row["mfu"] is None
        assert row["real_tokens"] <= row["padded_tokens"]
    xlnet = {r["variant"]: r for r in res["variants"]["xlnet"]}
    assert "no SDPA" in xlnet["bf16_sdpa"]["skipped"] and xlnet["bf16"]["attention"] == "eager"
    assert "xlnet" in res["sdpa_fallback"]
    for enc in ("bert", "xlnet"):
        fw = res["frameworks"][enc]
        assert fw["same_batches"] is True and fw["hf_sampling"] == "train_sampling_strategy"
        for k in ("itt", "bare", "hf"):
            assert 0.0 <= fw[k][0]["accuracy"] <= 1.0 and fw[k][0]["tok_per_s"] > 0
        # the bare loop and itt trained on the same tokens
        assert fw["itt"][0]["real_tokens"] == fw["bare"][0]["real_tokens"]
        sh = res["shapes"][enc]
        assert set(sh["train_step_s"]) == {"32x128"} and set(sh["eval_step_s"]) == {"128x128"}
        assert sh["reference"]["shape"] == f"{gb.PLAN_TINY.reference_batch}x128"
        assert set(sh["model_tflop_per_s"]) == {"32x128", sh["reference"]["shape"]}
        assert all(v > 0 for v in sh["model_tflop_per_s"].values()) and set(sh["mfu"].values()) == {None}
        assert sh["largest_batch"]["largest"] == gb.PLAN_TINY.search_cap   # no device memory to run out of
    g = res["grid"]
    assert g["cells"] == 108 and g["stage1_models"] == 27
    assert g["models_without_measurement"] == ["roberta"] and g["total_gpu_hours"] is None
    assert g["per_model"]["bert"]["total_h"] > 0 and g["per_model"]["xlnet"]["total_h"] > 0
    md = (out / "gpu_bench.md").read_text()
    assert "these are not GPU figures" in md and "TINY CPU TEST, NOT GPU FIGURES" in md
    assert "hours (tiny CPU test)" in md
    assert "- bert: the workload's steps carry" in md and "- xlnet: the workload's steps carry" in md
