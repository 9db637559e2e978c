"""The card checker (itt.data.check) and the split protocol (itt.data.splits).

Hub-shaped repositories are built locally in the layouts the hub serves: parquet under
per-config folders with a README ``configs:`` block (a dataset repository's main branch),
a ``refs/convert/parquet``-style tree without a README (``default/<split>/0000.parquet``),
and a repository holding only a loading script. A hub card whose ``source.path`` names such
a folder goes through the same loader as a hub id (``datasets.load_dataset``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from itt.data import check, splits
from itt.data import xtreme_convert as xc
from itt.data.cards import card_from_config
from itt.errors import ConfigError, DataError


def _per_config_repo(root: Path) -> Path:
    for lang, rows in {"en": [("good", 1), ("bad", 0), ("fine", 1)], "de": [("gut", 1), ("schlecht", 0)]}.items():
        for split in ("train", "test"):
            (root / lang).mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"sentence": [t for t, _ in rows], "label": [y for _, y in rows]}).to_parquet(
                root / lang / f"{split}-00000-of-00001.parquet")
    blocks = "".join(f"- config_name: {lang}\n  data_files:\n  - split: train\n    path: {lang}/train-*\n"
                     f"  - split: test\n    path: {lang}/test-*\n" for lang in ("en", "de"))
    (root / "README.md").write_text(f"---\nconfigs:\n{blocks}---\n", encoding="utf-8")
    return root


def _converted_parquet_repo(root: Path) -> Path:
    """HellaSwag's refs/convert/parquet layout: one 'default' config, no README."""
    for split, labels in (("train", ["0", "3", "1", "2"] * 5), ("validation", ["2", "1"])):
        (root / "default" / split).mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"ctx": [f"ctx {i}" for i in range(len(labels))],
                      "endings": [["a", "b", "c", "d"]] * len(labels),
                      "label": labels}).to_parquet(root / "default" / split / "0000.parquet")
    return root


def _script_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "hellaswag.py").write_text("import datasets\n", encoding="utf-8")
    return root


def _pair_card(path: Path, config: str | None = "{lang}", **over) -> dict:
    card = {"name": "hubby", "type": "single_text_classification",
            "source": {"kind": "hub", "path": str(path), "config": config, "revision": None},
            "columns": {"text": "sentence", "label": "label"}, "labels": ["neg", "pos"],
            "languages": ["en", "de"], "train_language": "en", "eval_languages": ["en", "de"],
            "split": {"protocol": "given", "validation_fraction": 0.34, "splits": {"train": "train", "test": "test"}},
            "metrics": ["accuracy"], "main_metric": "accuracy"}
    card.update(over)
    return card


def test_per_config_repo_with_readme_loads_every_language(tmp_path):
    result = check.check_card(_pair_card(_per_config_repo(tmp_path / "repo")))
    assert result.status == "ok", result.line()
    # en train: 3 rows, 1 carved out for validation (0.34 * 3 rounds to 1); tests: 3 en + 2 de.
    assert result.detail.startswith("train 2, validation 1, test 5 in 2 language(s)")


def test_missing_config_names_the_fix(tmp_path):
    card = _pair_card(_per_config_repo(tmp_path / "repo"), languages=["en", "fr"], eval_languages=["en", "fr"])
    result = check.check_card(card)
    assert result.status == "FAIL"
    assert "has no config 'fr'; it has ['en', 'de']" in result.detail
    assert "set source.config" in result.detail and "xtreme_convert" in result.detail


def test_wrong_column_and_label_value_fail(tmp_path):
    repo = _per_config_repo(tmp_path / "repo")
    result = check.check_card(_pair_card(repo, columns={"text": "text", "label": "label"}))
    assert result.status == "FAIL" and "text" in result.detail
    result = check.check_card(_pair_card(repo, labels=["only"]))
    assert result.status == "FAIL" and "label" in result.detail.lower()


def test_refs_convert_parquet_layout_has_only_the_default_config(tmp_path):
    repo = _converted_parquet_repo(tmp_path / "parquet")
    card = {"name": "hellaswag", "type": "multiple_choice",
            "source": {"kind": "hub", "path": str(repo), "config": None, "revision": "refs/convert/parquet"},
            "columns": {"premise": "ctx", "choices": "endings", "label": "label"},
            "split": {"protocol": "given", "validation_fraction": 0.25,
                      "splits": {"train": "train", "test": "validation", "validation": "none"}},
            "metrics": ["accuracy"], "main_metric": "accuracy"}
    result = check.check_card(card)
    assert result.status == "ok", result.line()
    assert result.detail.startswith("train 15, validation 5, test 2 in 1 language(s)")
    # A per-language config on that branch (what tydiqa.yaml used to ask for) fails with the fix.
    card["source"]["config"] = "en"
    result = check.check_card(card)
    assert result.status == "FAIL"
    assert "has no config 'en'; it has ['default']" in result.detail
    assert "refs/convert/parquet branch without a README" in result.detail


