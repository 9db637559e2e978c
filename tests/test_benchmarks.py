"""The benchmark suite runs end to end on tiny inputs and writes a report of the expected
shape. No timing is asserted: figures from --quick are meaningless by design."""
from __future__ import annotations

import json
import logging
import re
import warnings

import numpy as np
import pytest
import torch


@pytest.fixture
def restore_globals():
    """The suite sets torch's thread count, logger levels and warning filters for itself."""
    threads = torch.get_num_threads()
    levels = {name: logging.getLogger(name).level for name in list(logging.root.manager.loggerDict)}
    with warnings.catch_warnings():
        yield
    torch.set_num_threads(threads)
    for name in list(logging.root.manager.loggerDict):  # loggers made during the test: back to NOTSET
        logging.getLogger(name).setLevel(levels.get(name, logging.NOTSET))


def test_quick_suite_writes_the_report(tmp_path, restore_globals):
    from benchmarks.run import BENCHMARKS, main

    out, raw = tmp_path / "BENCHMARKS.md", tmp_path / "bench.json"
    assert main(["--quick", "--out", str(out), "--json", str(raw), "--work-dir", str(tmp_path)]) == 0
    text = out.read_text()
    for heading in ("# Benchmarks", "## Machine", "## Workload (items 1–4)", "## Goals", "## What limits the rest"):
        assert heading in text
    # Every section names the command that reproduces it, and none failed.
    commands = re.findall(r"^Command: `python -m benchmarks\.run --only (\w+) --quick`", text, flags=re.M)
    assert set(commands) >= set(BENCHMARKS) - {"sweep"}
    assert ": failed" not in text and "The benchmark failed" not in text
    # The goals table: one row per goal with a status, the targets among them.
    goal_rows = [line for line in text.splitlines() if line.startswith("| ") and line.endswith("` |")]
    assert goal_rows and all(re.search(r"\| (met|missed|reported|not measured) \|", r) for r in goal_rows)
    for target in ("≥ 0.98", "≥ 1", "≥ 5", "≥ 2.5", "≤ 0.05"):
        assert any(f"| {target} |" in r for r in goal_rows), target
    data = json.loads(raw.read_text())
    assert {"training", "hf", "batching", "preprocess", "grid", "startup", "memory", "gpu"} <= set(data["sections"])
    assert data["machine"]["torch"] == torch.__version__
    training = data["sections"]["training"]["data"]
    assert len(training["ratio"]) >= 1 and all(r > 0 for r in training["ratio"])
    assert data["sections"]["preprocess"]["data"]["eval_sorted"] is True


def test_stratified_sample_keeps_the_epochs_mix_of_widths():
    from benchmarks.runners import RecordedBatches
    from itt.data.batching import LengthGroupedBatchSampler

    lengths = np.random.default_rng(0).lognormal(3.3, 0.8, size=2048).astype(int) + 3
    inner = LengthGroupedBatchSampler(lengths, 32, "length_grouped", 50, seed=0)
    rec = RecordedBatches(inner, lengths, sample=8, seed=0)
    batches = list(rec)
    assert len(batches) == 8 == len(rec)
    widths = sorted(int(lengths[b].max()) for b in batches)
    all_widths = sorted(int(lengths[b].max()) for b in inner)
    assert widths[0] <= np.percentile(all_widths, 15) and widths[-1] >= np.percentile(all_widths, 85)
    real, padded = rec.tokens()
    assert 0 < real <= padded


def test_mfu_counts_dense_and_attention_flops():
    from benchmarks import mfu

    # 6 N T + 12 L d T^2 for one sequence of T tokens.
    assert mfu.flops_per_sequence(1000, 2, 16, [10]) == 6 * 1000 * 10 + 12 * 2 * 16 * 100
    assert mfu.mfu(989e12, 1.0, "NVIDIA H100 80GB HBM3") == pytest.approx(1.0)
    assert mfu.peak_flops("some CPU") is None


