"""The stage-1 cache and the finished-cell check key on data *content*: an edited file
retrains exactly what used it, the same file at another path is a hit, and a corrupt entry
is moved aside and rebuilt."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from itt import stage1_cache
from itt.cell import run_cell
from itt.data.fingerprint import card_fingerprint
from itt.records import config_hash

# A learning rate no other test uses: this file's stage-1 keys are its own.
OWN = ["stage1.lr=3.1e-4", "stage1.epochs=1", "stage2.epochs=1", "stage1.max_train_examples=128",
       "stage2.max_train_examples=64", "stage2.max_eval_examples=32"]


@pytest.fixture
def movies(make_cfg, tmp_path) -> Path:
    """A private copy of the smoke intermediate task's data file."""
    cfg = make_cfg(*OWN, "intermediate=smoke_movies")
    src = Path(cfg["intermediate"]["source"]["data_files"]["all"])
    if not src.exists():  # generated on first use
        card_fingerprint(cfg["intermediate"])
    dst = tmp_path / "data" / "movies.jsonl"
    dst.parent.mkdir()
    shutil.copy(src, dst)
    return dst


def _cfg(make_cfg, data: Path) -> dict:
    cfg = make_cfg(*OWN, "intermediate=smoke_movies")
    cfg["intermediate"]["source"]["data_files"] = {"all": str(data)}
    cfg["intermediate"]["source"].pop("generator", None)
    return cfg


def _flip_labels(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        row["label"] = {"positive": "negative", "negative": "positive"}.get(row["label"], row["label"])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_same_data_at_another_path_reuses_and_edited_data_retrains(make_cfg, movies, tmp_path):
    first = run_cell(_cfg(make_cfg, movies), tmp_path / "a")
    assert first["stage1"]["reused"] is False

    moved = tmp_path / "elsewhere" / "copy.jsonl"
    moved.parent.mkdir()
    shutil.copy(movies, moved)
    cfg_moved = _cfg(make_cfg, moved)
    assert config_hash(cfg_moved) == first["config_hash"], "the path is not part of what a cell computes"
    again = run_cell(cfg_moved, tmp_path / "b")
    assert again["stage1"]["key"] == first["stage1"]["key"] and again["stage1"]["reused"] is True

    os.utime(movies, None)  # a touch alone changes nothing
    assert run_cell(_cfg(make_cfg, movies), tmp_path / "a")["finished_at"] == first["finished_at"]

    _flip_labels(movies)
    edited = run_cell(_cfg(make_cfg, movies), tmp_path / "a")
    assert edited["config_hash"] != first["config_hash"]
    assert edited["finished_at"] != first["finished_at"], "the finished cell reran on the edited data"
    assert edited["stage1"]["key"] != first["stage1"]["key"] and edited["stage1"]["reused"] is False
    kept = tmp_path / "a" / f"result.{first['config_hash']}.json"
    assert kept.exists(), "the result of the old data is kept beside the new one"


@pytest.mark.parametrize("damage", ["truncate", "meta"])
def test_corrupt_entry_is_moved_aside_and_rebuilt(make_cfg, movies, tmp_path, damage, caplog):
    cfg = _cfg(make_cfg, movies)
    cfg["stage1"]["lr"] = 3.2e-4 if damage == "truncate" else 3.3e-4
    first = run_cell(cfg, tmp_path / "first")
    entry = stage1_cache.stage1_dir(cfg["paths"]["cache_dir"], first["stage1"]["key"])
    stage1_cache._verified.clear()  # a new process would not have checked it yet
    if damage == "truncate":
        weights = entry / stage1_cache.ENCODER_FILE
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        (entry / stage1_cache.META_FILE).write_text("{not json")
    again = run_cell(dict(cfg, seed=cfg["seed"]), tmp_path / "second")
    assert again["stage1"]["key"] == first["stage1"]["key"]
    assert again["stage1"]["reused"] is False, "the broken entry was trained again"
    aside = list(entry.parent.glob(entry.name + ".corrupt-*"))
    assert len(aside) == 1 and str(entry) in caplog.text
    stage1_cache.validate(entry, full=True)  # the rebuilt entry is whole


def test_validate_checks_sizes_and_hashes(make_cfg, movies, tmp_path):
    cfg = _cfg(make_cfg, movies)
    cfg["stage1"]["lr"] = 3.4e-4
    result = run_cell(cfg, tmp_path / "run")
    entry = stage1_cache.stage1_dir(cfg["paths"]["cache_dir"], result["stage1"]["key"])
    meta = stage1_cache.validate(entry, full=True)
    assert set(meta["files"]) == {stage1_cache.ENCODER_FILE, stage1_cache.HEAD_FILE}
    head = entry / stage1_cache.HEAD_FILE
    data = bytearray(head.read_bytes())
    data[-1] ^= 0xFF  # same size, one flipped bit in the weights
    head.write_bytes(bytes(data))
    with pytest.raises(stage1_cache.CorruptEntry, match="SHA-256"):
        stage1_cache.validate(entry, full=True)


def test_truncated_tokenization_entry_is_moved_aside_and_rebuilt(tmp_path, caplog):
    import numpy as np

    from itt.data.encoding import cached_arrays

    built = []

    def build():
        built.append(1)
        return {"input_ids": np.arange(10, dtype=np.int32)}

    first = cached_arrays(tmp_path, ["k"], "demo", build)
    entry = next((tmp_path / "tokenized").glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:20])
    again = cached_arrays(tmp_path, ["k"], "demo", build)
    assert len(built) == 2 and np.array_equal(first["input_ids"], again["input_ids"])
    assert len(list((tmp_path / "tokenized").glob("*.corrupt-*"))) == 1 and str(entry) in caplog.text
    cached_arrays(tmp_path, ["k"], "demo", build)
    assert len(built) == 2, "the rebuilt entry is read from the cache"
