"""XTREME-R / XTREME metric functions: pure functions of in-memory lists, fractions in [0, 1].

No file input or output here (that is :mod:`itt.metrics.xtreme_files`) and no folder
scoring or command line (that is :mod:`itt.metrics.xtreme_r`); the training path imports
this module for its evaluation metrics.

Metrics (as the official ``evaluate.py`` of google-research/xtreme computes them)
====================================================================================

* accuracy: xnli, pawsx, xcopa, tatoeba.
* seqeval F1 (micro, default mode): panx *and* udpos, with the chunking of the seqeval
  release the official scores were computed with (``SEQEVAL_0_0_12``, the default).
  Both releases take the first character of a tag as the chunk tag (``B``, ``I``, ``O``,
  ...); they differ in the type. seqeval 0.0.12 (the release of 2020, when XTREME's
  install_tools.sh ran an unpinned ``pip install seqeval``) takes everything after the
  last ``-`` (``B-PER`` -> ``PER``, ``NOUN`` -> ``NOUN``); seqeval 1.2.2 (``SEQEVAL_1_2``) takes what follows the first ``-`` after
  the first character, or the rest (``NOUN`` -> ``OUN``, ``B-PER`` -> ``PER``). NER tags
  score the same under both; POS tags do not: under either a run of identical tags is
  one chunk, but e.g. ``CCONJ`` then ``SCONJ`` is two chunks (types ``CCONJ``, ``SCONJ``)
  for 0.0.12 and one (``CONJ``) for 1.2.2. google-research/xtreme's evaluate_test.py
  expects ``udpos avg_f1 = 70.21746048354693`` on its mock data, which only the 0.0.12
  chunking gives. Neither is token accuracy; both are reproduced here without importing
  seqeval.
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

"""
from __future__ import annotations

import logging
import re
import string
import unicodedata
from collections import Counter
from typing import (
    Any, Callable, Collection, Dict, Iterable, List, Mapping, Sequence, Tuple, Union,
)

log = logging.getLogger(__name__)

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
# Sequence labelling: seqeval's default (conlleval-like) chunking, micro-averaged;
# the type of a tag as seqeval 0.0.12 (default) or 1.2.x reads it
# --------------------------------------------------------------------------------------

SEQEVAL_0_0_12 = "0.0.12"
"""seqeval 0.0.12's chunking (the official scores; the default)."""
SEQEVAL_1_2 = "1.2"
"""seqeval 1.2.x's chunking (what ``pip install seqeval`` gives today)."""
SEQEVAL_SCHEMES: Tuple[str, ...] = (SEQEVAL_0_0_12, SEQEVAL_1_2)


def check_seqeval_scheme(scheme: str) -> str:
    """``scheme`` if it is one of :data:`SEQEVAL_SCHEMES`, else an error naming them."""
    if scheme not in SEQEVAL_SCHEMES:
        raise XtremeScoringError(f"unknown seqeval chunking {scheme!r}; use one of "
                                 f"{', '.join(SEQEVAL_SCHEMES)}")
    return scheme


def _split_tag(tag: str, scheme: str) -> Tuple[str, str]:
    if scheme == SEQEVAL_0_0_12:
        # seqeval 0.0.12: the type is the whole tag after its last '-'.
        return tag[0], tag.split("-")[-1]
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


