"""Tests of the XTREME-R / XTREME scorer (itt.metrics.xtreme_r) and its task registry.

Every expected number is a literal worked out by hand in the comment next to it, a value
returned by a released seqeval, or an average copied from google-research/xtreme's
evaluate_test.py (its mock submission is in tests/fixtures/xtreme_mock). The other fixtures
are literal file contents in the official formats, written into tmp_path.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from itt.metrics import xtreme_files as xf
from itt.metrics import xtreme_metrics as xm
from itt.metrics import xtreme_r as xr
from itt.metrics.xtreme_tasks import TASKS, VERSIONS, get_version, task_languages

REPO = Path(__file__).resolve().parents[1]
APPROX = dict(abs=1e-9)


# --------------------------------------------------------------------------------------
# Literal fixtures (official formats) and their hand-computed per-language scores
# --------------------------------------------------------------------------------------

XNLI_GOLD = "entailment\nneutral\ncontradiction\nneutral\n"
XNLI_PRED = "entailment\nneutral\nneutral\ncontradiction\n"  # rows 1, 2 right: 2/4 = 0.5
XNLI_PRED_EN = XNLI_GOLD                                      # en only: 4/4 = 1.0

PAWSX_GOLD = "1\n0\n0\n1\n"
PAWSX_PRED = "1\n0\n1\n1\n"  # row 3 wrong: 3/4 = 0.75

XCOPA_GOLD = '{"idx": 0, "label": 0}\n{"idx": 1, "label": 1}\n{"idx": 2, "label": 1}\n'
XCOPA_PRED = '{"label": 0}\n{"label": 1}\n{"label": 0}\n'  # row 3 wrong: 2/3

# NER, three sentences.
#   1: gold PER[0-1], LOC[3]; pred PER[0] (only part of the entity: wrong), LOC[3] (right)
#   2: gold ORG[0-2] (three tokens); pred the same (right)
#   3: gold none; pred MISC[0] (false positive)
# gold chunks 3, predicted chunks 4, right 2: P = 2/4, R = 2/3,
# F1 = 2 * 1/2 * 2/3 / (1/2 + 2/3) = (2/3) / (7/6) = 4/7 = 0.571428571...
NER_GOLD = "B-PER\nI-PER\nO\nB-LOC\n\nB-ORG\nI-ORG\nI-ORG\nO\n\nO\nO\n"
NER_PRED = "B-PER\nO\nO\nB-LOC\n\nB-ORG\nI-ORG\nI-ORG\nO\n\nB-MISC\nO\n"
NER_F1 = 0.5714285714285714
NER_P = 0.5
NER_R = 0.6666666666666666

# UD-POS, scored with seqeval like the official evaluate.py: DET NOUN VERB vs DET NOUN NOUN.
# seqeval chunks (first char = tag, rest = type): gold ET[0], OUN[1], ERB[2];
# pred ET[0], OUN[1-2] (two identical tags merge into one chunk). Right: ET[0] only.
# P = 1/2, R = 1/3, F1 = 2 * 1/6 / (5/6) = 2/5 = 0.4 (token accuracy would be 2/3).
POS_GOLD = "DET\nNOUN\nVERB\n"
POS_PRED = "DET\nNOUN\nNOUN\n"
POS_F1 = 0.4

TATOEBA_GOLD = "3\n1\n4\n0\n2\n"
TATOEBA_PRED = "3\n1\n0\n0\n9\n"  # rows 1, 2, 4 right: 3/5 = 0.6

# BUCC: 4 gold pairs, 3 predicted, 2 right: P = 2/3, R = 2/4,
# F1 = 2 * 2/3 * 1/2 / (2/3 + 1/2) = (2/3) / (7/6) = 4/7.
BUCC_GOLD = "de-1\ten-1\nde-2\ten-2\nde-3\ten-3\nde-4\ten-4\n"
BUCC_PRED = "de-1\ten-1\nde-2\ten-9\nde-3\ten-3\n"
BUCC_F1 = 0.5714285714285714

# XQuAD / TyDiQA (SQuAD v1.1 normalisation):
#   q1 "the Denver Broncos!" vs "Denver Broncos": both -> "denver broncos": EM 1, F1 1
#   q2 "Santa Clara" vs "Santa Clara, California": EM 0; 2 common of 2 pred / 3 gold
#      tokens: P 1, R 2/3, F1 = 0.8
#   q3 "" (empty prediction) vs "1990" / "in 1990": EM 0, F1 0
#   q4 "" vs no gold answer (unanswerable): abstaining is right: EM 1, F1 1
#   q5 "Paris" vs no gold answer: EM 0, F1 0
# EM = 2/5 = 0.4; F1 = (1 + 0.8 + 0 + 1 + 0) / 5 = 0.56; task score = (0.4 + 0.56) / 2 = 0.48
SQUAD_GOLD_ANSWERS = {"q1": ["Denver Broncos"], "q2": ["Santa Clara, California"],
                      "q3": ["1990", "in 1990"], "q4": [], "q5": []}
SQUAD_PRED = {"q1": "the Denver Broncos!", "q2": "Santa Clara", "q3": "", "q4": "",
              "q5": "Paris"}
SQUAD_EM, SQUAD_F1, SQUAD_SCORE = 0.4, 0.56, 0.48

# MLQA, per language (MLQA normalisation):
#   en: "Beatles" vs "The Beatles" -> EM 1; "rock" vs "rock music" -> EM 0, F1 2/3
#       EM 1/2, F1 (1 + 2/3) / 2 = 5/6
#   es: "casa blanca" vs "la casa blanca": "la" is a Spanish article -> EM 1, F1 1
#   de: "Rhein" vs "der Rhein": "der" is a German article -> EM 1, F1 1
#   ar: "كتاب" vs "الكتاب": the article "ال" is removed -> EM 1, F1 1
#   hi: "भारत।" vs "भारत": the danda (unicode punctuation) is removed -> EM 1, F1 1
#   vi: "ngôi nhà" vs "những ngôi nhà": "những" is in MLQA's Vietnamese list -> EM 1, F1 1
#   zh: "北京" vs "北京大学": one token per character, 2 of 2 pred / 4 gold -> F1 2/3, EM 0;
#       "2008 年" vs "2008年": both -> "2008 年" -> EM 1, F1 1.  EM 1/2, F1 5/6
# avg EM = (1/2 + 5 + 1/2) / 7 = 6/7; avg F1 = (5/6 + 5 + 5/6) / 7 = 20/21;
# task score = (6/7 + 20/21) / 2 = 19/21 = 0.904761904...
MLQA_GOLD = {
    "en": {"en1": ["The Beatles"], "en2": ["rock music"]},
    "es": {"es1": ["la casa blanca"]},
    "de": {"de1": ["der Rhein"]},
    "ar": {"ar1": ["الكتاب"]},
    "hi": {"hi1": ["भारत"]},
    "vi": {"vi1": ["những ngôi nhà"]},
    "zh": {"zh1": ["北京大学"], "zh2": ["2008年"]},
}
MLQA_PRED = {
    "en": {"en1": "Beatles", "en2": "rock"},
    "es": {"es1": "casa blanca"},
    "de": {"de1": "Rhein"},
    "ar": {"ar1": "كتاب"},
    "hi": {"hi1": "भारत।"},
    "vi": {"vi1": "ngôi nhà"},
    "zh": {"zh1": "北京", "zh2": "2008 年"},
}
MLQA_AVG_EM = 0.8571428571428571   # 6/7
MLQA_AVG_F1 = 0.9523809523809523   # 20/21
MLQA_SCORE = 0.9047619047619048    # 19/21

# Mewsli-X, three mentions with one gold entity each (AP@20 = reciprocal rank in top 20):
#   m1 gold Q1 at rank 1 -> 1;  m2 gold Q5 at rank 3 -> 1/3;
#   m3 gold Q9 at rank 21, beyond the cut-off -> 0.   mAP@20 = (1 + 1/3 + 0) / 3 = 4/9
MEWSLIX_GOLD = {"m1": ["Q1"], "m2": ["Q5"], "m3": ["Q9"]}
MEWSLIX_PRED = {"m1": ["Q1", "Q2"], "m2": ["Q2", "Q3", "Q5"],
                "m3": [f"Q{100 + i}" for i in range(20)] + ["Q9"]}
MEWSLIX_MAP = 0.4444444444444444

# LAReQA, relevant answers in several languages:
#   q1 relevant {a_en, a_de}, ranking a_de, x, a_en: hits at ranks 1 and 3:
#      (1/1 + 2/3) / min(2, 20) = (5/3) / 2 = 5/6
#   q2 relevant {b_en, b_de, b_es}, ranking y, b_es, b_es, b_en: hit at rank 2 (1/2),
#      the repeated b_es at rank 3 scores nothing, hit at rank 4 (2/4):
#      (1/2 + 1/2) / 3 = 1/3
#   mAP@20 = (5/6 + 1/3) / 2 = 7/12
LAREQA_GOLD = {"q1": ["a_en", "a_de"], "q2": ["b_en", "b_de", "b_es"]}
LAREQA_PRED = {"q1": ["a_de", "x", "a_en"], "q2": ["y", "b_es", "b_es", "b_en"]}
LAREQA_MAP = 0.5833333333333334


def squad_json(answers: Dict[str, List[str]]) -> str:
    """A SQuAD v1.1 label file holding ``answers`` (question id -> gold answer texts)."""
    qas = [{"id": qid, "question": "?", "answers": [{"text": t, "answer_start": 0} for t in texts]}
           for qid, texts in answers.items()]
    return json.dumps({"version": "1.1",
                       "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]},
                      ensure_ascii=False)


def put(root: Path, task: str, lang: str, ext: str, text: str) -> Path:
    path = root / task / f"test-{lang}.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_task(pred: Path, gold: Path, version: str, task: str) -> None:
    """Write the literal fixture of ``task`` for every official language of ``version``."""
    for lang in task_languages(version, task):
        if task == "xnli":
            put(gold, task, lang, "tsv", XNLI_GOLD)
            put(pred, task, lang, "tsv", XNLI_PRED_EN if lang == "en" else XNLI_PRED)
        elif task == "pawsx":
            put(gold, task, lang, "tsv", PAWSX_GOLD)
            put(pred, task, lang, "tsv", PAWSX_PRED)
        elif task == "xcopa":
            put(gold, task, lang, "jsonl", XCOPA_GOLD)
            put(pred, task, lang, "jsonl", XCOPA_PRED)
        elif task == "panx":
            put(gold, task, lang, "tsv", NER_GOLD)
            put(pred, task, lang, "tsv", NER_PRED)
        elif task == "udpos":
            put(gold, task, lang, "tsv", POS_GOLD)
            put(pred, task, lang, "tsv", POS_PRED)
        elif task in ("xquad", "tydiqa"):
            put(gold, task, lang, "json", squad_json(SQUAD_GOLD_ANSWERS))
            put(pred, task, lang, "json", json.dumps(SQUAD_PRED))
        elif task == "mlqa":
            put(gold, task, lang, "json", squad_json(MLQA_GOLD[lang]))
            put(pred, task, lang, "json", json.dumps(MLQA_PRED[lang], ensure_ascii=False))
        elif task == "tatoeba":
            put(gold, task, lang, "tsv", TATOEBA_GOLD)
            put(pred, task, lang, "tsv", TATOEBA_PRED)
        elif task == "bucc2018":
            put(gold, task, lang, "tsv", BUCC_GOLD)
            put(pred, task, lang, "tsv", BUCC_PRED)
        elif task == "mewslix":
            put(gold, task, lang, "json", json.dumps(MEWSLIX_GOLD))
            put(pred, task, lang, "json", json.dumps(MEWSLIX_PRED))
        elif task == "lareqa":
            put(gold, task, lang, "json", json.dumps(LAREQA_GOLD))
            put(pred, task, lang, "json", json.dumps(LAREQA_PRED))
        else:
            raise AssertionError(task)


def make_benchmark(root: Path, version: str) -> tuple:
    pred, gold = root / "pred", root / "gold"
    for task in VERSIONS[version].tasks:
        write_task(pred, gold, version, task)
    return pred, gold


# The full benchmarks are built once per module and only read by the tests that use them.
@pytest.fixture(scope="module")
def xtreme_r_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return make_benchmark(tmp_path_factory.mktemp("xtreme-r"), "xtreme-r")


@pytest.fixture(scope="module")
def xtreme_r_dirs_without_lareqa(tmp_path_factory: pytest.TempPathFactory,
                                 xtreme_r_dirs: tuple) -> tuple:
    """The XTREME-R predictions minus the lareqa folder (the others are linked in)."""
    pred, gold = xtreme_r_dirs
    partial = tmp_path_factory.mktemp("xtreme-r-partial") / "pred"
    partial.mkdir()
    for task in VERSIONS["xtreme-r"].tasks:
        if task != "lareqa":
            (partial / task).symlink_to(pred / task, target_is_directory=True)
    return partial, gold


@pytest.fixture(scope="module")
def xtreme_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return make_benchmark(tmp_path_factory.mktemp("xtreme"), "xtreme")


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------

def test_registry_languages_and_tasks() -> None:
    xtr, xt = get_version("xtreme-r"), get_version("xtreme")
    assert xtr.tasks == ("xnli", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa",
                         "tatoeba", "mewslix", "lareqa")
    assert xt.tasks == ("pawsx", "xnli", "panx", "udpos", "bucc2018", "tatoeba", "xquad",
                        "mlqa", "tydiqa")
    assert len(xtr.all_languages) == 50   # XTREME-R covers 50 languages
    assert len(xt.all_languages) == 40    # XTREME covers 40
    counts = {t: len(langs) for t, langs in xtr.languages.items()}
    assert counts == {"xnli": 15, "xcopa": 11, "udpos": 38, "panx": 48, "xquad": 12,
                      "mlqa": 7, "tydiqa": 9, "tatoeba": 41, "mewslix": 11, "lareqa": 11}
    assert {g.key: g.tasks for g in xtr.groups} == {
        "classification": ("xnli", "xcopa"), "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"), "retrieval": ("tatoeba", "mewslix", "lareqa")}
    for version in VERSIONS.values():   # each task in exactly one group
        grouped = [t for g in version.groups for t in g.tasks]
        assert sorted(grouped) == sorted(version.tasks)
    assert TASKS["udpos"].scorer == TASKS["panx"].scorer == "seqeval"
    assert TASKS["xcopa"].task_type == "multiple_choice"
    assert TASKS["mlqa"].extension == "json" and TASKS["xcopa"].extension == "jsonl"


# --------------------------------------------------------------------------------------
# Metric functions on in-memory lists
# --------------------------------------------------------------------------------------

def test_accuracy() -> None:
    assert xm.accuracy(["a", "b", "c", "d"], ["a", "x", "c", "x"]) == 0.5  # 2 of 4
    with pytest.raises(xm.XtremeScoringError, match="3 labels but 2 predictions"):
        xm.accuracy([1, 2, 3], [1, 2])


def test_seqeval_ner_multi_token_and_partial_overlap() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O"], ["O", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O"], ["B-MISC", "O"]]
    prf = xm.seqeval_prf(gold, pred)
    assert prf["f1"] == pytest.approx(NER_F1, **APPROX)       # 4/7, see NER_GOLD
    assert prf["precision"] == pytest.approx(NER_P, **APPROX)  # 2/4
    assert prf["recall"] == pytest.approx(NER_R, **APPROX)     # 2/3
    # A span one token too long is as wrong as a missing one: gold PER[0-1], pred PER[0-2].
    # 0 right of 1 predicted / 1 gold -> F1 0.
    assert xm.seqeval_f1([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "I-PER"]]) == 0.0
    # seqeval's default mode starts a chunk at an I- tag that follows O: pred I-PER I-PER
    # is the chunk PER[0-1], which matches gold B-PER I-PER -> F1 1.
    assert xm.seqeval_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]]) == 1.0
    # Chunks do not cross sentences: an "O" separates them (offsets count it).
    assert xm.seqeval_entities([["B-PER"], ["I-PER"]]) == [("PER", 0, 0), ("PER", 2, 2)]
    # No entity anywhere: zero division -> 0, as seqeval returns.
    assert xm.seqeval_f1([["O", "O"]], [["O", "O"]]) == 0.0


def test_seqeval_pos_tags_follow_official_chunking() -> None:
    # Default (seqeval 0.0.12, the official scores): the type is the whole POS tag.
    # DET NOUN VERB vs DET NOUN NOUN: gold DET[0], NOUN[1], VERB[2]; pred DET[0], NOUN[1-2]
    # (two identical tags merge into one chunk). Right: DET[0] only -> 0.4, see POS_GOLD.
    assert xm.seqeval_f1([["DET", "NOUN", "VERB"]], [["DET", "NOUN", "NOUN"]]) == \
        pytest.approx(POS_F1, **APPROX)
    # NOUN NOUN VERB vs NOUN VERB VERB: gold NOUN[0-1], VERB[2]; pred NOUN[0], VERB[1-2];
    # no chunk identical -> 0, although 2 of 3 tokens are right.
    assert xm.seqeval_f1([["NOUN", "NOUN", "VERB"]], [["NOUN", "VERB", "VERB"]]) == 0.0
    assert xm.seqeval_entities([["NOUN", "NOUN", "VERB"]]) == [("NOUN", 0, 1), ("VERB", 2, 2)]
    assert xm.seqeval_entities([["NOUN", "NOUN", "VERB"]], "1.2") == [("OUN", 0, 1), ("ERB", 2, 2)]
    # CCONJ then SCONJ. 0.0.12: types CCONJ and SCONJ differ, so two chunks. 1.2: both have
    # type CONJ; tag S opens a new chunk without closing the CCONJ one (tag C ends
    # nothing), so seqeval 1.2 drops the CCONJ token: one chunk, CONJ[1].
    assert xm.seqeval_entities([["CCONJ", "SCONJ"]]) == [("CCONJ", 0, 0), ("SCONJ", 1, 1)]
    assert xm.seqeval_entities([["CCONJ", "SCONJ"]], "1.2") == [("CONJ", 1, 1)]
    # NER tags chunk the same under both releases.
    for scheme in xm.SEQEVAL_SCHEMES:
        assert xm.seqeval_entities([["B-PER", "I-PER", "O", "B-LOC"]], scheme) == \
            [("PER", 0, 1), ("LOC", 3, 3)]
    with pytest.raises(xm.XtremeScoringError, match="unknown seqeval chunking '2.0'; use one of"):
        xm.seqeval_prf([["NOUN"]], [["NOUN"]], "2.0")


# UD-POS sentences where the two seqeval releases disagree (CCONJ/SCONJ, X, INTJ runs).
POS_PIN_GOLD = [s.split() for s in (
    "PRON AUX CCONJ SCONJ PRON VERB PUNCT",
    "DET ADJ NOUN ADP PROPN PROPN X PUNCT",
    "INTJ INTJ PUNCT SCONJ PRON VERB ADV CCONJ VERB NUM SYM")]
POS_PIN_PRED = [s.split() for s in (
    "PRON AUX SCONJ SCONJ PRON VERB PUNCT",
    "DET ADJ NOUN ADP PROPN NOUN X PUNCT",
    "INTJ PUNCT PUNCT CCONJ PRON VERB ADV SCONJ VERB NUM SYM")]
# What seqeval 0.0.12 itself returned for these lists (seqeval-0.0.12.tar.gz from PyPI,
# seqeval.metrics f1_score / precision_score / recall_score): 24 gold chunks, 25 predicted,
# 18 right.
POS_PIN_0_0_12 = {"f1": 0.7346938775510204, "precision": 0.72, "recall": 0.75}
# seqeval 1.2.2 on the same lists: 23 gold chunks, 25 predicted, 20 right.
POS_PIN_1_2 = {"f1": 0.8333333333333333, "precision": 0.8, "recall": 0.8695652173913043}


def test_seqeval_0_0_12_chunking_is_pinned() -> None:
    ours = xm.seqeval_prf(POS_PIN_GOLD, POS_PIN_PRED)
    assert ours == pytest.approx(POS_PIN_0_0_12, abs=1e-15)
    assert xm.seqeval_prf(POS_PIN_GOLD, POS_PIN_PRED, "0.0.12") == ours
    assert xm.seqeval_prf(POS_PIN_GOLD, POS_PIN_PRED, "1.2") == \
        pytest.approx(POS_PIN_1_2, abs=1e-15)


def _write_pos(root: Path, gold: List[List[str]]) -> None:
    text = "\n".join("\n".join(sent) + "\n" for sent in gold)
    for lang in task_languages("xtreme-r", "udpos"):
        path = root / "udpos" / f"test-{lang}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_score_udpos_seqeval_flag_and_report(tmp_path: Path) -> None:
    _write_pos(tmp_path / "labels", POS_PIN_GOLD)
    _write_pos(tmp_path / "predictions", POS_PIN_PRED)
    default = xr.score(tmp_path / "predictions", tmp_path / "labels", tasks="udpos")
    assert default["seqeval"] == "0.0.12"
    assert default["tasks"]["udpos"]["avg_f1"] == pytest.approx(POS_PIN_0_0_12["f1"], abs=1e-12)
    new = xr.score(tmp_path / "predictions", tmp_path / "labels", tasks="udpos", seqeval="1.2")
    assert new["seqeval"] == "1.2"
    assert new["tasks"]["udpos"]["avg_f1"] == pytest.approx(POS_PIN_1_2["f1"], abs=1e-12)
    with pytest.raises(xm.XtremeScoringError, match="unknown seqeval chunking"):
        xr.score(tmp_path / "predictions", tmp_path / "labels", tasks="udpos", seqeval="1.0")
    out = run_cli("--predictions", str(tmp_path / "predictions"), "--labels",
                  str(tmp_path / "labels"), "--tasks", "udpos", "--seqeval", "1.2")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["seqeval"] == "1.2"
    assert report["tasks"]["udpos"]["avg_f1"] == pytest.approx(POS_PIN_1_2["f1"], abs=1e-12)


def test_seqeval_sentence_length_mismatch() -> None:
    with pytest.raises(xm.XtremeScoringError, match="sentence 2 has 2 gold tags but 1"):
        xm.seqeval_prf([["O"], ["O", "O"]], [["O"], ["O"]])


def test_seqeval_1_2_matches_the_seqeval_library() -> None:
    # seqeval 1.2.2 is in the dev extra (pyproject.toml); a missing install is a failure.
    import random
    import warnings
    from importlib.metadata import version

    from seqeval.metrics import f1_score, precision_score, recall_score

    assert version("seqeval") == "1.2.2"
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-PER", "S-LOC", "NOUN", "VERB",
            "CCONJ", "SCONJ", "X", "INTJ", "PROPN", "ADP", "PUNCT"]
    rng = random.Random(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(300):
            gold = [[rng.choice(tags) for _ in range(rng.randint(1, 6))]
                    for _ in range(rng.randint(1, 4))]
            pred = [[rng.choice(tags) if rng.random() < 0.5 else t for t in s] for s in gold]
            ours = xm.seqeval_prf(gold, pred, "1.2")
            assert ours["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
            assert ours["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-12)
            assert ours["recall"] == pytest.approx(recall_score(gold, pred), abs=1e-12)
        assert xm.seqeval_prf(POS_PIN_GOLD, POS_PIN_PRED, "1.2") == pytest.approx(
            {"f1": f1_score(POS_PIN_GOLD, POS_PIN_PRED),
             "precision": precision_score(POS_PIN_GOLD, POS_PIN_PRED),
             "recall": recall_score(POS_PIN_GOLD, POS_PIN_PRED)}, abs=1e-12)


def test_squad_f1_em_edge_cases() -> None:
    scores = xm.squad_f1_em(SQUAD_GOLD_ANSWERS, SQUAD_PRED)
    assert scores["exact_match"] == pytest.approx(SQUAD_EM, **APPROX)  # 2/5
    assert scores["f1"] == pytest.approx(SQUAD_F1, **APPROX)           # 2.8/5
    # The best of several gold answers counts: "in 1990" matches the second one exactly.
    assert xm.squad_f1_em({"q": ["1990", "in 1990"]}, {"q": "in 1990"}) == \
        {"f1": 1.0, "exact_match": 1.0}
    # "in 1990" vs "1990" only: EM 0; 1 common token, P 1/2, R 1 -> F1 2/3.
    only = xm.squad_f1_em({"q": ["1990"]}, {"q": "in 1990"})
    assert only["exact_match"] == 0.0
    assert only["f1"] == pytest.approx(0.6666666666666666, **APPROX)
    # A question without a prediction scores 0 (as in the official script): 1 of 2 right.
    assert xm.squad_f1_em({"a": ["x"], "b": ["y"]}, {"a": "x"}) == {"f1": 0.5, "exact_match": 0.5}
    # A prediction that normalises to nothing ("the") abstains on an unanswerable question.
    assert xm.squad_f1_em({"u": []}, {"u": "The"}) == {"f1": 1.0, "exact_match": 1.0}


def test_squad_answers_from_dataset() -> None:
    dataset = json.loads(squad_json({"a": ["x", "y"], "b": []}))
    assert xm.squad_answers(dataset) == {"a": ["x", "y"], "b": []}
    assert xm.squad_answers(dataset["data"]) == {"a": ["x", "y"], "b": []}
    with pytest.raises(xm.XtremeScoringError, match="SQuAD-format"):
        xm.squad_answers({"data": [{"no_paragraphs": []}]})


def test_mlqa_normalisation_per_language() -> None:
    assert xm.normalize_mlqa_answer("La Casa Blanca", "es") == "casa blanca"
    assert xm.normalize_squad_answer("La Casa Blanca") == "la casa blanca"  # no es articles
    assert xm.normalize_mlqa_answer("Der Rhein", "de") == "rhein"
    assert xm.normalize_mlqa_answer("những ngôi nhà", "vi") == "ngôi nhà"
    assert xm.normalize_mlqa_answer("الكتاب", "ar") == "كتاب"
    assert xm.normalize_mlqa_answer("भारत।", "hi") == "भारत"
    assert xm.normalize_squad_answer("भारत।") == "भारत।"  # the danda is not ASCII punctuation
    assert xm.normalize_mlqa_answer("«Paris»", "en") == "paris"  # unicode quotes are removed
    assert xm.normalize_mlqa_answer("北京大学 in 2008年", "zh") == "北 京 大 学 in 2008 年"
    # Spanish article: EM 1 under MLQA rules, EM 0 / F1 0.8 under SQuAD rules
    # ("la casa blanca" 3 tokens vs "casa blanca" 2: P 1, R 2/3, F1 0.8).
    gold, pred = {"q": ["la casa blanca"]}, {"q": "casa blanca"}
    assert xm.mlqa_f1_em(gold, pred, "es") == {"f1": 1.0, "exact_match": 1.0}
    squad = xm.squad_f1_em(gold, pred)
    assert squad["exact_match"] == 0.0 and squad["f1"] == pytest.approx(0.8, **APPROX)
    # Chinese: character tokens. "北京" vs "北京大学": P 2/2, R 2/4 -> F1 2/3; as whole
    # strings (SQuAD rules) the two share no token -> F1 0.
    zh = xm.mlqa_f1_em({"q": ["北京大学"]}, {"q": "北京"}, "zh")
    assert zh["exact_match"] == 0.0 and zh["f1"] == pytest.approx(0.6666666666666666, **APPROX)
    assert xm.squad_f1_em({"q": ["北京大学"]}, {"q": "北京"})["f1"] == 0.0
    for lang in MLQA_GOLD:
        expected_em = 0.5 if lang in ("en", "zh") else 1.0
        expected_f1 = 0.8333333333333334 if lang in ("en", "zh") else 1.0  # 5/6 or 1
        got = xm.mlqa_f1_em(MLQA_GOLD[lang], MLQA_PRED[lang], lang)
        assert got["exact_match"] == pytest.approx(expected_em, **APPROX), lang
        assert got["f1"] == pytest.approx(expected_f1, **APPROX), lang
    with pytest.raises(xm.XtremeScoringError, match="no rules for language 'fr'"):
        xm.mlqa_f1_em(gold, pred, "fr")


def test_map_at_k_duplicates_cutoff_and_ties() -> None:
    gold = [LAREQA_GOLD["q1"], LAREQA_GOLD["q2"]]
    ranked = [LAREQA_PRED["q1"], LAREQA_PRED["q2"]]
    assert xm.map_at_k(gold, ranked) == pytest.approx(LAREQA_MAP, **APPROX)  # 7/12
    assert xm.map_at_k([["Q9"]], [MEWSLIX_PRED["m3"]], k=20) == 0.0  # gold at rank 21
    assert xm.map_at_k([["Q9"]], [MEWSLIX_PRED["m3"]], k=21) == pytest.approx(1 / 21, **APPROX)
    # 25 relevant candidates, all 20 retrieved ones relevant: divisor min(25, 20) -> 1.0
    many = [f"c{i}" for i in range(25)]
    assert xm.map_at_k([many], [many[:20]]) == 1.0
    # Ties: candidates with equal scores keep their input order (earlier ranks higher).
    ranking = xm.rank_by_score({"wrong": 0.9, "right": 0.9, "low": 0.1})
    assert ranking == ["wrong", "right", "low"]
    assert xm.map_at_k([["right"]], [ranking]) == 0.5          # right at rank 2 -> 1/2
    ranking = xm.rank_by_score([("right", 0.9), ("wrong", 0.9), ("low", 0.1)])
    assert xm.map_at_k([["right"]], [ranking]) == 1.0          # listed first -> rank 1
    with pytest.raises(xm.XtremeScoringError, match="at least one relevant"):
        xm.map_at_k([[]], [["x"]])


def test_bucc_f1() -> None:
    gold = BUCC_GOLD.strip().split("\n")
    pred = [("de-1", "en-1"), ("de-2", "en-9"), ("de-3", "en-3")]
    scores = xm.bucc_f1(gold, pred)
    assert scores["precision"] == pytest.approx(0.6666666666666666, **APPROX)  # 2/3
    assert scores["recall"] == 0.5                                               # 2/4
    assert scores["f1"] == pytest.approx(BUCC_F1, **APPROX)                      # 4/7
    assert xm.bucc_f1(gold, [("de-1", "en-2")]) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


# --------------------------------------------------------------------------------------
# Writers produce the official formats
# --------------------------------------------------------------------------------------

def test_writers_produce_official_layout(tmp_path: Path) -> None:
    root = tmp_path / "out"
    path = xf.write_predictions(root, "panx", "de", [["B-PER", "O", "O", "B-LOC"],
                                                     ["B-ORG", "I-ORG", "I-ORG", "O"],
                                                     ["B-MISC", "O"]])
    assert path == root / "panx" / "test-de.tsv"
    assert path.read_text(encoding="utf-8") == NER_PRED
    gold_path = xf.write_labels(root, "panx", "de", [["B-PER", "I-PER", "O", "B-LOC"],
                                                     ["B-ORG", "I-ORG", "I-ORG", "O"], ["O", "O"]])
    assert gold_path == path and gold_path.read_text(encoding="utf-8") == NER_GOLD
    assert xf.write_labels(root, "xnli", "ar", ["entailment", "neutral", "contradiction",
                                                 "neutral"]).read_text() == XNLI_GOLD
    assert xf.write_predictions(root, "xcopa", "et", [0, 1, 0]).read_text() == XCOPA_PRED
    assert xf.write_predictions(root, "tatoeba", "af", [3, 1, 0, 0, 9]).read_text() == TATOEBA_PRED
    assert xf.write_predictions(root, "bucc2018", "de", [("de-1", "en-1"), ("de-2", "en-9"),
                                                         ("de-3", "en-3")]).read_text() == BUCC_PRED
    qa = xf.write_predictions(root, "mlqa", "zh", MLQA_PRED["zh"])
    assert qa.name == "test-zh.json"
    assert json.loads(qa.read_text(encoding="utf-8")) == MLQA_PRED["zh"]
    squad = xf.write_labels(root, "mlqa", "zh", MLQA_GOLD["zh"])
    assert xm.squad_answers(json.loads(squad.read_text(encoding="utf-8"))) == MLQA_GOLD["zh"]
    ranked = xf.write_predictions(root, "mewslix", "ar", MEWSLIX_PRED)
    assert json.loads(ranked.read_text()) == MEWSLIX_PRED
    assert sorted(p.name for p in (root / "panx").iterdir()) == ["test-de.tsv"]  # no temp files
    with pytest.raises(xm.XtremeScoringError, match="unknown task 'nope'"):
        xf.write_predictions(root, "nope", "en", [])
    with pytest.raises(xm.XtremeScoringError, match="sentence 2 has no tags"):
        xf.write_predictions(root, "udpos", "en", [["NOUN"], []])


def test_written_files_score_like_literal_ones(tmp_path: Path) -> None:
    pred, gold = tmp_path / "p", tmp_path / "g"
    for lang in task_languages("xtreme-r", "mewslix"):
        xf.write_predictions(pred, "mewslix", lang, MEWSLIX_PRED)
        xf.write_labels(gold, "mewslix", lang, MEWSLIX_GOLD)
    report = xr.score(pred, gold, "xtreme-r", tasks=["mewslix"])
    assert report["tasks"]["mewslix"]["avg_map@20"] == pytest.approx(MEWSLIX_MAP, **APPROX)


# --------------------------------------------------------------------------------------
# Scoring folders: per task, groups, overall
# --------------------------------------------------------------------------------------

def test_score_full_xtreme_r(xtreme_r_dirs: tuple) -> None:
    pred, gold = xtreme_r_dirs
    report = xr.score(pred, gold, "xtreme-r")
    tasks = report["tasks"]
    assert report["complete"] is True and report["missing_tasks"] == []
    assert report["warnings"] == []
    # XNLI: 0.5 in 14 languages, 1.0 in en -> (14 * 0.5 + 1) / 15 = 8/15
    assert tasks["xnli"]["accuracy"]["ar"] == 0.5 and tasks["xnli"]["accuracy"]["en"] == 1.0
    assert tasks["xnli"]["avg_accuracy"] == pytest.approx(0.5333333333333333, **APPROX)
    assert tasks["xnli"]["avg_metric"] == pytest.approx(0.5333333333333333, **APPROX)
    assert tasks["xnli"]["n"]["ar"] == 4
    assert tasks["xcopa"]["avg_metric"] == pytest.approx(0.6666666666666666, **APPROX)  # 2/3
    assert tasks["udpos"]["avg_f1"] == pytest.approx(0.4, **APPROX)
    assert tasks["panx"]["avg_f1"] == pytest.approx(NER_F1, **APPROX)                    # 4/7
    assert tasks["panx"]["avg_precision"] == pytest.approx(0.5, **APPROX)
    assert tasks["panx"]["n"]["qu"] == 3                                                 # sentences
    assert tasks["xquad"]["avg_exact_match"] == pytest.approx(SQUAD_EM, **APPROX)       # 0.4
    assert tasks["xquad"]["avg_f1"] == pytest.approx(SQUAD_F1, **APPROX)                # 0.56
    assert tasks["xquad"]["avg_metric"] == pytest.approx(SQUAD_SCORE, **APPROX)         # 0.48
    assert tasks["tydiqa"]["avg_metric"] == pytest.approx(SQUAD_SCORE, **APPROX)
    assert tasks["mlqa"]["exact_match"]["zh"] == 0.5 and tasks["mlqa"]["f1"]["es"] == 1.0
    assert tasks["mlqa"]["avg_exact_match"] == pytest.approx(MLQA_AVG_EM, **APPROX)     # 6/7
    assert tasks["mlqa"]["avg_f1"] == pytest.approx(MLQA_AVG_F1, **APPROX)              # 20/21
    assert tasks["mlqa"]["avg_metric"] == pytest.approx(MLQA_SCORE, **APPROX)           # 19/21
    assert tasks["tatoeba"]["avg_accuracy"] == pytest.approx(0.6, **APPROX)
    assert tasks["mewslix"]["avg_map@20"] == pytest.approx(MEWSLIX_MAP, **APPROX)       # 4/9
    assert tasks["lareqa"]["avg_map@20"] == pytest.approx(LAREQA_MAP, **APPROX)         # 7/12
    assert tasks["lareqa"]["avg_metric"] == pytest.approx(LAREQA_MAP, **APPROX)
    assert list(tasks["panx"]["f1"]) == list(task_languages("xtreme-r", "panx"))

    groups = report["groups"]
    # classification: (8/15 + 2/3) / 2 = 0.6
    assert groups["classification"]["score"] == pytest.approx(0.6, **APPROX)
    # structured prediction: (2/5 + 4/7) / 2 = 17/35
    assert groups["tagging"]["score"] == pytest.approx(0.4857142857142857, **APPROX)
    # QA: (12/25 + 19/21 + 12/25) / 3 = 979/1575
    assert groups["qa"]["score"] == pytest.approx(0.6215873015873016, **APPROX)
    # retrieval: (3/5 + 4/9 + 7/12) / 3 = 293/540
    assert groups["retrieval"]["score"] == pytest.approx(0.5425925925925926, **APPROX)
    assert groups["retrieval"]["name"] == "Lang.-agnostic retrieval"
    assert all(g["complete"] for g in groups.values())
    # overall = mean of the 10 task scores; over 6300:
    # 3360 + 4200 + 2520 + 3600 + 3024 + 5700 + 3024 + 3780 + 2800 + 3675 = 35683
    # -> 35683 / 63000 = 0.566396825...
    assert report["overall"] == pytest.approx(0.5663968253968254, **APPROX)


def test_score_percent_scale(xtreme_r_dirs: tuple) -> None:
    pred, gold = xtreme_r_dirs
    report = xr.score(pred, gold, "xtreme-r", percent=True)
    assert report["scale"] == "percent"
    assert report["overall"] == pytest.approx(56.63968253968254, **APPROX)
    assert report["tasks"]["xnli"]["accuracy"]["en"] == pytest.approx(100.0, **APPROX)
    assert report["groups"]["classification"]["score"] == pytest.approx(60.0, **APPROX)
    assert report["tasks"]["xnli"]["n"]["en"] == 4  # counts are not scaled


def test_missing_task_is_reported_and_excluded(xtreme_r_dirs_without_lareqa: tuple,
                                               caplog: pytest.LogCaptureFixture) -> None:
    pred, gold = xtreme_r_dirs_without_lareqa
    with caplog.at_level("WARNING", logger="itt.metrics.xtreme_r"):
        report = xr.score(pred, gold, "xtreme-r")
    assert report["complete"] is False
    assert report["missing_tasks"] == ["lareqa"]
    assert report["tasks"]["lareqa"]["status"] == "missing"
    assert str(pred / "lareqa") in report["tasks"]["lareqa"]["reason"]
    assert "lareqa" not in report["scored_tasks"] and len(report["scored_tasks"]) == 9
    # retrieval without LAReQA: (3/5 + 4/9) / 2 = 47/90
    assert report["groups"]["retrieval"]["score"] == pytest.approx(0.5222222222222223, **APPROX)
    assert report["groups"]["retrieval"]["complete"] is False
    assert report["groups"]["retrieval"]["missing"] == ["lareqa"]
    assert report["groups"]["qa"]["complete"] is True
    # overall over 9 tasks: (35683 - 3675) / 6300 / 9 = 32008 / 56700
    assert report["overall"] == pytest.approx(0.5645149911816578, **APPROX)
    assert any("lareqa" in w and "excluded" in w for w in report["warnings"])
    assert any("9 of 10" in w for w in report["warnings"])
    assert "lareqa" in caplog.text


def test_score_xtreme_v1_full(xtreme_dirs: tuple) -> None:
    pred, gold = xtreme_dirs
    report = xr.score(pred, gold, "xtreme")
    assert report["complete"] is True
    assert report["tasks"]["pawsx"]["avg_accuracy"] == pytest.approx(0.75, **APPROX)
    assert report["tasks"]["bucc2018"]["avg_f1"] == pytest.approx(BUCC_F1, **APPROX)    # 4/7
    assert report["tasks"]["bucc2018"]["avg_recall"] == pytest.approx(0.5, **APPROX)
    assert report["tasks"]["udpos"]["languages"] == list(task_languages("xtreme", "udpos"))
    # classification: (3/4 + 8/15) / 2 = 77/120
    classification = report["groups"]["classification"]["score"]
    assert classification == pytest.approx(0.6416666666666667, **APPROX)
    # retrieval: (4/7 + 3/5) / 2 = 41/70
    assert report["groups"]["retrieval"]["score"] == pytest.approx(0.5857142857142857, **APPROX)
    # overall over 9 tasks, over 6300:
    # 4725 + 3360 + 2520 + 3600 + 3024 + 5700 + 3024 + 3600 + 3780 = 33333 -> 33333 / 56700
    assert report["overall"] == pytest.approx(0.5878835978835979, **APPROX)


def test_task_subset(xtreme_dirs: tuple) -> None:
    pred, gold = xtreme_dirs
    report = xr.score(pred, gold, "xtreme", tasks="bucc2018,pawsx")
    assert report["scored_tasks"] == ["pawsx", "bucc2018"]   # official order
    assert set(report["tasks"]) == {"pawsx", "bucc2018"}
    assert report["missing_tasks"] == [] and report["complete"] is False
    # (3/4 + 4/7) / 2 = 37/56
    assert report["overall"] == pytest.approx(0.6607142857142857, **APPROX)


def test_pred_folder_for_other_version_is_ignored(xtreme_dirs: tuple) -> None:
    pred, gold = xtreme_dirs  # has pawsx and bucc2018 too
    report = xr.score(pred, gold, "xtreme-r", tasks=["xnli"])
    assert report["scored_tasks"] == ["xnli"]
    assert "pawsx" not in report["tasks"]


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

def test_missing_language_file_names_the_path(tmp_path: Path) -> None:
    pred, gold = tmp_path / "p", tmp_path / "g"
    write_task(pred, gold, "xtreme-r", "xcopa")
    missing = pred / "xcopa" / "test-ht.jsonl"
    missing.unlink()
    with pytest.raises(xm.XtremeScoringError, match="missing prediction file") as info:
        xr.score(pred, gold, "xtreme-r", tasks=["xcopa"])
    assert str(missing) in str(info.value)
    missing_gold = gold / "xcopa" / "test-qu.jsonl"
    missing_gold.unlink()
    put(pred, "xcopa", "ht", "jsonl", XCOPA_PRED)
    with pytest.raises(xm.XtremeScoringError, match="missing label file") as info:
        xr.score(pred, gold, "xtreme-r", tasks=["xcopa"])
    assert str(missing_gold) in str(info.value)


def test_count_mismatch_names_both_files_and_counts(tmp_path: Path) -> None:
    pred, gold = tmp_path / "p", tmp_path / "g"
    write_task(pred, gold, "xtreme-r", "xnli")
    short = put(pred, "xnli", "de", "tsv", "entailment\nneutral\nneutral\n")
    with pytest.raises(xm.XtremeScoringError) as info:
        xr.score(pred, gold, "xtreme-r", tasks=["xnli"])
    message = str(info.value)
    assert str(short) in message and str(gold / "xnli" / "test-de.tsv") in message
    assert "3 examples" in message and "has 4" in message


def test_count_mismatch_in_tagging_and_qa(tmp_path: Path) -> None:
    pred, gold = tmp_path / "p", tmp_path / "g"
    write_task(pred, gold, "xtreme-r", "udpos")
    put(pred, "udpos", "en", "tsv", "DET\nNOUN\n")
    with pytest.raises(xm.XtremeScoringError, match=r"sentence 1 has 2 tags in .*test-en\.tsv"):
        xr.score(pred, gold, "xtreme-r", tasks=["udpos"])
    write_task(pred, gold, "xtreme-r", "udpos")
    put(pred, "udpos", "en", "tsv", POS_PRED + "\n" + POS_PRED)
    with pytest.raises(xm.XtremeScoringError, match="has 2 sentences but .* has 1"):
        xr.score(pred, gold, "xtreme-r", tasks=["udpos"])

    write_task(pred, gold, "xtreme-r", "tydiqa")
    put(pred, "tydiqa", "sw", "json", json.dumps({"q1": "x"}))
    with pytest.raises(xm.XtremeScoringError, match="has 1 questions but .* has 5"):
        xr.score(pred, gold, "xtreme-r", tasks=["tydiqa"])
    renamed = dict(SQUAD_PRED)
    renamed["other"] = renamed.pop("q3")
    put(pred, "tydiqa", "sw", "json", json.dumps(renamed))
    with pytest.raises(xm.XtremeScoringError, match="1 gold ids have no prediction .*'q3'"):
        xr.score(pred, gold, "xtreme-r", tasks=["tydiqa"])


def test_unknown_task_and_version_list_known_ones(tmp_path: Path) -> None:
    with pytest.raises(xm.XtremeScoringError, match="known versions: xtreme, xtreme-r"):
        xr.score(tmp_path, tmp_path, "xtreme-x")
    with pytest.raises(xm.XtremeScoringError) as info:
        xr.score(tmp_path, tmp_path, "xtreme-r", tasks=["xnli", "sst2"])
    assert "unknown task 'sst2'" in str(info.value)
    known = "xnli, xcopa, udpos, panx, xquad, mlqa, tydiqa, tatoeba, mewslix, lareqa"
    assert known in str(info.value)
    with pytest.raises(xm.XtremeScoringError,
                       match=r"'pawsx' for xtreme-r \(it belongs to xtreme\)"):
        xr.score(tmp_path, tmp_path, "xtreme-r", tasks=["pawsx"])


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    pred, gold = tmp_path / "p", tmp_path / "g"
    write_task(pred, gold, "xtreme-r", "mewslix")
    broken = put(pred, "mewslix", "ja", "json", '{"m1": ["Q1",')
    with pytest.raises(xm.XtremeScoringError, match="malformed JSON in") as info:
        xr.score(pred, gold, "xtreme-r", tasks=["mewslix"])
    assert str(broken) in str(info.value)

    write_task(pred, gold, "xtreme-r", "xcopa")
    bad_line = put(pred, "xcopa", "qu", "jsonl", '{"label": 0}\n{"label": 1\n{"label": 0}\n')
    with pytest.raises(xm.XtremeScoringError, match="line 2") as info:
        xr.score(pred, gold, "xtreme-r", tasks=["xcopa"])
    assert str(bad_line) in str(info.value)

    write_task(pred, gold, "xtreme-r", "mlqa")
    put(pred, "mlqa", "vi", "json", json.dumps(["not", "a", "dict"]))
    with pytest.raises(xm.XtremeScoringError, match="expected a JSON object mapping question id"):
        xr.score(pred, gold, "xtreme-r", tasks=["mlqa"])


def test_other_bad_inputs(tmp_path: Path) -> None:
    pred, gold = tmp_path / "p", tmp_path / "g"
    with pytest.raises(xm.XtremeScoringError, match="predictions folder does not exist"):
        xr.score(pred, gold, "xtreme-r")
    write_task(pred, gold, "xtreme-r", "mewslix")
    # Labels folder lacks a task the predictions have.
    write_task(pred, tmp_path / "elsewhere", "xtreme-r", "lareqa")
    with pytest.raises(xm.XtremeScoringError, match="no folder .*g/lareqa"):
        xr.score(pred, gold, "xtreme-r")
    # Mewsli-X gold must be a single entity.
    put(gold, "mewslix", "de", "json", json.dumps({"m1": ["Q1", "Q2"], "m2": ["Q5"], "m3": ["Q9"]}))
    with pytest.raises(xm.XtremeScoringError, match="exactly one gold entity"):
        xr.score(pred, gold, "xtreme-r", tasks=["mewslix"])
    # Nothing to score at all.
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(xm.XtremeScoringError, match="no task of xtreme-r found"):
        xr.score(empty, gold, "xtreme-r")
    # A blank line inside a one-label-per-line file.
    write_task(pred, gold, "xtreme-r", "tatoeba")
    put(pred, "tatoeba", "az", "tsv", "3\n\n4\n0\n2\n")
    with pytest.raises(xm.XtremeScoringError, match="test-az.tsv, line 2: blank line"):
        xr.score(pred, gold, "xtreme-r", tasks=["tatoeba"])


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "itt.metrics.xtreme_r", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_cli_prints_json_report(tmp_path: Path, xtreme_r_dirs_without_lareqa: tuple) -> None:
    pred, gold = xtreme_r_dirs_without_lareqa
    out = tmp_path / "report.json"
    proc = run_cli("--predictions", str(pred), "--labels", str(gold), "--version", "xtreme-r",
                   "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["overall"] == pytest.approx(0.5645149911816578, **APPROX)  # see above
    assert report["missing_tasks"] == ["lareqa"] and report["complete"] is False
    assert "WARNING" in proc.stderr and "lareqa" in proc.stderr
    assert json.loads(out.read_text()) == report

    proc = run_cli("--predictions", str(pred), "--labels", str(gold), "--version", "xtreme-r",
                   "--tasks", "mlqa", "--percent")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["tasks"]["mlqa"]["avg_metric"] == pytest.approx(90.47619047619048, **APPROX)


def test_cli_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    pred, gold = tmp_path / "p", tmp_path / "g"
    write_task(pred, gold, "xtreme-r", "xnli")
    (pred / "xnli" / "test-sw.tsv").unlink()
    proc = run_cli("--predictions", str(pred), "--labels", str(gold), "--tasks", "xnli")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ") and str(pred / "xnli" / "test-sw.tsv") in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = run_cli("--predictions", str(pred), "--labels", str(gold), "--version", "v3")
    assert proc.returncode == 2
    assert "known versions: xtreme, xtreme-r" in proc.stderr and "Traceback" not in proc.stderr


def test_module_imports_no_torch_or_seqeval() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    code = ("import sys, itt.metrics.xtreme_r; "
            "print(sorted(m for m in ('torch', 'seqeval', 'transformers') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------
# google-research/xtreme's own mock submission (tests/fixtures/xtreme_mock, see README)
# --------------------------------------------------------------------------------------

MOCK = Path(__file__).resolve().parent / "fixtures" / "xtreme_mock"


def _fill(task: str, folder: str, langs: str, source: str) -> Dict[tuple, str]:
    """Fill ``folder/task/test-<lang>`` for each of ``langs`` from ``source``."""
    return {(folder, task, lang): source.format(lang=lang) for lang in langs.split()}


# The index the fixture was copied from is deduplicated: a file identical to another stored
# file may be absent, and some mock files are. The fixture folder keeps only the stored files,
# byte for byte; the tests score a copy under tmp_path in which each absent file (key:
# folder, task, language) is filled with the stored file named (relative to MOCK):
#  * udpos, panx, tatoeba: the same language's file in the other folder, i.e. a perfect
#    prediction, which is the same bytes as its gold file. For udpos and panx all three
#    official averages then match bit for bit; no other stored file of the same shape, put in
#    place of a filled one, keeps them matching. Tatoeba's one absent prediction (it) must
#    have all 10 right for its average to match.
#  * xquad: the 5 absent predictions are en's (both answers right); the average needs all
#    five exactly right.
#  * xnli: the 14 absent labels are ar's; pawsx: the 6 absent labels are de's and the absent de
#    prediction is es's. These two tasks have one average each, which some other fills from
#    stored files match too: the match shows that this fill is consistent with the official
#    average, not that it is the original file.
MOCK_FILLS: Dict[tuple, str] = {
    **_fill("udpos", "labels", "en", "predictions/udpos/test-{lang}.tsv"),
    **_fill("udpos", "predictions", "tl", "labels/udpos/test-{lang}.tsv"),
    **_fill("panx", "labels", "bn en eu hi jv ms pt", "predictions/panx/test-{lang}.tsv"),
    **_fill("panx", "predictions", "af id vi", "labels/panx/test-{lang}.tsv"),
    **_fill("tatoeba", "predictions", "it", "labels/tatoeba/test-{lang}.tsv"),
    **_fill("xquad", "predictions", "ar de el hi ru", "predictions/xquad/test-en.json"),
    **_fill("xnli", "labels", "bg de el en es fr hi ru sw th tr ur vi zh",
            "labels/xnli/test-ar.tsv"),
    **_fill("pawsx", "labels", "en es fr ja ko zh", "labels/pawsx/test-de.tsv"),
    **_fill("pawsx", "predictions", "de", "predictions/pawsx/test-es.tsv"),
}


@pytest.fixture(scope="module")
def filled_mock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the mock submission with the files of MOCK_FILLS filled in."""
    root = tmp_path_factory.mktemp("xtreme-mock")
    for folder in ("labels", "predictions"):
        shutil.copytree(MOCK / folder, root / folder)
    for (folder, task, lang), source in MOCK_FILLS.items():
        target = root / folder / task / f"test-{lang}.{TASKS[task].extension}"
        assert not target.exists(), target   # only files the fixture lacks are filled
        shutil.copyfile(MOCK / source, target)
    return root