def _parity_result(means: dict[str, list[float]], speeds: dict[str, float]) -> dict:
    rnd = means["random"]
    rnd_mean, rnd_sd = float(np.mean(rnd)), float(np.std(rnd, ddof=1))
    rows = {k: {"keeps": float(np.mean(v)) >= rnd_mean - rnd_sd, "speed_median": speeds.get(k, 1.0)}
            for k, v in means.items()}
    return {"rows": rows, "random_mean": rnd_mean, "random_sd": rnd_sd}


def test_parity_rule_picks_the_fastest_candidate_within_one_sd_on_every_workload():
    from benchmarks.bench_parity import RANDOM, Candidate, choose

    cands = [RANDOM, Candidate("length_grouped", 50), Candidate("length_grouped", 2)]
    speeds = {"length_grouped_50": 1.9, "length_grouped_2": 1.3}
    # random order 0.70 ± 0.02: the bar is 0.68; factor 50 fails on A, factor 2 passes both.
    a = _parity_result({"random": [0.68, 0.70, 0.72], "length_grouped_50": [0.60, 0.61, 0.62],
                        "length_grouped_2": [0.68, 0.69, 0.70]}, speeds)
    b = _parity_result({"random": [0.68, 0.70, 0.72], "length_grouped_50": [0.70, 0.71, 0.72],
                        "length_grouped_2": [0.69, 0.70, 0.71]}, speeds)
    pick, keep = choose({"A": a, "B": b}, cands)
    assert pick.key == "length_grouped_2" and [c.key for c in keep] == ["random", "length_grouped_2"]
    # Both groupings below the bar somewhere: only random order is left.
    a["rows"]["length_grouped_2"]["keeps"] = False
    pick, keep = choose({"A": a, "B": b}, cands)
    assert pick == RANDOM and keep == [RANDOM]


def test_parity_helpers_cover_every_example_and_measure_length_against_label():
    from benchmarks.bench_parity import bucketed_batches, mix_stats, noisy_sort_batches

    rng = np.random.default_rng(0)
    lengths = rng.lognormal(3.3, 0.8, size=1000).astype(int) + 3
    labels = (lengths > np.median(lengths)).astype(int)   # length decides the label
    for batches in (bucketed_batches(lengths, 32, 2.0), noisy_sort_batches(lengths, 32, 0.3, 32 * 8)):
        assert sorted(int(i) for b in batches for i in b) == list(range(1000))
        assert max(len(b) for b in batches) <= 32
    eff_bucket, lpb_bucket = mix_stats(lengths, labels, bucketed_batches(lengths, 32, 2.0))
    perm = rng.permutation(1000)
    eff_rand, lpb_rand = mix_stats(lengths, labels, [perm[i:i + 32] for i in range(0, 1000, 32)])
    assert eff_bucket > eff_rand and lpb_bucket < lpb_rand


def test_update_places_a_new_section_by_number_and_refreshes_its_limits_bullet():
    from benchmarks.common import Section
    from benchmarks.run import update_report

    text = "\n".join(["# Benchmarks", "", "## Goals", "", "| item | goal |", "|---|---|", "| 3 | x |", "",
                      "## 3. Batching", "", "old", "", "## 4. Preprocessing", "", "kept", "",
                      "## What limits the rest", "", "- Batching (item 3): old bullet", "  its continuation",
                      "- Timings on a shared machine: last"]) + "\n"
    sec = Section("parity", "3b. Batching that keeps accuracy", "python -m benchmarks.run --only parity")
    sec.add("new section text", "")
    sec.data.update(pick="random", results={"A": {"random_mean": 0.7, "random_sd": 0.02, "rows": {
        "length_grouped_50": {"label": "length_grouped, mega-batch factor 50", "keeps": False, "diff": -0.1}}}})
    out = update_report(text, [sec], {"date_utc": "now", "git": "abc"})
    heads = [line for line in out.splitlines() if line.startswith("## ")]
    assert heads == ["## Goals", "## 3. Batching", "## 3b. Batching that keeps accuracy", "## 4. Preprocessing",
                     "## What limits the rest"]
    limits = out.split("## What limits the rest")[1]
    assert "- Batching (item 3): old bullet\n  its continuation" in limits   # not this run's: kept
    assert "- Accuracy (item 3, section 3b)" in limits and "default is random order" in limits
    assert limits.rstrip().endswith("- Timings on a shared machine: last")
