"""Extractive question answering (XQuAD, MLQA, TyDiQA-GoldP; SQuAD v1.1 as English source).

Encoding follows the BERT/XTREME SQuAD recipe: the question (at most ``max_query_length``
tokens) and a window of the context form one sequence; a context longer than the room
left by ``max_length`` is cut into windows that start ``doc_stride`` tokens apart (the
card's ``doc_stride`` is the step between windows, as in the original run_squad, not
the overlap). Each window is one *feature*, and features are the items the length-grouped
sampler batches. A feature remembers its example, the character span of every context
token (offset mapping) and whether the window is the token's "max context" window (the
one where it has the most context on both sides).

Training labels are the answer's first and last token in a window that holds the whole
answer, else the [CLS]-like position (the SQuAD v1.1 recipe). Prediction keeps the
``n_best`` start and end candidates of each feature; :meth:`SpanQA.score` groups the
features of an example and picks the best valid span (both ends in the context, start
in its max-context window, end not before start, at most ``max_answer_length`` tokens)
by start + end logit, and maps it back to the context's characters. No valid span gives
the empty answer, which the scorer counts right only for unanswerable questions.

Metrics: ``f1`` and ``exact_match`` of the official scorer; MLQA (card ``xtreme_task:
mlqa`` or ``qa_normalisation: mlqa``) uses MLQA's per-language normalisation.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from itt.data.batching import PadCollator
from itt.data.encoding import RaggedSplit, encode_cached, quiet_transformers, ragged_arrays, special_template
from itt.errors import ConfigError, DataError
from itt.tasks.base import TaskType, card_int, column, require, write_local, write_xtreme, xtreme_task

log = logging.getLogger(__name__)

DEFAULTS = {"doc_stride": 128, "max_query_length": 64, "max_answer_length": 30, "n_best": 20}


# --------------------------------------------------------------------------------------
# Decoding (pure functions, unit-tested on hand-made logits)
# --------------------------------------------------------------------------------------

@dataclass
class FeatureCandidates:
    """The n-best start/end positions of one feature and what is needed to decode them."""

    starts: Sequence[tuple[int, float]]      # (position, logit), best first
    ends: Sequence[tuple[int, float]]
    offsets: np.ndarray                      # [L, 2] character span per position; -1 outside the context
    max_context: np.ndarray                  # [L] bool


def top_candidates(logits: Sequence[float] | np.ndarray, n_best: int) -> list[tuple[int, float]]:
    """The ``n_best`` highest logits as (position, logit); ties keep the earlier position."""
    values = np.asarray(logits, dtype=np.float64)
    order = np.argsort(-values, kind="stable")[:n_best]
    return [(int(i), float(values[i])) for i in order]


def best_span(features: Sequence[FeatureCandidates], max_answer_length: int
              ) -> tuple[int, int, int, float] | None:
    """(feature, start, end, score) of the best valid span over an example's features."""
    best: tuple[int, int, int, float] | None = None
    for f, feat in enumerate(features):
        n = len(feat.offsets)
        for s, s_logit in feat.starts:
            if s >= n or feat.offsets[s][0] < 0 or not feat.max_context[s]:
                continue
            for e, e_logit in feat.ends:
                if e >= n or feat.offsets[e][0] < 0 or e < s or e - s + 1 > max_answer_length:
                    continue
                score = s_logit + e_logit
                if best is None or score > best[3]:
                    best = (f, s, e, score)
    return best


def decode_answer(context: str, features: Sequence[FeatureCandidates], max_answer_length: int) -> str:
    """The answer text of one example: the best span mapped back to the context ("" if none)."""
    best = best_span(features, max_answer_length)
    if best is None:
        return ""
    f, s, e, _ = best
    offsets = features[f].offsets
    return context[int(offsets[s][0]):int(offsets[e][1])]


