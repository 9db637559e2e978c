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