def seqeval_entities(sentences: Sequence[Sequence[str]],
                     scheme: str = SEQEVAL_0_0_12) -> List[Tuple[str, int, int]]:
    """Chunks ``(type, first, last)`` as seqeval ``scheme`` finds them; sentences are joined
    with "O".

    Offsets index the concatenation of the sentences with one ``O`` after each, exactly
    as ``seqeval.metrics.sequence_labeling.get_entities`` does for nested lists.
    """
    check_seqeval_scheme(scheme)
    flat: List[str] = []
    for sentence in sentences:
        flat.extend(sentence)
        flat.append("O")
    chunks: List[Tuple[str, int, int]] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, label in enumerate(flat + ["O"]):
        if not label:
            raise XtremeScoringError(f"empty tag at flattened position {i}")
        tag, type_ = _split_tag(label, scheme)
        if _chunk_ends(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def seqeval_prf(labels: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]],
                scheme: str = SEQEVAL_0_0_12) -> Dict[str, float]:
    """Micro precision, recall and F1 over chunks, as ``seqeval.metrics`` returns them.

    ``labels`` and ``predictions`` are lists of sentences, each a list of tags, with the
    same number of sentences and of tags per sentence. A zero division gives 0.
    ``scheme`` is the seqeval release whose chunking is used (:data:`SEQEVAL_SCHEMES`).
    """
    _check_same_length(labels, predictions, "label sentences", "predicted sentences")
    for i, (gold, pred) in enumerate(zip(labels, predictions)):
        if len(gold) != len(pred):
            raise XtremeScoringError(
                f"sentence {i + 1} has {len(gold)} gold tags but {len(pred)} predicted tags")
    gold_chunks = set(seqeval_entities(labels, scheme))
    pred_chunks = set(seqeval_entities(predictions, scheme))
    correct = len(gold_chunks & pred_chunks)
    precision = correct / len(pred_chunks) if pred_chunks else 0.0
    recall = correct / len(gold_chunks) if gold_chunks else 0.0
    denom = precision + recall
    f1 = 2 * precision * recall / denom if denom else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def seqeval_f1(labels: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]],
               scheme: str = SEQEVAL_0_0_12) -> float:
    """seqeval's micro chunk F1 (``seqeval.metrics.f1_score`` with its defaults)."""
    return seqeval_prf(labels, predictions, scheme)["f1"]


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
               normalize: Callable[[str], str], scale: float = 1.0) -> Dict[str, float]:
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
    # scale * total / n, in this order, as the official SQuAD and MLQA scripts compute
    # their percentages (100.0 * total / n); scale 1 gives the fraction exactly.
    return {"f1": scale * f1_sum / len(gold), "exact_match": scale * exact_sum / len(gold)}


def squad_f1_em(gold: Mapping[str, Sequence[str]],
                predictions: Mapping[str, str], scale: float = 1.0) -> Dict[str, float]:
    """SQuAD v1.1 ``{"f1", "exact_match"}``, each the mean over the gold questions.

    ``gold`` maps question id -> gold answer texts (``[]`` = unanswerable);
    ``predictions`` maps question id -> answer text. A question without a prediction
    scores 0 (as in the official script); predictions for unknown ids are ignored.
    Use :func:`squad_answers` to get ``gold`` from a SQuAD-format dataset. ``scale=100``
    gives percentages computed as the official script does (``100 * total / n``).
    """
    return _qa_scores(gold, predictions, normalize_squad_answer, scale)


def mlqa_f1_em(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
               lang: str, scale: float = 1.0) -> Dict[str, float]:
    """Like :func:`squad_f1_em` with MLQA's normalisation for the answer language ``lang``."""
    _check_mlqa_language(lang)
    return _qa_scores(gold, predictions, lambda text: normalize_mlqa_answer(text, lang), scale)


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


def as_pair(pair: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    return tuple(pair.split("\t")) if isinstance(pair, str) else tuple(str(p) for p in pair)


def bucc_f1(gold_pairs: Iterable[Union[str, Sequence[str]]],
            predicted_pairs: Iterable[Union[str, Sequence[str]]]) -> Dict[str, float]:
    """BUCC ``{"f1", "precision", "recall"}`` over sets of (source id, target id) pairs.

    A pair is a ``(src, trg)`` sequence or a ``"src\\ttrg"`` string; duplicates count once.
    """
    gold = {as_pair(p) for p in gold_pairs}
    pred = {as_pair(p) for p in predicted_pairs}
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


