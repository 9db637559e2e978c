"""XTREME-R / XTREME scorer: reads prediction and label folders, writes one JSON report.

Command line::

    python -m itt.metrics.xtreme_r --predictions DIR --labels DIR \\
        --version xtreme-r|xtreme [--tasks xnli,panx] [--languages de,en] [--percent] \\
        [--output FILE]

prints the report as JSON on stdout and exits 0; bad input prints ``error: <message>`` on
stderr and exits 2. The Python API is :func:`score`, :func:`write_predictions`,
:func:`write_labels` and the per-metric functions (:func:`accuracy`, :func:`seqeval_f1`,
:func:`squad_f1_em`, :func:`mlqa_f1_em`, :func:`map_at_k`, :func:`bucc_f1`), which work on
in-memory lists and return fractions in [0, 1].

Folder layout
=============

The official leaderboard layout, the same under the predictions and the labels folder::

    DIR/<task>/test-<lang>.<ext>

``<ext>`` is ``json`` for xquad, mlqa, tydiqa, mewslix and lareqa, ``jsonl`` for xcopa and
``tsv`` for every other task. The tasks and languages of each version are in
:mod:`itt.metrics.xtreme_tasks`. Files are UTF-8.

File formats
============

xnli, pawsx (``.tsv``)
    One label per line, in test-set order, for predictions and labels alike; compared as
    whitespace-stripped strings (``entailment`` and ``0`` are both fine, as long as the two
    files agree). Trailing blank lines are ignored; a blank line in between is an error.
xcopa (``.jsonl``)
    One JSON object per line with a ``label`` key (``{"label": 1}``), for predictions and
    labels; other keys are ignored; labels are compared as JSON values (``1 != "1"``).
udpos, panx (``.tsv``)
    One tag per line for each token, a blank line after each sentence (``B-PER``,
    ``I-PER``, ``O`` / ``NOUN``, ``VERB``). Several blank lines in a row count as one.
xquad, mlqa, tydiqa (``.json``)
    Predictions: one JSON object mapping each question id to the answer text,
    ``{"56be4db0acb8001400a502ec": "Denver Broncos", ...}``. Labels: a SQuAD v1.1 file,
    ``{"version": "1.1", "data": [{"title": .., "paragraphs": [{"context": .., "qas":
    [{"id": .., "question": .., "answers": [{"text": .., "answer_start": ..}]}]}]}]}``
    (a bare list of articles is accepted as well). A question with an empty ``answers``
    list is unanswerable (see below).
tatoeba (``.tsv``)
    One line per source sentence holding the index of the retrieved English sentence;
    the label file holds the gold index. Scored like classification (top-1 accuracy).
bucc2018 (``.tsv``)
    One pair per line, ``<source sentence id>\\t<English sentence id>`` (e.g.
    ``de-000413461\\ten-000091985``): predictions are the mined pairs, labels the gold
    pairs. The two files need not have the same number of lines.
mewslix, lareqa (``.json``)
    Predictions: ``{"<query id>": ["<candidate id>", ...]}``, candidates best first (only
    the first 20 count). Labels: ``{"<query id>": ["<relevant candidate id>", ...]}``;
    Mewsli-X has exactly one gold entity per mention (a singleton list, as in the
    official files), LAReQA one relevant answer sentence per language.

Every file except BUCC's must hold exactly as many examples (lines, sentences, questions,
queries) as its label file, and the dict-based files the same ids; anything else is an
:class:`XtremeScoringError` naming both files and both counts (the official script gives
missing QA / Mewsli-X predictions a score of 0; a missing prediction here is a bug to fix).

Metrics (as the official ``evaluate.py`` of google-research/xtreme computes them)
====================================================================================

* accuracy: xnli, pawsx, xcopa, tatoeba.
* seqeval F1 (micro, default mode): panx *and* udpos. POS tags carry no ``B-``/``I-``
  prefix, so seqeval reads the first character as the chunk tag and the rest as the type
  (``NOUN`` -> tag ``N``, type ``OUN``); a run of identical tags is one chunk. That is not
  token accuracy, but it is what the official scorer and the leaderboards report, so it
  is reproduced here exactly (seqeval 1.2.2's chunking, without importing seqeval).
* QA: per language, exact match and F1 as the SQuAD v1.1 script computes them (xquad,
  tydiqa; English normalisation for every language) or as the MLQA script does (mlqa;
  unicode punctuation, per-language articles for en/es/vi/de/ar, whitespace tokens, and
  for zh one token per CJK character). The maximum over the gold answers counts. The
  task score ``avg_metric`` is the mean of ``avg_f1`` and ``avg_exact_match``.
  Unanswerable questions (no gold answer), which the official scripts cannot score, are
  scored as SQuAD 2.0 does: 1 if the prediction normalises to the empty string, else 0.
* mAP@20: mewslix and lareqa. AP@k of one query is ``sum over the first k ranks r holding
  a not-yet-seen relevant candidate of (hits so far / r)``, divided by
  ``min(number relevant, k)`` (LAReQA's ``average_precision_at_k``); with Mewsli-X's single
  gold entity it equals the reciprocal rank within the top 20 (Mewsli-X's official MRR).
  A repeated candidate keeps its rank position but scores only once. Rankings are given
  as ordered lists, so a file has no ties; :func:`rank_by_score` turns scores into such a
  list and breaks ties by input order (earlier first), which the official code leaves to
  numpy's unstable ``argsort``.
* BUCC: precision, recall and F1 over the set of (source, target) pairs, 0 when no pair
  is right.

Each task's ``avg_<metric>`` is the unweighted mean over its official languages, and its
``avg_metric`` is ``avg_accuracy`` / ``avg_f1`` / mean of F1 and EM / ``avg_map@20``. A
group's score is the mean of its tasks' ``avg_metric``, and ``overall`` is the mean of
``avg_metric`` over all tasks (``all_task`` in the official scorer), not over groups.

Report
======

::

    {"version": "xtreme-r", "scale": "fraction",
     "tasks": {"xnli": {"status": "scored", "group": "classification",
                        "main_metric": "accuracy", "languages": [...],
                        "accuracy": {"ar": 0.71, ...}, "avg_accuracy": 0.74,
                        "avg_metric": 0.74, "n": {"ar": 5010, ...}},
               "mlqa": {"status": "scored", ..., "f1": {..}, "exact_match": {..},
                        "avg_f1": .., "avg_exact_match": .., "avg_metric": ..},
               "lareqa": {"status": "missing", "group": "retrieval", "reason": "..."}},
     "groups": {"classification": {"name": "Classification", "tasks": [..], "score": ..,
                                   "scored": [..], "missing": [..], "complete": true}},
     "overall": 0.61, "complete": false, "scored_tasks": [..], "missing_tasks": ["lareqa"],
     "warnings": ["..."]}

Values are fractions in [0, 1] (the project's convention); ``--percent`` / ``percent=True``
gives the official 0-100 scale. A task whose folder is absent from the predictions is
reported as ``missing``, left out of its group and of the overall score, and the report is
flagged ``"complete": false`` with a warning; only tasks of the chosen version count.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import string
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path
from typing import (
    Any, Callable, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union,
)

from itt.metrics.xtreme_tasks import (
    FORMAT_INDEX_LINES, FORMAT_LABEL_LINES, FORMAT_PAIR_LINES, FORMAT_QA_PREDICTIONS,
    FORMAT_RANKED_IDS, FORMAT_RELEVANT_IDS, FORMAT_SQUAD, FORMAT_TAG_LINES, FORMAT_XCOPA_JSONL,
    SCORER_ACCURACY, SCORER_BUCC, SCORER_MAP_AT_20, SCORER_MLQA, SCORER_SEQEVAL, SCORER_SQUAD,
    TASKS, VERSIONS, BenchmarkVersion, XtremeTask,
)

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

MAP_K = 20
"""Cut-off of mAP@k for Mewsli-X and LAReQA."""

MLQA_LANGUAGES: Tuple[str, ...] = ("en", "es", "hi", "vi", "de", "ar", "zh")
"""Languages the MLQA normalisation knows (the official script rejects any other)."""


class XtremeScoringError(ValueError):
    """Bad scorer input: a missing or malformed file, mismatched counts, an unknown name."""


# --------------------------------------------------------------------------------------
# Classification / Tatoeba
# --------------------------------------------------------------------------------------

def accuracy(labels: Sequence[Any], predictions: Sequence[Any]) -> float:
    """Fraction of positions where the prediction equals the label (``==``)."""
    _check_same_length(labels, predictions, "labels", "predictions")
    if not labels:
        raise XtremeScoringError("accuracy of an empty list is undefined")
    correct = sum(1 for gold, pred in zip(labels, predictions) if gold == pred)
    return correct / len(labels)


# --------------------------------------------------------------------------------------
# Sequence labelling: seqeval's default (conlleval-like) chunking, micro-averaged
# --------------------------------------------------------------------------------------

def _split_tag(tag: str) -> Tuple[str, str]:
    # seqeval 1.2.2, prefix mode: the first character is the chunk tag, the type is what
    # follows the first '-' after it (or the rest, or '_' when nothing is left).
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def seqeval_entities(sentences: Sequence[Sequence[str]]) -> List[Tuple[str, int, int]]:
    """Chunks ``(type, first, last)`` as seqeval finds them; sentences are joined with "O".

    Offsets index the concatenation of the sentences with one ``O`` after each, exactly
    as ``seqeval.metrics.sequence_labeling.get_entities`` does for nested lists.
    """
    flat: List[str] = []
    for sentence in sentences:
        flat.extend(sentence)
        flat.append("O")
    chunks: List[Tuple[str, int, int]] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, label in enumerate(flat + ["O"]):
        if not label:
            raise XtremeScoringError(f"empty tag at flattened position {i}")
        tag, type_ = _split_tag(label)
        if _chunk_ends(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def seqeval_prf(labels: Sequence[Sequence[str]],
                predictions: Sequence[Sequence[str]]) -> Dict[str, float]:
    """Micro precision, recall and F1 over chunks, as ``seqeval.metrics`` returns them.

    ``labels`` and ``predictions`` are lists of sentences, each a list of tags, with the
    same number of sentences and of tags per sentence. A zero division gives 0.
    """
    _check_same_length(labels, predictions, "label sentences", "predicted sentences")
    for i, (gold, pred) in enumerate(zip(labels, predictions)):
        if len(gold) != len(pred):
            raise XtremeScoringError(
                f"sentence {i + 1} has {len(gold)} gold tags but {len(pred)} predicted tags")
    gold_chunks = set(seqeval_entities(labels))
    pred_chunks = set(seqeval_entities(predictions))
    correct = len(gold_chunks & pred_chunks)
    precision = correct / len(pred_chunks) if pred_chunks else 0.0
    recall = correct / len(gold_chunks) if gold_chunks else 0.0
    denom = precision + recall
    f1 = 2 * precision * recall / denom if denom else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def seqeval_f1(labels: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]) -> float:
    """seqeval's micro chunk F1 (``seqeval.metrics.f1_score`` with its defaults)."""
    return seqeval_prf(labels, predictions)["f1"]


