"""The sweep's progress line, failed cells seen by the local launcher, data left out of the
plan, the exit status of a sweep with a failed cell, and the start-up warning filters."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hydra_plugins.itt_launcher.itt_local import SweepProgress, _cell_error  # noqa: E402


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_progress_line_counts_running_and_eta() -> None:
    clock, out = _Clock(), io.StringIO()
    p = SweepProgress(total=6, workers=2, stream=out, live=False, clock=clock)
    p.start(0, "model=a seed=0")
    p.start(1, "model=b seed=0")
    clock.t += 30
    assert p.line() == "0/6 cells | running: model=a seed=0 (30s); model=b seed=0 (30s) | 30s"
    p.finish(0, True, 30.0, "#0 done   (30s) model=a seed=0")
    p.start(2, "model=a seed=1")
    clock.t += 10
    p.finish(1, False, 40.0, "#1 FAILED (40s) model=b seed=0: DataError: x")
    # mean cell 35 s; running: cell 2 for 10 s (25 s left); queued: 3 cells; 2 workers
    assert p.line() == ("2/6 cells, 1 failed | running: model=a seed=1 (10s) | 40s, "
                        "ETA ~1m05s")
    text = out.getvalue().splitlines()
    assert text[0] == "#0 done   (30s) model=a seed=0"
    assert text[1].startswith("1/6 cells | running: model=b seed=0")
    assert text[2] == "#1 FAILED (40s) model=b seed=0: DataError: x"
    assert "1 failed" in text[3]
    for i in (2, 3, 4, 5):
        p.finish(i, True, 5.0, "")
    assert p.line().endswith(", all done") and p.line().startswith("6/6 cells, 1 failed")


def test_live_progress_redraws_one_line() -> None:
    clock, out = _Clock(), io.StringIO()
    p = SweepProgress(total=2, workers=1, stream=out, live=True, clock=clock)
    p.start(0, "seed=0")
    clock.t += 2
    p.finish(0, True, 2.0, "#0 done (2s) seed=0")
    p.close()
    text = out.getvalue()
    assert text.count("\n") == 2             # the cell's end line and the final newline
    assert "\r0/2 cells | running: seed=0 (0s) | 0s" in text
    assert text.rstrip().endswith("1/2 cells | 2s, ETA ~2s")


def test_cell_error_reads_this_launchs_error_json(tmp_path: Path) -> None:
    assert _cell_error(str(tmp_path), 0.0) is None
    (tmp_path / "error.json").write_text(json.dumps({"exception": "DataError: no file\nmore"}))
    assert _cell_error(str(tmp_path), 0.0) == "DataError: no file"
    assert _cell_error(str(tmp_path), os.path.getmtime(tmp_path / "error.json") + 10) is None
    assert _cell_error(None, 0.0) is None


def _manifest(root: Path, names: list[str]) -> None:
    assets = {}
    for name in names:
        rel = f"data/{name}.jsonl"
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}\n")
        assets[name] = {"kind": "dataset", "files": {rel: {"rows": 1}}}
    (root / "manifest.json").write_text(json.dumps({"schema": "x", "assets": assets}))


def test_missing_sts_data_leaves_its_cells_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from itt.assets import store
    from itt.data.availability import leave_out_missing, missing_offline_data

    if store.MANIFEST != "manifest.json":
        pytest.skip(f"asset manifest is {store.MANIFEST}")
    _manifest(tmp_path, ["vader_movie", "vader_amazon"])
    monkeypatch.setenv("ITT_STSB_DIR", str(tmp_path / "no-such-folder"))
    jobs = [["model=minilm", f"intermediate={i}", f"target={t}", "seed=0"]
            for i, t in (("none", "vader_amazon"), ("vader_movie", "vader_amazon"),
                         ("none", "stsb_xling"), ("stsb_en", "stsb_xling"), ("none", "smoke_products"))]
    missing = missing_offline_data(["stsb_en", "stsb_xling", "vader_movie", "smoke_products"], tmp_path)
    assert set(missing) == {"stsb_en", "stsb_xling"}
    assert "ITT_STSB_DIR" in missing["stsb_en"] and "../shared/data/stsb-multi-mt" in missing["stsb_en"]
    with caplog.at_level(logging.WARNING):
        kept, dropped = leave_out_missing(jobs, tmp_path)
    assert dropped == 2 and [j[2] for j in kept] == ["target=vader_amazon"] * 2 + ["target=smoke_products"]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "stsb_en / stsb_xling" in warned[0].getMessage()
    assert "2 cells" in warned[0].getMessage()
    # a dataset that the manifest lists but whose file is gone: the fix is fetch
    (tmp_path / "data" / "vader_movie.jsonl").unlink()
    assert "python -m itt.assets fetch" in missing_offline_data(["vader_movie"], tmp_path)["vader_movie"]


def test_warning_filters_drop_only_what_they_name(caplog: pytest.LogCaptureFixture) -> None:
    from itt import warnings_filter

    warnings_filter.install()
    with warnings.catch_warnings(record=True) as seen:
        # catch_warnings copies the filters installed above
        warnings.warn("The `srun` command is available on your system but is not used. HINT: ...")
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", DeprecationWarning)
        warnings.warn("something else")
    assert [str(w.message) for w in seen] == ["something else"]
    pl = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    tf = logging.getLogger("transformers.modeling_utils")
    tok = logging.getLogger("itt.data.encoding")
    with caplog.at_level(logging.INFO):
        pl.info("💡 Tip: For seamless cloud logging ...")
        pl.info("`Trainer.fit` stopped: `max_epochs=2` reached.")
        tf.warning("BertModel LOAD REPORT from: x\nKey | Status | \n--- | --- | \n"
                   "pooler.dense.weight | MISSING | \npooler.dense.bias | MISSING | \n")
        tf.warning("BertModel LOAD REPORT from: x\nKey | Status | \nencoder.layer.0.w | MISSING | \n")
        tok.warning("t/train: 5 of 9 sequences truncated to max_length=32 (filter test)")
        tok.warning("t/train: 5 of 9 sequences truncated to max_length=32 (filter test)")
    messages = [r.getMessage() for r in caplog.records]
    assert "💡 Tip: For seamless cloud logging ..." not in messages
    assert "`Trainer.fit` stopped: `max_epochs=2` reached." in messages
    assert sum("LOAD REPORT" in m for m in messages) == 1 and any("encoder.layer.0.w" in m for m in messages)
    assert sum("(filter test)" in m for m in messages) == 1


def test_sweep_with_a_failed_cell_exits_1_and_shows_progress(tmp_path: Path) -> None:
    """Two tiny cells on the local launcher; the second target's data file does not exist."""
    conf = tmp_path / "conf" / "target"
    conf.mkdir(parents=True)
    card = (ROOT / "conf" / "task" / "smoke_products.yaml").read_text(encoding="utf-8")
    gone = tmp_path / "gone.jsonl"
    card = (card.replace("name: smoke_products", "name: smoke_gone")
            .replace("  generator: smoke               # the files are generated on first use\n", "")
            .replace("${paths.data_dir}/smoke/smoke_products.jsonl", str(gone)))
    assert "smoke_gone" in card and str(gone) in card and "generator" not in card
    (conf / "smoke_gone.yaml").write_text(card, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "ITT_OUTPUT_DIR": str(tmp_path / "out"), "ITT_ASSETS_DIR": str(ROOT / "outputs" / "assets")}
    cmd = [sys.executable, "-m", "itt.train", "-m", "experiment=smoke", "model=tiny_bert",
           "intermediate=none", "target=smoke_products,smoke_gone", "seed=0", "logger=none",
           "trainer.enable_progress_bar=false", "stage2.epochs=1", "hydra/launcher=itt_local",
           "hydra.launcher.workers=1", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
           f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    err = proc.stderr
    assert "2/2 cells, 1 failed" in err and "all done" in err
    assert "FAILED" in err and "target=smoke_gone" in err
    assert "1 planned cell(s) failed" in err
    assert (tmp_path / "sweep").is_dir()


def test_missing_sts_file_names_the_real_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from omegaconf import OmegaConf

    from itt.data.cards import card_from_config
    from itt.data.loading import _resolve_files
    from itt.errors import DataError

    monkeypatch.setenv("ITT_STSB_DIR", str(tmp_path / "no-such-folder"))
    raw = OmegaConf.load(ROOT / "conf" / "task" / "stsb_xling.yaml")
    raw.source.data_files = {"all": str(tmp_path / "assets" / "data" / "stsb_xling-{lang}.jsonl")}
    card = card_from_config(OmegaConf.to_container(raw), "target")
    (tmp_path / "assets").mkdir()
    with pytest.raises(DataError) as err:
        _resolve_files(card, "de", str(tmp_path / "assets"))
    message = str(err.value)
    assert "data file not found" in message and "ITT_STSB_DIR" in message
    assert "../shared/data/stsb-multi-mt" in message