def windows(n_tokens: int, room: int, stride: int) -> list[tuple[int, int]]:
    """Context windows [start, end) of at most ``room`` tokens, starting ``stride`` apart."""
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        length = min(n_tokens - start, room)
        spans.append((start, start + length))
        if start + length >= n_tokens:
            return spans
        start += min(length, stride)


def max_context_windows(n_tokens: int, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each context token, the window in which it has the most context (BERT's rule:
    min(left, right) context + 0.01 * window length; the first window wins ties)."""
    best = np.full(n_tokens, -1, dtype=np.int64)
    best_score = np.full(n_tokens, -np.inf)
    for w, (a, b) in enumerate(spans):
        if b <= a:
            continue
        t = np.arange(a, b)
        score = np.minimum(t - a, b - 1 - t) + 0.01 * (b - a)
        better = score > best_score[a:b]
        best[a:b][better] = w
        best_score[a:b][better] = score[better]
    return best


def char_to_tokens(offsets: np.ndarray, start: int, end: int) -> tuple[int, int] | None:
    """First and last token (indices into ``offsets``) covering characters [start, end)."""
    if len(offsets) == 0 or end <= start:
        return None
    covering = np.nonzero((offsets[:, 1] > start) & (offsets[:, 0] < end))[0]
    if len(covering) == 0:
        return None
    return int(covering[0]), int(covering[-1])


# --------------------------------------------------------------------------------------
# Encoded split
# --------------------------------------------------------------------------------------

@dataclass
class QASplit(RaggedSplit):
    """Features (the items) of a QA split and the examples they came from."""

    char_spans: np.ndarray          # int32 [n_tokens, 2]: context character span, -1 outside the context
    max_context: np.ndarray         # int8 [n_tokens]
    start_positions: np.ndarray     # int64 per feature (training target)
    end_positions: np.ndarray
    example_index: np.ndarray       # int64 per feature
    example_ids: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    answers: list[list[str]] = field(default_factory=list)
    lang: str = "en"

    @property
    def n_examples(self) -> int:
        return len(self.example_ids)

    def target(self, i: int) -> tuple[int, int]:
        return int(self.start_positions[i]), int(self.end_positions[i])

    def feature_spans(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.span(i)
        return self.char_spans[s], self.max_context[s].astype(bool)


class QACollator(PadCollator):
    """Pads features; start/end targets move with left padding. ``n_best`` rides along so
    that predict_batch knows how many candidates to keep."""

    def __init__(self, pad_id: int, padding_side: str = "right", n_best: int = 20) -> None:
        super().__init__(pad_id, padding_side)
        self.n_best = n_best

    def __call__(self, pairs: list[tuple[int, Any]]) -> dict[str, Any]:
        index, items = self.unzip(pairs)
        input_ids, mask = self.pad([ids for ids, _, _ in items])
        width = input_ids.size(1)
        shift = [width - len(ids) if self.left else 0 for ids, _, _ in items]
        batch: dict[str, Any] = {
            "input_ids": input_ids, "attention_mask": mask, "index": index, "n_best": self.n_best,
            "start_positions": torch.tensor([s + d for (_, _, (s, _)), d in zip(items, shift)], dtype=torch.long),
            "end_positions": torch.tensor([e + d for (_, _, (_, e)), d in zip(items, shift)], dtype=torch.long)}
        self.add_types(batch, [t for _, t, _ in items], width)
        return batch


# --------------------------------------------------------------------------------------
# Task type
# --------------------------------------------------------------------------------------

def _answers(value: Any) -> tuple[list[str], list[int]]:
    """Answer texts and starts from a HF ``answers`` value (dict of lists) or a SQuAD list."""
    if value is None:
        return [], []
    if isinstance(value, dict):
        texts = list(value.get("text") or [])
        starts = list(value.get("answer_start") or [-1] * len(texts))
    else:
        texts = [a.get("text") if isinstance(a, dict) else a for a in value]
        starts = [a.get("answer_start", -1) if isinstance(a, dict) else -1 for a in value]
    starts = [int(s) if s is not None else -1 for s in starts]
    return [str(t) for t in texts], (starts + [-1] * len(texts))[:len(texts)]


def _flatten_squad(ds: Any) -> dict[str, list]:
    """Rows of articles (``title``, ``paragraphs``: a SQuAD JSON read with field=data)."""
    out: dict[str, list] = {"id": [], "question": [], "context": [], "answers": []}
    for article in ds:
        for para in article.get("paragraphs") or []:
            for qa in para.get("qas") or []:
                out["id"].append(qa.get("id"))
                out["question"].append(qa.get("question"))
                out["context"].append(para.get("context"))
                out["answers"].append(qa.get("answers") or [])
    return out


class SpanQA(TaskType):
    name = "span_qa"

    @staticmethod
    def params(card: Any) -> dict[str, int]:
        return {k: card_int(card, k, v) for k, v in DEFAULTS.items()}

    # ---------------------------------------------------------------- data
    def normalise(self, card: Any, ds: Any, where: str) -> Any:
        import datasets

        if "paragraphs" in ds.column_names:
            rows = _flatten_squad(ds)
            id_col, q_col, c_col, a_col = "id", "question", "context", "answers"
        else:
            id_col = column(card, "id", "id")
            q_col = column(card, "question", "question")
            c_col = column(card, "context", "context")
            a_col = column(card, "answers", "answers")
            require(card, ds, [id_col, q_col, c_col, a_col], where)
            rows = {k: list(ds[k]) for k in (id_col, q_col, c_col, a_col)}
        out: dict[str, list] = {"id": [], "question": [], "context": [], "answer_texts": [], "answer_starts": []}
        seen: set[str] = set()
        for i, (qid, q, ctx, ans) in enumerate(zip(rows[id_col], rows[q_col], rows[c_col], rows[a_col])):
            if qid is None or ctx is None or q is None:
                raise DataError(f"Task '{card.name}': {where} row {i} lacks an id, a question or a context.")
            qid = str(qid)
            if qid in seen:
                raise DataError(f"Task '{card.name}': {where} row {i}: question id {qid!r} occurs twice.")
            seen.add(qid)
            texts, starts = _answers(ans)
            out["id"].append(qid)
            out["question"].append(str(q).strip())
            out["context"].append(str(ctx))
            out["answer_texts"].append(texts)
            out["answer_starts"].append(starts)
        features = datasets.Features({"id": datasets.Value("string"), "question": datasets.Value("string"),
                                      "context": datasets.Value("string"),
                                      "answer_texts": datasets.Sequence(datasets.Value("string")),
                                      "answer_starts": datasets.Sequence(datasets.Value("int64"))})
        return datasets.Dataset.from_dict(out, features=features)

    def encode(self, ds: Any, tokenizer: Any, card: Any, max_length: int, cache_dir: str | Path | None,
               name: str) -> QASplit:
        p = self.params(card)
        contexts = list(ds["context"])

        def build() -> dict[str, np.ndarray]:
            return self._features(ds, contexts, tokenizer, max_length, p, name)

        a = encode_cached("qa", ds, ["id", "question", "context", "answer_texts", "answer_starts"], tokenizer,
                          max_length, cache_dir, name, build, settings=[p["doc_stride"], p["max_query_length"]])
        lang = name.rsplit("/test-", 1)[1] if "/test-" in name else card.train_languages[0]
        return QASplit(**QASplit.ragged(a), char_spans=a["char_spans"], max_context=a["max_context"],
                       start_positions=a["start_positions"], end_positions=a["end_positions"],
                       example_index=a["example_index"], example_ids=list(ds["id"]), contexts=contexts,
                       answers=[list(x) for x in ds["answer_texts"]], lang=lang)

    @staticmethod
    def _features(ds: Any, contexts: list[str], tokenizer: Any, max_length: int, p: dict[str, int],
                  name: str) -> dict[str, np.ndarray]:
        template = special_template(tokenizer, pair=True)
        cls_id = getattr(tokenizer, "cls_token_id", None)
        with quiet_transformers():
            q_ids = tokenizer(list(ds["question"]), add_special_tokens=False)["input_ids"] if len(ds) else []
            c_enc = tokenizer(contexts, add_special_tokens=False, return_offsets_mapping=True) if len(ds) else \
                {"input_ids": [], "offset_mapping": []}
        all_texts, all_starts = list(ds["answer_texts"]), list(ds["answer_starts"])
        feats: dict[str, list] = {k: [] for k in ("ids", "types", "spans", "maxc", "start", "end", "example")}
        truncated_q = multi = unplaceable = 0
        for ex, (q, c_ids, c_off) in enumerate(zip(q_ids, c_enc["input_ids"], c_enc["offset_mapping"])):
            if len(q) > p["max_query_length"]:
                q = q[:p["max_query_length"]]
                truncated_q += 1
            room = max_length - len(q) - template.n_special
            if room <= 0:
                raise ConfigError(f"{name}: max_length={max_length} leaves no room for the context after a "
                                  f"{len(q)}-token question; raise stage max_length or lower max_query_length.")
            c_off = np.asarray(c_off, dtype=np.int64).reshape(-1, 2)
            spans = windows(len(c_ids), room, p["doc_stride"])
            multi += len(spans) > 1
            best_w = max_context_windows(len(c_ids), spans)
            gold = None
            texts, starts = all_texts[ex], all_starts[ex]
            if texts:
                s_char = starts[0]
                text = texts[0]
                ctx = contexts[ex]
                if s_char < 0 or ctx[s_char:s_char + len(text)] != text:
                    s_char = ctx.find(text)
                gold = char_to_tokens(c_off, s_char, s_char + len(text)) if s_char >= 0 and text else None
                unplaceable += gold is None
            for w, (a, b) in enumerate(spans):
                ids, types, b0, b1 = template.build(q, c_ids[a:b])
                cls_pos = ids.index(cls_id) if cls_id is not None and cls_id in ids else 0
                span_chars = np.full((len(ids), 2), -1, dtype=np.int32)
                span_chars[b0:b1] = c_off[a:b]
                maxc = np.zeros(len(ids), dtype=np.int8)
                maxc[b0:b1] = best_w[a:b] == w
                if gold is not None and a <= gold[0] and gold[1] < b:
                    start, end = b0 + gold[0] - a, b0 + gold[1] - a
                else:
                    start = end = cls_pos
                feats["ids"].append(ids)
                feats["types"].append(types)
                feats["spans"].append(span_chars)
                feats["maxc"].append(maxc)
                feats["start"].append(start)
                feats["end"].append(end)
                feats["example"].append(ex)
        if truncated_q:
            log.warning("%s: %d questions truncated to max_query_length=%d", name, truncated_q,
                        p["max_query_length"])
        if unplaceable:
            log.warning("%s: %d answers could not be located in their context (trained as no-answer)",
                        name, unplaceable)
        log.info("%s: %d examples -> %d features (%d in several windows; max_length=%d, doc_stride=%d)",
                 name, len(ds), len(feats["ids"]), multi, max_length, p["doc_stride"])
        arrays = ragged_arrays(feats["ids"], feats["types"], truncated_q)
        arrays.update({
            "char_spans": np.concatenate(feats["spans"]) if feats["spans"] else np.zeros((0, 2), np.int32),
            "max_context": np.concatenate(feats["maxc"]) if feats["maxc"] else np.zeros(0, np.int8),
            "start_positions": np.asarray(feats["start"], dtype=np.int64),
            "end_positions": np.asarray(feats["end"], dtype=np.int64),
            "example_index": np.asarray(feats["example"], dtype=np.int64)})
        assert len(arrays["char_spans"]) == int(arrays["offsets"][-1])
        return arrays

    def collator(self, tokenizer: Any, card: Any) -> QACollator:
        return QACollator(tokenizer.pad_token_id, tokenizer.padding_side, self.params(card)["n_best"])

    # ---------------------------------------------------------------- model
    def head(self, hidden: int, card: Any, dropout: float) -> nn.Module:
        head = nn.Linear(hidden, 2)
        nn.init.normal_(head.weight, std=0.02)
        nn.init.zeros_(head.bias)
        return head

    def logits(self, head: nn.Module, hidden: torch.Tensor, batch: dict[str, torch.Tensor],
               pooling: str) -> torch.Tensor:
        return head(hidden)          # [B, L, 2]: start and end logits

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = logits.float()
        return (nn.functional.cross_entropy(logits[..., 0], batch["start_positions"])
                + nn.functional.cross_entropy(logits[..., 1], batch["end_positions"])) / 2

    def predict_batch(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        """Per feature: the n-best (position, logit) starts and ends, positions counted in
        the feature's own (unpadded) sequence."""
        mask = batch["attention_mask"].bool()
        first = mask.float().argmax(dim=1).tolist()
        length = mask.sum(dim=1).tolist()
        n_best = int(batch.get("n_best", DEFAULTS["n_best"]))
        lg = logits.float().cpu().numpy()
        out = []
        for b in range(lg.shape[0]):
            a, n = first[b], length[b]
            out.append((top_candidates(lg[b, a:a + n, 0], n_best), top_candidates(lg[b, a:a + n, 1], n_best)))
        return out

    # ---------------------------------------------------------------- scoring
    def answers(self, preds: list[Any], split: QASplit, card: Any) -> dict[str, str]:
        """Question id -> predicted answer text, features aggregated per example."""
        max_len = self.params(card)["max_answer_length"]
        by_example: list[list[FeatureCandidates]] = [[] for _ in range(split.n_examples)]
        for f, (starts, ends) in enumerate(preds):
            spans, maxc = split.feature_spans(f)
            by_example[int(split.example_index[f])].append(FeatureCandidates(starts, ends, spans, maxc))
        return {qid: decode_answer(ctx, feats, max_len)
                for qid, ctx, feats in zip(split.example_ids, split.contexts, by_example)}

    @staticmethod
    def normalisation(card: Any) -> str:
        mode = (card.extra or {}).get("qa_normalisation") or ("mlqa" if xtreme_task(card) == "mlqa" else "squad")
        if mode not in ("squad", "mlqa"):
            raise ConfigError(f"Task card '{card.name}': qa_normalisation must be squad or mlqa, not {mode!r}.")
        return mode

    def score(self, preds: list[Any], split: Any, card: Any) -> dict[str, float]:
        from itt.metrics.xtreme_metrics import mlqa_f1_em, squad_f1_em

        predicted = self.answers(preds, split, card)
        gold = dict(zip(split.example_ids, split.answers))
        if self.normalisation(card) == "mlqa":
            return mlqa_f1_em(gold, predicted, split.lang)
        return squad_f1_em(gold, predicted)

    def zero_shot_compatible(self, source: Any, target: Any) -> bool:
        return source.type == target.type == "span_qa"

    def export(self, preds: list[Any], split: Any, card: Any, lang: str, out_dir: Path) -> None:
        import json

        predicted = self.answers(preds, split, card)
        task = xtreme_task(card)
        if task is None:
            write_local(out_dir, lang, "json", json.dumps(predicted, ensure_ascii=False, indent=1) + "\n")
            return
        write_xtreme(out_dir, task, lang, predicted, dict(zip(split.example_ids, split.answers)))


__all__ = ["SpanQA", "QASplit", "FeatureCandidates", "best_span", "decode_answer", "top_candidates",
           "windows", "max_context_windows", "char_to_tokens"]