# --------------------------------------------------------------------------------------
# Question answering
# --------------------------------------------------------------------------------------

_SQUAD_PUNCT = frozenset(string.punctuation)
_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")

_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    # Arabic: the official pattern is r"\sال^|ال"; its first branch can never match, so
    # every occurrence of the definite article "ال" (anywhere in a word) becomes a space.
    "ar": re.compile("ال"),
}
_MLQA_CJK = re.compile("[\u4e00-\u9fa5]")


def _is_mlqa_punct(char: str) -> bool:
    return char in _SQUAD_PUNCT or unicodedata.category(char).startswith("P")


def normalize_squad_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower-case; drop ASCII punctuation, English articles, spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_PUNCT)
    text = _SQUAD_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _mlqa_tokens(text: str, lang: str) -> List[str]:
    if lang != "zh":
        return text.split()
    # Mixed segmentation: each CJK character (and punctuation mark) is a token of its own,
    # other runs are split on whitespace.
    tokens: List[str] = []
    pending = ""
    for char in text:
        if _MLQA_CJK.match(char) or _is_mlqa_punct(char):
            tokens.extend(pending.split())
            pending = ""
            tokens.append(char)
        else:
            pending += char
    tokens.extend(pending.split())
    return tokens


def normalize_mlqa_answer(text: str, lang: str) -> str:
    """MLQA normalisation for ``lang``: lower-case; drop unicode punctuation, articles; tokenise."""
    _check_mlqa_language(lang)
    text = "".join(ch for ch in text.lower() if not _is_mlqa_punct(ch))
    articles = _MLQA_ARTICLES.get(lang)
    if articles is not None:
        text = articles.sub(" ", text)
    return " ".join(tok for tok in _mlqa_tokens(text, lang) if tok.strip())


