"""XTREME-R / XTREME prediction and label files: the official folder layout, readers, writers.

The training path writes its predictions and labels through :func:`write_predictions` and
:func:`write_labels`; :mod:`itt.metrics.xtreme_r` reads them back with :data:`READERS`.

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

"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Tuple, Union

from itt.metrics.xtreme_metrics import XtremeScoringError, as_pair, squad_answers
from itt.metrics.xtreme_tasks import (
    FORMAT_INDEX_LINES, FORMAT_LABEL_LINES, FORMAT_PAIR_LINES, FORMAT_QA_PREDICTIONS,
    FORMAT_RANKED_IDS, FORMAT_RELEVANT_IDS, FORMAT_SQUAD, FORMAT_TAG_LINES, FORMAT_XCOPA_JSONL,
    TASKS, XtremeTask,
)
from itt.utils import atomic_write_text, jsonl_rows

PathLike = Union[str, "os.PathLike[str]"]

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
    for number, row in jsonl_rows(_read_text(path).split("\n"), path, XtremeScoringError):
        if not isinstance(row, Mapping) or "label" not in row:
            raise XtremeScoringError(f"{path}, line {number}: expected an object with a "
                                     f"'label' key, got {json.dumps(row)[:80]!r}")
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


READERS: Dict[str, Callable[[Path], Any]] = {
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
        fields = as_pair(pair)
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
    atomic_write_text(path, _render(spec.prediction_format, predictions))
    return path


def write_labels(out_dir: PathLike, task: str, lang: str, labels: Any) -> Path:
    """Write one language's gold labels to ``out_dir/<task>/test-<lang>.<ext>``.

    Same shapes as :func:`write_predictions`, except: xquad/mlqa/tydiqa take a
    SQuAD-format dataset or a mapping question id -> list of gold answer texts (``[]`` for
    unanswerable); bucc2018 the gold pairs; mewslix/lareqa a mapping query id -> relevant
    candidate ids (one for Mewsli-X). Returns the path written.
    """
    spec = _task(task)
    path = task_file(out_dir, task, lang)
    atomic_write_text(path, _render(spec.label_format, labels))
    return path