def test_script_only_repo_names_revision_or_converter(tmp_path):
    repo = _script_repo(tmp_path / "hellaswag")  # as Rowan/hellaswag: hellaswag.py at the top
    card = {"name": "hellaswag", "type": "multiple_choice",
            "source": {"kind": "hub", "path": str(repo), "config": None, "revision": None},
            "columns": {"premise": "ctx", "choices": "endings", "label": "label"},
            "split": {"protocol": "given", "splits": {"train": "train", "test": "validation"}},
            "metrics": ["accuracy"], "main_metric": "accuracy"}
    result = check.check_card(card)
    assert result.status == "FAIL"
    assert "holds only a loading script (hellaswag.py)" in result.detail
    assert "source.revision: refs/convert/parquet" in result.detail and "xtreme_convert" in result.detail


def test_hellaswag_card_reads_the_parquet_branch_through_the_checker(tmp_path):
    """The real conf/task/hellaswag.yaml, its hub id replaced by a local copy of the branch."""
    from itt.config import compose

    repo = _converted_parquet_repo(tmp_path / "parquet")
    cfg = compose(["intermediate=none", "target=hellaswag", f"target.source.path={repo}"])
    assert cfg.target.source.revision == "refs/convert/parquet"
    result = check.check_card(cfg.target)
    assert result.status == "ok", result.line()
    # validation_fraction 0.05 of the 20 training rows: 1 row.
    assert result.detail.startswith("train 19, validation 1, test 2 in 1 language(s)")