# Expected averages copied from google-research/xtreme evaluate_test.py at commit
# da430dd06cc7344ceb2e7cb030219656ebf0606a: all of TASK2AVG_SCORES (XTREME) and of
# XTREME_R_TASK2AVG_SCORES (XTREME-R). The official test compares them with assertEqual;
# so does this one.
OFFICIAL_XTREME = {
    "pawsx": {"avg_accuracy": 51.42857142857143},
    "xnli": {"avg_accuracy": 30.666666666666668},
    "panx": {"avg_f1": 57.50793650793652, "avg_precision": 54.729166666666664,
             "avg_recall": 62.750000000000014},
    "udpos": {"avg_f1": 70.21746048354693, "avg_precision": 71.02232625883823,
              "avg_recall": 69.54982073976082},
    "bucc2018": {"avg_f1": 55.0, "avg_precision": 55.0, "avg_recall": 55.0},
    "tatoeba": {"avg_accuracy": 53.611111111111114},
    "xquad": {"avg_exact_match": 77.27272727272727, "avg_f1": 79.9586776859504},
    "mlqa": {"avg_exact_match": 57.142857142857146, "avg_f1": 81.76870748299321},
    "tydiqa": {"avg_exact_match": 88.88888888888889, "avg_f1": 97.22222222222223},
}
OFFICIAL_XTREME_R = {
    "xnli": {"avg_accuracy": 30.666666666666668},
    "mewslix": {"avg_map@20": 14.39025156130419},
    "mlqa": {"avg_exact_match": 57.142857142857146, "avg_f1": 81.76870748299321},
    "tydiqa": {"avg_exact_match": 88.88888888888889, "avg_f1": 97.22222222222223},
}