def _check_mlqa_language(lang: str) -> None:
    if lang not in MLQA_LANGUAGES:
        raise XtremeScoringError(f"MLQA normalisation has no rules for language {lang!r}; "
                                 f"known: {', '.join(MLQA_LANGUAGES)}")


def _token_f1(pred_tokens: Sequence[str], gold_tokens: Sequence[str]) -> float:
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _qa_example_scores(gold_answers: Sequence[str], prediction: str,
                       normalize: Callable[[str], str]) -> Tuple[float, float]:
    """(exact match, F1) of one prediction against its gold answers."""
    norm_pred = normalize(prediction)
    if not gold_answers:
        # Unanswerable: right only when the prediction abstains (SQuAD 2.0's rule).
        abstains = float(norm_pred.split() == [])
        return abstains, abstains
    exact = max(float(norm_pred == normalize(gold)) for gold in gold_answers)
    f1 = max(_token_f1(norm_pred.split(), normalize(gold).split()) for gold in gold_answers)
    return exact, f1


def _qa_scores(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
               normalize: Callable[[str], str]) -> Dict[str, float]:
    if not gold:
        raise XtremeScoringError("QA scores of an empty gold set are undefined")
    exact_sum = f1_sum = 0.0
    unanswered = 0
    for qid, answers in gold.items():
        if qid not in predictions:
            unanswered += 1
            continue
        exact, f1 = _qa_example_scores(list(answers), predictions[qid], normalize)
        exact_sum += exact
        f1_sum += f1
    if unanswered:
        log.warning("%d of %d questions have no prediction and score 0", unanswered, len(gold))
    return {"f1": f1_sum / len(gold), "exact_match": exact_sum / len(gold)}


def squad_f1_em(gold: Mapping[str, Sequence[str]],
                predictions: Mapping[str, str]) -> Dict[str, float]:
    """SQuAD v1.1 ``{"f1", "exact_match"}``, each the mean over the gold questions.

    ``gold`` maps question id -> gold answer texts (``[]`` = unanswerable);
    ``predictions`` maps question id -> answer text. A question without a prediction
    scores 0 (as in the official script); predictions for unknown ids are ignored.
    Use :func:`squad_answers` to get ``gold`` from a SQuAD-format dataset.
    """
    return _qa_scores(gold, predictions, normalize_squad_answer)


def mlqa_f1_em(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
               lang: str) -> Dict[str, float]:
    """Like :func:`squad_f1_em` with MLQA's normalisation for the answer language ``lang``."""
    _check_mlqa_language(lang)
    return _qa_scores(gold, predictions, lambda text: normalize_mlqa_answer(text, lang))