def test_hub_cards_are_skipped_when_the_hub_is_unreachable(capsys):
    # conftest sets HF_HUB_OFFLINE=1, so the hub is unreachable by definition here.
    assert check.main(["xnli", "smoke_movies"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "xnli: skipped: hub unreachable (facebook/xnli)"
    assert out[1].startswith("smoke_movies: ok (train 1260, validation 140, test 600 in 1 language(s)")
    assert out[-1] == "1 ok, 0 failed, 1 skipped"
    assert check.main(["no_such_card"]) == 2


def _tydiqa_source(root: Path) -> Path:
    def squad(qas):
        return {"version": "TyDiQA-GoldP-1.1", "data": [{"title": "t", "paragraphs": [
            {"context": ctx, "qas": [{"id": qid, "question": q, "answers": [{"text": a, "answer_start": ctx.index(a)}]}]}
            for qid, ctx, q, a in qas]}]}
    train = root / "tydiqa-goldp-v1.1-train" / "tydiqa.en.train.json"
    train.parent.mkdir(parents=True)
    train.write_text(json.dumps(squad([(f"q{i}", f"The river is {i} km long.", "How long?", f"{i} km")
                                       for i in range(1, 11)])), encoding="utf-8")
    dev = root / "tydiqa-goldp-v1.1-dev"
    dev.mkdir()
    (dev / "tydiqa.goldp.en.dev.json").write_text(json.dumps(squad([("e1", "Paris is in France.", "Where?", "France")])),
                                                  encoding="utf-8")
    (dev / "tydiqa.sw.dev.json").write_text(json.dumps(squad([("s1", "Nairobi iko Kenya.", "Wapi?", "Kenya")])),
                                            encoding="utf-8")
    return root


def test_tydiqa_card_trains_on_tydiqa_english_from_converted_files(tmp_path):
    from itt.config import compose

    data_dir = tmp_path / "data"
    summary = xc.convert_tydiqa(_tydiqa_source(tmp_path / "download" / "tydiqa"), data_dir / "xtreme" / "tydiqa",
                                ["en", "sw"], quiet=True)
    assert summary.files == {"train-en.jsonl": (10, "written"), "test-en.jsonl": (1, "written"),
                             "test-sw.jsonl": (1, "written")}
    row = json.loads((data_dir / "xtreme" / "tydiqa" / "test-sw.jsonl").read_text().splitlines()[0])
    assert row["answers"] == {"text": ["Kenya"], "answer_start": [12]}  # "Nairobi iko " is 12 chars
    cfg = compose(["intermediate=none", "target=tydiqa", f"paths.data_dir={data_dir}",
                   "target.eval_languages=[en,sw]"])
    result = check.check_card(cfg.target)
    assert result.status == "ok", result.line()
    # 10 English TyDiQA training questions, 1 (10%) carved out for validation; no SQuAD.
    assert result.detail.startswith("train 9, validation 1, test 2 in 2 language(s)")
    # Without the converted files the checker says which command makes them.
    cfg = compose(["intermediate=none", "target=tydiqa", f"paths.data_dir={tmp_path / 'empty'}"])
    result = check.check_card(cfg.target)
    assert result.status == "skipped"
    assert "run python -m itt.data.xtreme_convert tydiqa --source download/tydiqa" in result.detail


def test_udpos_converter_and_card(tmp_path):
    from itt.config import compose

    src = tmp_path / "download" / "udpos"
    src.mkdir(parents=True)
    (src / "train-en.tsv").write_text("The\tDET\ndog\tNOUN\n\nIt\tPRON\nruns\tVERB\n", encoding="utf-8")
    (src / "dev-en.tsv").write_text("A\tDET\ncat\tNOUN\n", encoding="utf-8")
    for lang in ("en", "de"):
        (src / f"test-{lang}.tsv").write_text("Der\tDET\nHund\tNOUN\n\nbellt\tVERB\n", encoding="utf-8")
    data_dir = tmp_path / "data"
    summary = xc.convert_udpos(src, data_dir / "xtreme" / "udpos", ["en", "de"], quiet=True)
    assert summary.files == {"train-en.jsonl": (2, "written"), "validation-en.jsonl": (1, "written"),
                             "test-en.jsonl": (2, "written"), "test-de.jsonl": (2, "written")}
    first = json.loads((data_dir / "xtreme" / "udpos" / "train-en.jsonl").read_text().splitlines()[0])
    assert first == {"tokens": ["The", "dog"], "pos_tags": ["DET", "NOUN"]}
    cfg = compose(["intermediate=none", "target=udpos", f"paths.data_dir={data_dir}",
                   "target.eval_languages=[en,de]"])
    result = check.check_card(cfg.target)
    assert result.status == "ok", result.line()
    assert result.detail.startswith("train 2, validation 1, test 4 in 2 language(s)")
    (src / "test-de.tsv").write_text("Der\tDETERMINER\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test-de\.tsv:1: 'DETERMINER' is not one of the 17 UPOS tags"):
        xc.convert_udpos(src, data_dir / "xtreme" / "udpos", ["en", "de"], quiet=True)


# --------------------------------------------------------------------------------------
# Split protocol
# --------------------------------------------------------------------------------------

def test_default_split_is_63_7_30_and_says_so():
    s = splits.summary("c", {"protocol": "ratio", "train_fraction": 0.7, "validation_fraction": 0.1})
    assert s["shares"] == {"train": 0.63, "validation": 0.07, "test": 0.3}
    assert s["validation_from"] == "train" and s["test_fraction"] == pytest.approx(0.3)
    assert s["text"] == ("seeded re-split of the pooled data: 63% train, 7% validation, 30% test "
                         "(validation = 10% of the 70% training part)")
    tr, va, te = splits.ratio_indices(1000, "c", {"train_fraction": 0.7, "validation_fraction": 0.1}, 1)
    assert (len(tr), len(va), len(te)) == (630, 70, 300)
    assert len(set(tr) | set(va) | set(te)) == 1000


def test_validation_from_pool_gives_exactly_70_percent_training():
    spec = {"train_fraction": 0.7, "validation_fraction": 0.1, "test_fraction": 0.2, "validation_from": "pool"}
    assert splits.summary("c", spec)["shares"] == {"train": 0.7, "validation": 0.1, "test": 0.2}
    tr, va, te = splits.ratio_indices(1000, "c", spec, 1)
    assert (len(tr), len(va), len(te)) == (700, 100, 200)
    assert not (set(tr) & set(va)) and not (set(tr) & set(te)) and not (set(va) & set(te))


@pytest.mark.parametrize("spec, message", [
    ({"train_fraction": 0.7, "test_fraction": 0.2}, r"train_fraction \+ test_fraction must be 1"),
    ({"validation_from": "pool", "train_fraction": 0.7, "validation_fraction": 0.2, "test_fraction": 0.2},
     r"train_fraction \+ validation_fraction \+ test_fraction must be 1"),
    ({"validation_from": "test"}, r"validation_from must be one of train, pool"),
    ({"protocol": "given", "validation_from": "pool"}, r"validation_from must be one of split, train"),
    ({"train_fraction": 1.2}, r"train_fraction must be in \(0, 1\)"),
])
def test_bad_split_settings_name_the_key(spec, message):
    card = {"name": "c", "type": "single_text_classification", "source": {"kind": "local", "data_files": "x.csv"},
            "labels": ["a", "b"], "split": spec}
    with pytest.raises(ConfigError, match=message):
        card_from_config(card, "target")


def test_paper_cards_state_their_split():
    from itt.config import compose

    for name in ("imdb", "rotten_tomatoes", "allocine", "yelp_polarity", "amazon_polarity",
                 "amazon_reviews_de", "paws", "stsb", "stsb_de"):
        card = card_from_config(compose(["intermediate=none", f"target={name}"]).target, "target")
        text = Path(f"conf/task/{name}.yaml").read_text(encoding="utf-8")
        summary = card.split_summary()
        assert summary["protocol"] == "ratio" and summary["validation_from"] in ("train", "pool"), name
        assert "validation_from:" in text and "test_fraction:" in text, name
