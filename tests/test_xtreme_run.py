"""Zero-shot XTREME-R runs, one per task type, on tiny offline fixtures.

Each run trains a tiny model on English (or nothing, for retrieval), evaluates two
languages, exports predictions and labels in the official layout, and the official-style
scorer (``python -m itt.metrics.xtreme_r``, in a subprocess) must report the same
per-language numbers as result.json. Fixture files are written to a temporary directory;
task cards are dicts put into a composed config.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from itt.cell import run_cell
from itt.config import apply_card_settings
from itt.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

def _jsonl(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _card(name: str, type_: str, task: str, *, data_files: dict, eval_languages: list[str],
          metrics: list[str], main_metric: str, **extra) -> dict:
    card = {
        "name": name, "description": "offline fixture", "field": "test", "domain": "test",
        "setting": "xtreme", "benchmark": "xtreme-r", "type": type_, "xtreme_task": task,
        "source": {"kind": "local", "data_files": data_files, "format": "json", "read_options": {}},
        "columns": {}, "labels": None, "languages": ["en"] + eval_languages, "train_language": "en",
        "eval_languages": eval_languages, "split": {"protocol": "given", "validation_fraction": 0.25},
        "metrics": metrics, "main_metric": main_metric,
    }
    card.update(extra)
    return card


def _run(make_cfg, tmp_path: Path, card: dict, *overrides: str, model: str = "tiny_bert") -> tuple[dict, Path]:
    cfg = make_cfg("intermediate=none", f"model={model}", "stage2.epochs=1", "stage2.batch_size=16",
                   "eval.export_predictions=true", *overrides)
    cfg["target"] = card
    run_dir = tmp_path / "run"
    return run_cell(cfg, run_dir), run_dir


def _score(run_dir: Path, task: str, langs: list[str], version: str = "xtreme-r") -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "itt.metrics.xtreme_r", "--predictions", str(run_dir / "predictions" / "target"),
         "--labels", str(run_dir / "predictions" / "labels"), "--version", version, "--tasks", task,
         "--languages", ",".join(langs)],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["tasks"][task]


def _assert_same(result: dict, report: dict, metrics: list[str]) -> None:
    per_language = result["metrics"]["per_language"]
    assert set(report["languages"]) == set(per_language)
    for lang, values in per_language.items():
        for metric in metrics:
            assert report[metric][lang] == pytest.approx(values[metric], abs=1e-6), (lang, metric)
        assert report["n"][lang] == values["n"]


# --------------------------------------------------------------------------------------
# Fixtures in each format
# --------------------------------------------------------------------------------------

_PER = ["Anna", "Peter", "Maria", "Jonas"]
_LOC = ["Berlin", "Paris", "Rome", "Oslo"]
_ORG = ["Siemens", "Google", "Nokia"]


def _ner_rows(lang: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(f"{lang}{seed}")
    verb = {"en": ["visited", "left"], "de": ["besuchte", "verließ"]}[lang]
    rows = []
    for i in range(n):
        tokens = [rng.choice(_PER), rng.choice(verb), rng.choice(_LOC), "with", rng.choice(_ORG), "staff"]
        tags = ["B-PER", "O", "B-LOC", "O", "B-ORG", "O"]
        if i % 5 == 0:  # longer sentences, truncated at max_length
            tokens += ["and", "Maria", "Schmidt", "in", "New", "York"] * 3
            tags += ["O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC"] * 3
        rows.append({"tokens": tokens, "tags": tags})
    return rows


def _squad_json(path: Path, n: int) -> str:
    paragraphs = []
    for i in range(n):
        who, where = _PER[i % 4], _LOC[i % 4]
        context = (f"The film was good and the story was long . {who} lives in {where} and works "
                   f"for {_ORG[i % 3]} . The rest was boring but the ending was great .")
        paragraphs.append({"context": context, "qas": [
            {"id": f"sq{i}a", "question": f"Where does {who} live ?",
             "answers": [{"text": where, "answer_start": context.index(where)}]},
            {"id": f"sq{i}b", "question": f"Who lives in {where} ?",
             "answers": [{"text": who, "answer_start": context.index(who)}]}]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}),
                    encoding="utf-8")
    return str(path)


def _xquad_rows(lang: str, n: int) -> list[dict]:
    verb = {"en": "lives in", "de": "wohnt in"}[lang]
    rows = []
    for i in range(n):
        who, where = _PER[(i + 1) % 4], _LOC[(i + 2) % 4]
        context = f"Der Film war gut . {who} {verb} {where} . Das Ende war toll und lang ."
        answers = {"text": [where], "answer_start": [context.index(where)]} if i != 1 else \
            {"text": [], "answer_start": []}   # one unanswerable question
        rows.append({"id": f"{lang}{i}", "question": f"{who} {verb} ?", "context": context, "answers": answers})
    return rows


def _copa_rows(lang: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(f"copa{lang}{seed}")
    rows = []
    for i in range(n):
        good, bad = rng.choice(["the film was great", "the story was good"]), \
            rng.choice(["the film was boring", "the plot was awful"])
        label = i % 2
        choices = [good, bad] if label == 0 else [bad, good]
        rows.append({"premise": f"I liked it {i}", "choice1": choices[0], "choice2": choices[1],
                     "question": "cause" if i % 3 else "effect", "label": label})
    return rows


# --------------------------------------------------------------------------------------
# One zero-shot run per task type
# --------------------------------------------------------------------------------------

def test_token_tagging_panx_zero_shot_matches_scorer(make_cfg, tmp_path):
    d = tmp_path / "data"
    for lang in ("en", "de"):
        _jsonl(d / f"panx-{lang}-test.jsonl", _ner_rows(lang, 10, 1))
    card = _card("panx_fixture", "token_tagging", "panx",
                 data_files={"test": str(d / "panx-{lang}-test.jsonl")}, eval_languages=["en", "de"],
                 metrics=["f1", "precision", "recall"], main_metric="f1",
                 labels=["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"],
                 columns={"tokens": "tokens", "tags": "tags"},
                 train_source={"kind": "local", "format": "json",
                               "data_files": {"train": _jsonl(d / "panx-en-train.jsonl", _ner_rows("en", 32, 2))}})
    result, run_dir = _run(make_cfg, tmp_path, card, "stage2.max_length=32")
    trunc = result["stage2"]["data"]["truncated"]["test"]
    assert trunc["en"] == 2 and trunc["de"] == 2   # the long sentences lose words, predicted as O
    report = _score(run_dir, "panx", ["en", "de"])
    _assert_same(result, report, ["f1", "precision", "recall"])
    lines = (run_dir / "predictions" / "target" / "panx" / "test-de.tsv").read_text().split("\n\n")
    assert len([b for b in lines if b.strip()]) == 10   # one block per sentence, every word tagged
    assert result["baselines"]["majority"]["main"] == 0.0   # all "O": no entity found


def test_multiple_choice_xcopa_zero_shot_matches_scorer(make_cfg, tmp_path):
    d = tmp_path / "data"
    for lang in ("it", "tr"):
        _jsonl(d / f"xcopa-{lang}.jsonl", _copa_rows(lang, 8, 3))
    card = _card("xcopa_fixture", "multiple_choice", "xcopa",
                 data_files={"test": str(d / "xcopa-{lang}.jsonl")}, eval_languages=["it", "tr"],
                 languages=["en", "it", "tr"], metrics=["accuracy"], main_metric="accuracy",
                 columns={"premise": "premise", "question": "question", "choices": ["choice1", "choice2"],
                          "label": "label"},
                 question_map={"cause": "What was the cause?", "effect": "What happened as a result?"},
                 train_source={"kind": "local", "format": "json",
                               "data_files": {"train": _jsonl(d / "copa-en.jsonl", _copa_rows("en", 32, 4))}})
    result, run_dir = _run(make_cfg, tmp_path, card, model="tiny_xlnet")
    report = _score(run_dir, "xcopa", ["it", "tr"])
    _assert_same(result, report, ["accuracy"])
    first = json.loads((run_dir / "predictions" / "labels" / "xcopa" / "test-it.jsonl").read_text().split("\n")[0])
    assert first == {"label": 0}


def test_span_qa_xquad_zero_shot_matches_scorer(make_cfg, tmp_path):
    d = tmp_path / "data"
    for lang in ("en", "de"):
        _jsonl(d / f"xquad-{lang}.jsonl", _xquad_rows(lang, 6))
    card = _card("xquad_fixture", "span_qa", "xquad", data_files={"test": str(d / "xquad-{lang}.jsonl")},
                 eval_languages=["en", "de"], metrics=["f1", "exact_match"], main_metric="f1",
                 doc_stride=6, max_query_length=8, max_answer_length=5, n_best=5,
                 train_source={"kind": "local", "format": "json", "read_options": {"field": "data"},
                               "data_files": {"train": _squad_json(d / "squad-train.json", 12)}})
    result, run_dir = _run(make_cfg, tmp_path, card, "stage2.max_length=24")
    data = result["stage2"]["data"]
    assert data["sizes"]["train"] == 18 and data["sizes"]["test"] == {"en": 6, "de": 6}
    report = _score(run_dir, "xquad", ["en", "de"])
    _assert_same(result, report, ["f1", "exact_match"])
    preds = json.loads((run_dir / "predictions" / "target" / "xquad" / "test-de.json").read_text())
    assert sorted(preds) == [f"de{i}" for i in range(6)]   # one answer per question, not per window


def test_retrieval_tatoeba_lareqa_bucc_match_scorer(make_cfg, tmp_path):
    d = tmp_path / "data"
    pairs = {"de": [("der Film war gut", "the film was good"), ("das Ende war toll", "the ending was great"),
                    ("die Handlung war öde", "the plot was dull"), ("der Film war gut", "the film was good")],
             "fr": [("le film", "the film"), ("la fin", "the ending"), ("le film", "the film")]}
    for lang, rows in pairs.items():
        _jsonl(d / f"tatoeba-{lang}.jsonl", [{"src": a, "trg": b} for a, b in rows])
    card = _card("tatoeba_fixture", "retrieval", "tatoeba", data_files={"test": str(d / "tatoeba-{lang}.jsonl")},
                 eval_languages=["de", "fr"], metrics=["accuracy"], main_metric="accuracy",
                 columns={"query": "src", "candidate": "trg"}, retrieval_layer="middle")
    result, run_dir = _run(make_cfg, tmp_path / "tatoeba", card)
    assert result["stage2"]["epochs"] == 0 and result["stage2"]["data"]["sizes"]["train"] == 0
    _assert_same(result, _score(run_dir, "tatoeba", ["de", "fr"]), ["accuracy"])
    # Duplicate source sentences embed identically, so the tie goes to the earlier candidate.
    lines = (run_dir / "predictions" / "target" / "tatoeba" / "test-fr.tsv").read_text().split()
    assert lines[0] == lines[2]

    # LAReQA-style rows: queries per language, one multilingual candidate pool shared by all.
    pool = _jsonl(d / "lareqa-pool.jsonl", [
        {"role": "candidate", "id": f"{lang}-{k}", "text": text, "relevant": []}
        for lang, texts in {"en": ["the film was good", "the ending was great"],
                            "de": ["der Film war gut", "das Ende war toll"]}.items()
        for k, text in enumerate(texts)])
    for lang, qs in {"en": ["was the film good", "how was the ending"],
                     "de": ["war der Film gut", "wie war das Ende"]}.items():
        _jsonl(d / f"lareqa-{lang}.jsonl", [{"role": "query", "id": f"q{lang}{k}", "text": q,
                                             "relevant": [f"en-{k}", f"de-{k}"]} for k, q in enumerate(qs)])
    card = _card("lareqa_fixture", "retrieval", "lareqa",
                 data_files={"test": [str(d / "lareqa-{lang}.jsonl"), pool]}, eval_languages=["en", "de"],
                 metrics=["map@20"], main_metric="map@20")
    result, run_dir = _run(make_cfg, tmp_path / "lareqa", card)
    _assert_same(result, _score(run_dir, "lareqa", ["en", "de"]), ["map@20"])

    # BUCC (XTREME v1): mined pairs scored by F1 over the set of pairs.
    for lang, rows in pairs.items():
        _jsonl(d / f"bucc-{lang}.jsonl", [{"src": a, "trg": b, "sid": f"{lang}-{i:03d}", "tid": f"en-{i:03d}"}
                                          for i, (a, b) in enumerate(rows)])
    card = _card("bucc_fixture", "retrieval", "bucc2018", data_files={"test": str(d / "bucc-{lang}.jsonl")},
                 eval_languages=["de", "fr"], metrics=["f1", "precision", "recall"], main_metric="f1",
                 benchmark="xtreme", bucc_threshold=-1.0,
                 columns={"query": "src", "candidate": "trg", "query_id": "sid", "candidate_id": "tid"})
    result, run_dir = _run(make_cfg, tmp_path / "bucc", card)
    _assert_same(result, _score(run_dir, "bucc2018", ["de", "fr"], version="xtreme"), ["f1"])


def test_xnli_translate_train_exports_official_layout(make_cfg, tmp_path):
    d = tmp_path / "data"
    labels = ["entailment", "neutral", "contradiction"]

    def rows(lang: str, n: int) -> list[dict]:
        word = {"en": "film", "de": "Film"}[lang]
        return [{"premise": f"the {word} {i}", "hypothesis": f"a {word} {i % 3}", "label": i % 3}
                for i in range(n)]

    for lang in ("en", "de"):
        _jsonl(d / f"xnli-{lang}-test.jsonl", rows(lang, 9))
        _jsonl(d / f"xnli-{lang}-train.jsonl", rows(lang, 24))
    card = _card("xnli_fixture", "text_pair_classification", "xnli",
                 data_files={"test": str(d / "xnli-{lang}-test.jsonl")}, eval_languages=["en", "de"],
                 metrics=["accuracy"], main_metric="accuracy", labels=labels,
                 columns={"text": ["premise", "hypothesis"], "label": "label"},
                 train_source={"kind": "local", "format": "json",
                               "data_files": {"train": str(d / "xnli-en-train.jsonl")}},
                 translate_train={"enabled": False, "source": {
                     "kind": "local", "format": "json", "data_files": {"train": str(d / "xnli-{lang}-train.jsonl")}}})
    result, run_dir = _run(make_cfg, tmp_path, card, "data.translate_train=true")
    sizes = result["stage2"]["data"]["sizes"]
    assert sizes["translate_train"] == ["de"] and sizes["train"] + sizes["validation"] == 48
    _assert_same(result, _score(run_dir, "xnli", ["en", "de"]), ["accuracy"])
    gold = (run_dir / "predictions" / "labels" / "xnli" / "test-de.tsv").read_text().split()
    assert gold[:3] == labels


# --------------------------------------------------------------------------------------
# Config switches and bad input
# --------------------------------------------------------------------------------------

def test_train_overrides_apply_only_when_asked(make_cfg):
    cfg = make_cfg("intermediate=none", "target=xquad")
    assert cfg["target"]["train_overrides"]["max_length"] == 384
    assert apply_card_settings(cfg)["stage2"]["max_length"] == cfg["stage2"]["max_length"]
    cfg["run"]["card_overrides"] = True
    applied = apply_card_settings(cfg)
    assert applied["stage2"]["max_length"] == 384 and applied["stage2"]["lr"] == pytest.approx(3e-5)
    assert cfg["stage2"]["max_length"] != 384, "the input config is left alone"
    cfg["target"]["train_overrides"]["learning_rate"] = 1.0
    with pytest.raises(ConfigError, match="learning_rate"):
        apply_card_settings(cfg)


def test_translate_train_where_no_translation_exists_is_an_error(make_cfg):
    cfg = make_cfg("intermediate=none", "target=xcopa", "data.translate_train=true")
    with pytest.raises(ConfigError, match="xcopa.*no translated training data"):
        apply_card_settings(cfg)


def test_missing_language_file_is_named(make_cfg, tmp_path):
    d = tmp_path / "data"
    _jsonl(d / "panx-en-test.jsonl", _ner_rows("en", 4, 1))
    card = _card("panx_missing", "token_tagging", "panx", data_files={"test": str(d / "panx-{lang}-test.jsonl")},
                 eval_languages=["en", "sw"], metrics=["f1"], main_metric="f1",
                 labels=["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"],
                 train_source={"kind": "local", "format": "json",
                               "data_files": {"train": str(d / "panx-en-test.jsonl")}})
    card["source"]["lang_codes"] = {"sw": "swa"}   # the source's own name for a language
    with pytest.raises(DataError, match=r"\(sw\): data file not found: .*panx-swa-test\.jsonl"):
        _run(make_cfg, tmp_path, card)
    assert "panx-swa-test.jsonl" in json.loads((tmp_path / "run" / "error.json").read_text())["exception"]