def squad_answers(dataset: Any, source: str = "dataset") -> Dict[str, List[str]]:
    """Question id -> gold answer texts, from a SQuAD-format dataset (dict or article list)."""
    articles = dataset.get("data") if isinstance(dataset, Mapping) else dataset
    if not isinstance(articles, list):
        raise XtremeScoringError(f"{source}: expected a SQuAD-format JSON object with a "
                                 f"'data' list (or a list of articles)")
    gold: Dict[str, List[str]] = {}
    try:
        for article in articles:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    qid = str(qa["id"])
                    if qid in gold:
                        raise XtremeScoringError(f"{source}: question id {qid!r} occurs twice")
                    texts = [answer["text"] for answer in qa.get("answers", [])]
                    if not all(isinstance(t, str) for t in texts):
                        raise XtremeScoringError(f"{source}: question {qid!r} has a non-string "
                                                 f"answer text")
                    gold[qid] = texts
    except (KeyError, TypeError) as exc:
        raise XtremeScoringError(
            f"{source}: not a SQuAD-format dataset (articles -> paragraphs -> qas -> id, "
            f"answers[].text); failed at {exc!r}") from None
    return gold


# --------------------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------------------

def rank_by_score(scores: Union[Mapping[str, float], Sequence[Tuple[str, float]]]) -> List[str]:
    """Candidate ids by descending score; equal scores keep their input order (stable)."""
    items = list(scores.items()) if isinstance(scores, Mapping) else list(scores)
    return [cid for cid, _ in sorted(items, key=lambda item: -item[1])]


def average_precision_at_k(relevant: Collection[str], ranked: Sequence[str],
                           k: int = MAP_K) -> float:
    """AP@k of one query (LAReQA's definition; see the module docstring)."""
    if not relevant:
        raise XtremeScoringError("average precision needs at least one relevant candidate")
    if k < 1:
        raise XtremeScoringError(f"k must be positive, got {k}")
    relevant = set(relevant)
    seen: set = set()
    hits = 0
    total = 0.0
    for rank, cand in enumerate(ranked[:k], start=1):
        if cand in relevant and cand not in seen:
            hits += 1
            total += hits / rank
        seen.add(cand)
    return total / min(len(relevant), k)


def map_at_k(relevant: Sequence[Collection[str]], ranked: Sequence[Sequence[str]],
             k: int = MAP_K) -> float:
    """Mean AP@k over queries; ``relevant[i]`` and ``ranked[i]`` belong to query ``i``."""
    _check_same_length(relevant, ranked, "relevant sets", "rankings")
    if not relevant:
        raise XtremeScoringError("mAP of an empty query list is undefined")
    return sum(average_precision_at_k(rel, rank, k)
               for rel, rank in zip(relevant, ranked)) / len(relevant)