def _averages(task_report: Dict) -> Dict[str, float]:
    return {k: v for k, v in task_report.items() if k.startswith("avg_") and k != "avg_metric"}


def test_mock_fixture_lacks_exactly_the_filled_files() -> None:
    absent = set()
    for version, expected in (("xtreme", OFFICIAL_XTREME), ("xtreme-r", OFFICIAL_XTREME_R)):
        for task in expected:
            ext = TASKS[task].extension
            for lang in task_languages(version, task):
                for folder in ("labels", "predictions"):
                    if not (MOCK / folder / task / f"test-{lang}.{ext}").is_file():
                        absent.add((folder, task, lang))
    assert absent == set(MOCK_FILLS)
    assert all((MOCK / source).is_file() for source in MOCK_FILLS.values())


@pytest.mark.parametrize("version,expected", [("xtreme", OFFICIAL_XTREME),
                                              ("xtreme-r", OFFICIAL_XTREME_R)])
def test_official_mock_averages_exactly(version: str, expected: Dict, filled_mock: Path) -> None:
    pred, gold = filled_mock / "predictions", filled_mock / "labels"
    report = xr.score(pred, gold, version, tasks=list(expected), percent=True)
    assert report["scored_tasks"] == [t for t in VERSIONS[version].tasks if t in expected]
    for task, averages in expected.items():
        assert _averages(report["tasks"][task]) == averages, task   # bit for bit
    # The default fraction scale is the same numbers over 100.
    fractions = xr.score(pred, gold, version, tasks=list(expected))
    for task, averages in expected.items():
        got = _averages(fractions["tasks"][task])
        assert got == pytest.approx({k: v / 100 for k, v in averages.items()}, abs=1e-12), task


def test_official_mock_tagging_under_seqeval_1_2(filled_mock: Path) -> None:
    # seqeval 1.2.x chunking (seqeval="1.2") on the same files. The UD-POS values are what
    # seqeval 1.2.2's own f1_score / precision_score / recall_score give, per language in the
    # official order, times 100 and averaged like evaluate_test.py. PAN-X tags chunk the
    # same under both releases, so its averages stay the official ones.
    report = xr.score(filled_mock / "predictions", filled_mock / "labels", "xtreme",
                      tasks=["udpos", "panx"], percent=True, seqeval="1.2")
    assert report["seqeval"] == "1.2"
    assert _averages(report["tasks"]["udpos"]) == {"avg_f1": 70.39805810699043,
                                                   "avg_precision": 71.21832908642001,
                                                   "avg_recall": 69.71397801088123}
    assert _averages(report["tasks"]["panx"]) == OFFICIAL_XTREME["panx"]


def test_official_mock_mewslix_per_language() -> None:
    # One mention per language; the gold entity's rank in the 20 predictions gives the
    # reciprocal rank (the official utils_mewslix.evaluate): ar 16, de 2, en 12, es 12,
    # fa 4, ja 14, pl 19, ro 6, ta 13, tr 8, uk 9 -> mean 0.1439025156130419.
    report = xr.score(MOCK / "predictions", MOCK / "labels", "xtreme-r", tasks="mewslix")
    ranks = {"ar": 16, "de": 2, "en": 12, "es": 12, "fa": 4, "ja": 14, "pl": 19, "ro": 6,
             "ta": 13, "tr": 8, "uk": 9}
    assert report["tasks"]["mewslix"]["map@20"] == {lang: 1 / r for lang, r in ranks.items()}