def _as_pair(pair: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    return tuple(pair.split("\t")) if isinstance(pair, str) else tuple(str(p) for p in pair)


def bucc_f1(gold_pairs: Iterable[Union[str, Sequence[str]]],
            predicted_pairs: Iterable[Union[str, Sequence[str]]]) -> Dict[str, float]:
    """BUCC ``{"f1", "precision", "recall"}`` over sets of (source id, target id) pairs.

    A pair is a ``(src, trg)`` sequence or a ``"src\\ttrg"`` string; duplicates count once.
    """
    gold = {_as_pair(p) for p in gold_pairs}
    pred = {_as_pair(p) for p in predicted_pairs}
    correct = len(gold & pred)
    if correct == 0:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    precision = correct / len(pred)
    recall = correct / len(gold)
    return {"f1": 2 * precision * recall / (precision + recall),
            "precision": precision, "recall": recall}


def _check_same_length(a: Sequence[Any], b: Sequence[Any], name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise XtremeScoringError(f"{len(a)} {name_a} but {len(b)} {name_b}")


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------

def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise XtremeScoringError(f"missing file: {path}") from None
    except UnicodeDecodeError as exc:
        raise XtremeScoringError(f"{path} is not valid UTF-8: {exc}") from None
    except OSError as exc:
        raise XtremeScoringError(f"cannot read {path}: {exc}") from None


def _lines(path: Path) -> List[str]:
    lines = [line.strip() for line in _read_text(path).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _read_label_lines(path: Path) -> List[str]:
    lines = _lines(path)
    for number, line in enumerate(lines, start=1):
        if not line:
            raise XtremeScoringError(f"{path}, line {number}: blank line; expected one "
                                     f"label per line")
    return lines


def _read_tag_lines(path: Path) -> List[List[str]]:
    sentences: List[List[str]] = []
    current: List[str] = []
    for line in _lines(path):
        if line:
            current.append(line)
        elif current:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise XtremeScoringError(f"malformed JSON in {path}: {exc}") from None


def _read_xcopa_jsonl(path: Path) -> List[Any]:
    labels = []
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise XtremeScoringError(f"malformed JSON in {path}, line {number}: {exc}") from None
        if not isinstance(row, Mapping) or "label" not in row:
            raise XtremeScoringError(f"{path}, line {number}: expected an object with a "
                                     f"'label' key, got {line.strip()[:80]!r}")
        labels.append(row["label"])
    return labels


def _read_qa_predictions(path: Path) -> Dict[str, str]:
    data = _read_json(path)
    if not isinstance(data, Mapping):
        raise XtremeScoringError(f"{path}: expected a JSON object mapping question id -> "
                                 f"answer text, got {type(data).__name__}")
    for qid, answer in data.items():
        if not isinstance(answer, str):
            raise XtremeScoringError(f"{path}: the answer of question {qid!r} is "
                                     f"{type(answer).__name__}, not a string")
    return dict(data)


def _read_id_lists(path: Path) -> Dict[str, List[str]]:
    data = _read_json(path)
    if not isinstance(data, Mapping):
        raise XtremeScoringError(f"{path}: expected a JSON object mapping query id -> list "
                                 f"of candidate ids, got {type(data).__name__}")
    out: Dict[str, List[str]] = {}
    for qid, ids in data.items():
        if not isinstance(ids, list) or not all(isinstance(i, (str, int)) for i in ids):
            raise XtremeScoringError(f"{path}: the value of {qid!r} must be a list of "
                                     f"candidate ids (strings or integers)")
        out[qid] = [str(i).strip() for i in ids]
    return out


def _read_pair_lines(path: Path) -> List[Tuple[str, ...]]:
    pairs = []
    for number, line in enumerate(_lines(path), start=1):
        if not line:
            continue
        fields = tuple(line.split("\t"))
        if len(fields) != 2:
            raise XtremeScoringError(f"{path}, line {number}: expected '<source id>\\t"
                                     f"<target id>', got {line[:80]!r}")
        pairs.append(fields)
    return pairs


_READERS: Dict[str, Callable[[Path], Any]] = {
    FORMAT_LABEL_LINES: _read_label_lines,
    FORMAT_INDEX_LINES: _read_label_lines,
    FORMAT_TAG_LINES: _read_tag_lines,
    FORMAT_XCOPA_JSONL: _read_xcopa_jsonl,
    FORMAT_QA_PREDICTIONS: _read_qa_predictions,
    FORMAT_SQUAD: lambda path: squad_answers(_read_json(path), source=str(path)),
    FORMAT_RANKED_IDS: _read_id_lists,
    FORMAT_RELEVANT_IDS: _read_id_lists,
    FORMAT_PAIR_LINES: _read_pair_lines,
}


# --------------------------------------------------------------------------------------
# Writing files
# --------------------------------------------------------------------------------------

def _task(name: str) -> XtremeTask:
    if name not in TASKS:
        raise XtremeScoringError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_file(root: PathLike, task: str, lang: str) -> Path:
    """``root/<task>/test-<lang>.<ext>``, the official location of one language's file."""
    spec = _task(task)
    if not lang or any(sep in lang for sep in ("/", "\\", os.sep)) or lang.startswith("."):
        raise XtremeScoringError(f"invalid language code {lang!r}")
    return Path(root) / task / f"test-{lang}.{spec.extension}"


def _line_item(value: Any, what: str) -> str:
    text = str(value)
    if not text.strip() or "\n" in text or "\r" in text:
        raise XtremeScoringError(f"{what} {value!r} cannot be written as one line")
    return text.strip()


def _render_label_lines(items: Any, what: str) -> str:
    return "".join(_line_item(item, what) + "\n" for item in items)


def _render_tag_lines(sentences: Any) -> str:
    blocks = []
    for number, sentence in enumerate(sentences, start=1):
        tags = [_line_item(tag, "tag") for tag in sentence]
        if not tags:
            raise XtremeScoringError(f"sentence {number} has no tags; an empty sentence "
                                     f"cannot be written in the one-tag-per-line format")
        blocks.append("\n".join(tags) + "\n")
    return "\n".join(blocks)


def _render_xcopa(items: Any) -> str:
    rows = []
    for item in items:
        row = dict(item) if isinstance(item, Mapping) else {"label": item}
        if "label" not in row:
            raise XtremeScoringError(f"XCOPA row {item!r} has no 'label'")
        rows.append(json.dumps(row, ensure_ascii=False) + "\n")
    return "".join(rows)


def _render_pairs(pairs: Any) -> str:
    lines = []
    for pair in pairs:
        fields = _as_pair(pair)
        if len(fields) != 2 or not all(f.strip() for f in fields):
            raise XtremeScoringError(f"BUCC pair {pair!r} is not (source id, target id)")
        lines.append("\t".join(_line_item(f, "id") for f in fields) + "\n")
    return "".join(lines)


def _render_qa_predictions(predictions: Any) -> str:
    if not isinstance(predictions, Mapping):
        raise XtremeScoringError("QA predictions must be a mapping question id -> answer text")
    out = {}
    for qid, answer in predictions.items():
        if not isinstance(answer, str):
            raise XtremeScoringError(f"the answer of question {qid!r} is "
                                     f"{type(answer).__name__}, not a string")
        out[str(qid)] = answer
    return json.dumps(out, ensure_ascii=False, indent=1) + "\n"


def _render_squad(labels: Any) -> str:
    is_dataset = isinstance(labels, Mapping) and isinstance(labels.get("data"), list)
    if isinstance(labels, list) or is_dataset:
        squad_answers(labels)  # validate
        dataset = labels if isinstance(labels, Mapping) else {"version": "1.1", "data": labels}
        return json.dumps(dataset, ensure_ascii=False) + "\n"
    if not isinstance(labels, Mapping):
        raise XtremeScoringError("QA labels must be a SQuAD-format dataset or a mapping "
                                 "question id -> list of answer texts")
    qas = []
    for qid, answers in labels.items():
        if isinstance(answers, str):
            answers = [answers]
        texts = [a["text"] if isinstance(a, Mapping) else a for a in answers]
        if not all(isinstance(t, str) for t in texts):
            raise XtremeScoringError(f"question {qid!r}: answers must be strings or "
                                     f"{{'text': ...}} objects")
        qas.append({"id": str(qid), "question": "",
                    "answers": [{"text": t, "answer_start": -1} for t in texts]})
    dataset = {"version": "1.1",
               "data": [{"title": "", "paragraphs": [{"context": "", "qas": qas}]}]}
    return json.dumps(dataset, ensure_ascii=False) + "\n"


def _render_id_lists(mapping: Any, what: str) -> str:
    if not isinstance(mapping, Mapping):
        raise XtremeScoringError(f"{what} must be a mapping query id -> list of candidate ids")
    out = {}
    for qid, ids in mapping.items():
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise XtremeScoringError(f"{what} of {qid!r} must be a list of candidate ids")
        out[str(qid)] = [str(i) for i in ids]
    return json.dumps(out, ensure_ascii=False) + "\n"


def _render(fmt: str, data: Any) -> str:
    if fmt == FORMAT_LABEL_LINES:
        return _render_label_lines(data, "label")
    if fmt == FORMAT_INDEX_LINES:
        return _render_label_lines(data, "index")
    if fmt == FORMAT_TAG_LINES:
        return _render_tag_lines(data)
    if fmt == FORMAT_XCOPA_JSONL:
        return _render_xcopa(data)
    if fmt == FORMAT_PAIR_LINES:
        return _render_pairs(data)
    if fmt == FORMAT_QA_PREDICTIONS:
        return _render_qa_predictions(data)
    if fmt == FORMAT_SQUAD:
        return _render_squad(data)
    if fmt == FORMAT_RANKED_IDS:
        return _render_id_lists(data, "ranking")
    if fmt == FORMAT_RELEVANT_IDS:
        return _render_id_lists(data, "relevant set")
    raise AssertionError(f"no writer for format {fmt!r}")


def _write_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_predictions(out_dir: PathLike, task: str, lang: str, predictions: Any) -> Path:
    """Write one language's predictions to ``out_dir/<task>/test-<lang>.<ext>``.

    ``predictions`` by task: xnli/pawsx a list of labels; xcopa a list of chosen
    alternatives (ints); udpos/panx a list of sentences, each a list of tags;
    xquad/mlqa/tydiqa a mapping question id -> answer text; tatoeba a list of retrieved
    target indices; bucc2018 a list of (source id, target id) pairs; mewslix/lareqa a
    mapping query id -> candidate ids, best first. Returns the path written.
    """
    spec = _task(task)
    path = task_file(out_dir, task, lang)
    return _write_atomic(path, _render(spec.prediction_format, predictions))


def write_labels(out_dir: PathLike, task: str, lang: str, labels: Any) -> Path:
    """Write one language's gold labels to ``out_dir/<task>/test-<lang>.<ext>``.

    Same shapes as :func:`write_predictions`, except: xquad/mlqa/tydiqa take a
    SQuAD-format dataset or a mapping question id -> list of gold answer texts (``[]`` for
    unanswerable); bucc2018 the gold pairs; mewslix/lareqa a mapping query id -> relevant
    candidate ids (one for Mewsli-X). Returns the path written.
    """
    spec = _task(task)
    path = task_file(out_dir, task, lang)
    return _write_atomic(path, _render(spec.label_format, labels))


# --------------------------------------------------------------------------------------
# Scoring folders
# --------------------------------------------------------------------------------------

def _count_mismatch(task: str, pred_path: Path, gold_path: Path, n_pred: int, n_gold: int,
                    unit: str) -> XtremeScoringError:
    return XtremeScoringError(f"{task}: {pred_path} has {n_pred} {unit} but {gold_path} has "
                              f"{n_gold}; predictions must cover every test example in order")


def _check_same_ids(task: str, pred_path: Path, gold_path: Path, pred: Mapping[str, Any],
                    gold: Mapping[str, Any], unit: str) -> None:
    if len(pred) != len(gold):
        raise _count_mismatch(task, pred_path, gold_path, len(pred), len(gold), unit)
    missing = [qid for qid in gold if qid not in pred]
    if missing:
        shown = ", ".join(repr(q) for q in missing[:5])
        raise XtremeScoringError(f"{task}: {pred_path} and {gold_path} both have {len(gold)} "
                                 f"{unit}, but {len(missing)} gold ids have no prediction "
                                 f"(e.g. {shown})")


def _score_language(spec: XtremeTask, lang: str, pred_path: Path,
                    gold_path: Path) -> Tuple[Dict[str, float], int]:
    """Metrics (fractions) and the number of gold examples of one language file pair."""
    gold = _READERS[spec.label_format](gold_path)
    pred = _READERS[spec.prediction_format](pred_path)
    name = spec.name
    if spec.scorer == SCORER_BUCC:
        if not gold:
            raise XtremeScoringError(f"{name}: {gold_path} holds no gold pairs")
        return bucc_f1(gold, pred), len(gold)
    if spec.scorer in (SCORER_SQUAD, SCORER_MLQA, SCORER_MAP_AT_20):
        unit = "questions" if spec.scorer != SCORER_MAP_AT_20 else "queries"
        if not gold:
            raise XtremeScoringError(f"{name}: {gold_path} holds no {unit}")
        _check_same_ids(name, pred_path, gold_path, pred, gold, unit)
        if spec.scorer == SCORER_SQUAD:
            return squad_f1_em(gold, pred), len(gold)
        if spec.scorer == SCORER_MLQA:
            return mlqa_f1_em(gold, pred, lang), len(gold)
        for qid, rel in gold.items():
            if not rel:
                raise XtremeScoringError(f"{name}: {gold_path}: query {qid!r} has no relevant "
                                         f"candidate")
            if name == "mewslix" and len(rel) != 1:
                raise XtremeScoringError(f"{name}: {gold_path}: mention {qid!r} must have "
                                         f"exactly one gold entity, has {len(rel)}")
        ids = list(gold)
        value = map_at_k([gold[q] for q in ids], [pred[q] for q in ids], MAP_K)
        return {f"map@{MAP_K}": value}, len(gold)
    unit = "sentences" if spec.scorer == SCORER_SEQEVAL else "examples"
    if len(pred) != len(gold):
        raise _count_mismatch(name, pred_path, gold_path, len(pred), len(gold), unit)
    if not gold:
        raise XtremeScoringError(f"{name}: {gold_path} holds no {unit}")
    if spec.scorer == SCORER_SEQEVAL:
        for i, (gold_sent, pred_sent) in enumerate(zip(gold, pred), start=1):
            if len(gold_sent) != len(pred_sent):
                raise XtremeScoringError(
                    f"{name}: sentence {i} has {len(pred_sent)} tags in {pred_path} but "
                    f"{len(gold_sent)} in {gold_path}")
        return seqeval_prf(gold, pred), len(gold)
    assert spec.scorer == SCORER_ACCURACY, spec.scorer
    return {"accuracy": accuracy(gold, pred)}, len(gold)


def _score_task(version: BenchmarkVersion, spec: XtremeTask, pred_root: Path,
                label_root: Path, only: Optional[Collection[str]] = None) -> Dict[str, Any]:
    languages = version.languages[spec.name]
    if only is not None:
        languages = tuple(lang for lang in languages if lang in only)
        if not languages:
            raise XtremeScoringError(f"{spec.name}: none of the requested languages "
                                     f"{', '.join(sorted(only))} is a language of the task; its "
                                     f"languages: {', '.join(version.languages[spec.name])}")
    label_task_dir = label_root / spec.name
    if not label_task_dir.is_dir():
        raise XtremeScoringError(f"{spec.name}: predictions are present but the labels are "
                                 f"not: no folder {label_task_dir}")
    per_metric: Dict[str, Dict[str, float]] = {m: {} for m in spec.metrics}
    counts: Dict[str, int] = {}
    for lang in languages:
        pred_path = task_file(pred_root, spec.name, lang)
        gold_path = task_file(label_root, spec.name, lang)
        for path, kind in ((pred_path, "prediction"), (gold_path, "label")):
            if not path.is_file():
                raise XtremeScoringError(f"{spec.name}: missing {kind} file for language "
                                         f"{lang!r}: {path}")
        values, n = _score_language(spec, lang, pred_path, gold_path)
        for metric in spec.metrics:
            per_metric[metric][lang] = values[metric]
        counts[lang] = n
    result: Dict[str, Any] = {
        "status": "scored",
        "display_name": spec.display_name,
        "group": version.group_of(spec.name).key,
        "type": spec.task_type,
        "main_metric": spec.main_metric,
        "languages": list(languages),
    }
    for metric in spec.metrics:
        result[metric] = per_metric[metric]
    for metric in spec.metrics:
        values = list(per_metric[metric].values())
        result[f"avg_{metric}"] = sum(values) / len(values)
    if spec.main_metric == "f1_em_mean":
        result["avg_metric"] = (result["avg_f1"] + result["avg_exact_match"]) / 2
    else:
        result["avg_metric"] = result[f"avg_{spec.main_metric}"]
    result["n"] = counts
    return result


def _scale_task(result: Dict[str, Any], spec: XtremeTask, factor: float) -> None:
    for metric in spec.metrics:
        result[metric] = {lang: v * factor for lang, v in result[metric].items()}
        result[f"avg_{metric}"] *= factor
    result["avg_metric"] *= factor


def _resolve_tasks(version: BenchmarkVersion, tasks: Optional[Iterable[str]]) -> List[str]:
    if tasks is None:
        return list(version.tasks)
    if isinstance(tasks, str):
        tasks = tasks.split(",")
    requested = [t.strip() for t in tasks if t.strip()]
    if not requested:
        raise XtremeScoringError(f"no task given; tasks of {version.name}: "
                                 f"{', '.join(version.tasks)}")
    for task in requested:
        if task not in version.languages:
            owners = [v for v in VERSIONS if task in VERSIONS[v].languages]
            where = f" (it belongs to {', '.join(owners)})" if owners else ""
            raise XtremeScoringError(f"unknown task {task!r} for {version.name}{where}; tasks "
                                     f"of {version.name}: {', '.join(version.tasks)}")
    # Official order, duplicates dropped.
    return [t for t in version.tasks if t in set(requested)]


def _resolve_languages(languages: Optional[Iterable[str]]) -> Optional[frozenset]:
    """``None`` (every official language) or the set of languages to score."""
    if languages is None:
        return None
    if isinstance(languages, str):
        languages = languages.split(",")
    chosen = frozenset(lang.strip() for lang in languages if lang.strip())
    if not chosen:
        raise XtremeScoringError("--languages is empty; give a comma-separated list or leave it out")
    return chosen


def _mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def score(pred_dir: PathLike, label_dir: PathLike, version: str = "xtreme-r",
          tasks: Optional[Iterable[str]] = None, percent: bool = False,
          languages: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """Score a predictions folder against a labels folder; returns the report dict.

    ``tasks`` (names, or one comma-separated string) limits scoring to those tasks of
    ``version``; the default is all of them. A requested task without a folder under
    ``pred_dir`` is reported as missing and the report is flagged incomplete; a missing
    language file, a count mismatch or a malformed file raises
    :class:`XtremeScoringError`. Values are fractions unless ``percent``.
    """
    if version not in VERSIONS:
        raise XtremeScoringError(f"unknown XTREME version {version!r}; known versions: "
                                 f"{', '.join(VERSIONS)}")
    spec_version = VERSIONS[version]
    pred_root, label_root = Path(pred_dir), Path(label_dir)
    for root, kind in ((pred_root, "predictions"), (label_root, "labels")):
        if not root.is_dir():
            raise XtremeScoringError(f"{kind} folder does not exist: {root}")
    requested = _resolve_tasks(spec_version, tasks)
    only = _resolve_languages(languages)

    ignored = sorted(p.name for p in pred_root.iterdir()
                     if p.is_dir() and p.name not in requested and not p.name.startswith("."))
    if ignored:
        log.info("ignoring prediction folders not scored for %s: %s", version, ", ".join(ignored))

    warnings: List[str] = []
    task_results: Dict[str, Dict[str, Any]] = {}
    for name in requested:
        spec = TASKS[name]
        if not (pred_root / name).is_dir():
            reason = f"no predictions folder {pred_root / name}"
            task_results[name] = {"status": "missing", "display_name": spec.display_name,
                                  "group": spec_version.group_of(name).key, "reason": reason}
            warnings.append(f"task {name} is missing ({reason}); it is excluded from its group "
                            f"and from the overall score")
            continue
        task_results[name] = _score_task(spec_version, spec, pred_root, label_root, only)
        if only is not None and len(task_results[name]["languages"]) < len(spec_version.languages[name]):
            task_results[name]["languages_restricted"] = True
            warnings.append(f"task {name} is scored on {len(task_results[name]['languages'])} of its "
                            f"{len(spec_version.languages[name])} languages (--languages); its averages "
                            f"are not comparable with official scores")

    scored = [t for t in requested if task_results[t]["status"] == "scored"]
    missing = [t for t in requested if task_results[t]["status"] == "missing"]
    if not scored:
        raise XtremeScoringError(
            f"no task of {version} found under {pred_root}; expected sub-folders named "
            f"{', '.join(requested)}")

    factor = 100.0 if percent else 1.0
    if percent:
        for name in scored:
            _scale_task(task_results[name], TASKS[name], factor)

    groups: Dict[str, Dict[str, Any]] = {}
    for group in spec_version.groups:
        group_scored = [t for t in group.tasks if t in scored]
        groups[group.key] = {
            "name": group.display_name,
            "tasks": list(group.tasks),
            "score": _mean([task_results[t]["avg_metric"] for t in group_scored]),
            "scored": group_scored,
            "missing": [t for t in group.tasks if t not in scored],
            "complete": len(group_scored) == len(group.tasks),
        }

    complete = len(scored) == len(spec_version.tasks) and \
        not any(task_results[t].get("languages_restricted") for t in scored)
    if not complete:
        absent = [t for t in spec_version.tasks if t not in scored]
        warnings.append(f"the overall score averages {len(scored)} of "
                        f"{len(spec_version.tasks)} {version} tasks (not scored: "
                        f"{', '.join(absent)}); it is not comparable with a full "
                        f"{spec_version.display_name} score")
    for message in warnings:
        log.warning(message)

    return {
        "version": version,
        "scale": "percent" if percent else "fraction",
        "tasks": task_results,
        "groups": groups,
        "overall": _mean([task_results[t]["avg_metric"] for t in scored]),
        "complete": complete,
        "scored_tasks": scored,
        "missing_tasks": missing,
        "warnings": warnings,
    }


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m itt.metrics.xtreme_r",
        description="Score XTREME-R / XTREME predictions in the official folder layout "
                    "(DIR/<task>/test-<lang>.<tsv|json|jsonl>) and print a JSON report.")
    parser.add_argument("--predictions", required=True, help="folder of predictions")
    parser.add_argument("--labels", required=True, help="folder of gold labels")
    parser.add_argument("--version", default="xtreme-r",
                        help=f"benchmark version: {' | '.join(VERSIONS)} (default xtreme-r)")
    parser.add_argument("--languages", default=None,
                        help="comma-separated languages to score (default: every official "
                             "language of each task; a subset marks the report incomplete)")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated tasks to score (default: all of the version)")
    parser.add_argument("--percent", action="store_true",
                        help="report 0-100 like the official scorer instead of fractions")
    parser.add_argument("--output", default=None, help="also write the JSON report here")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="verbosity of the messages on stderr")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(levelname)s: %(message)s")
    try:
        report = score(args.predictions, args.labels, version=args.version,
                       tasks=args.tasks, percent=args.percent, languages=args.languages)
        text = json.dumps(report, indent=2, ensure_ascii=False)
        if args.output:
            try:
                _write_atomic(Path(args.output), text + "\n")
            except OSError as exc:
                raise XtremeScoringError(f"cannot write {args.output}: {exc}") from None
    except XtremeScoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); silence the interpreter's final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
