"""Token tagging (UD-POS, WikiANN/PAN-X NER; CoNLL-2003 as an English source).

Labels are per word; the encoder sees sub-word tokens. As in the XTREME baselines, a
word's label sits on its first sub-token and every other position gets -100 (ignored by
the loss); predictions are read back per word from the first sub-token. Words that lose
all their tokens to ``max_length`` truncation (and the rare word that tokenizes to
nothing) are predicted as the default tag (``O`` where the label set has it, else the
first label; card field ``default_tag``), so every sentence keeps its gold length and the
score is comparable with the official one. Sentences with truncated words are counted in
``truncated``.

Metric: seqeval micro chunk F1 exactly as the official scorer (itt.metrics.xtreme_metrics), also
for POS (see that module's docstring). Card columns: ``tokens`` (list of words) and
``tags`` (list of label names, indices into ``labels``, or ClassLabel ids of the source).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from itt.data.batching import PadCollator
from itt.data.encoding import RaggedSplit, encode_cached, pack, quiet_transformers, ragged_arrays
from itt.errors import DataError
from itt.tasks.base import TaskType, column, require, write_local, write_xtreme, xtreme_task

log = logging.getLogger(__name__)

IGNORE = -100


@dataclass
class TaggedSplit(RaggedSplit):
    """Sub-word ids (one sentence an item) with per-position labels, and the word alignment
    to read them back."""

    label_ids: np.ndarray      # int64, flat like ids: tag index on first sub-tokens, -100 elsewhere
    words: np.ndarray          # int64, flat: word index of each first sub-token, in order
    word_offsets: np.ndarray   # int64, per sentence
    tags: np.ndarray           # int64, flat: gold tag of every word
    tag_offsets: np.ndarray    # int64, per sentence (= number of words)

    @property
    def n_words(self) -> np.ndarray:
        return np.diff(self.tag_offsets)

    def target(self, i: int) -> np.ndarray:
        return self.label_ids[self.span(i)]

    def gold(self, i: int) -> np.ndarray:
        return self.tags[self.tag_offsets[i]:self.tag_offsets[i + 1]]

    def word_index(self, i: int) -> np.ndarray:
        return self.words[self.word_offsets[i]:self.word_offsets[i + 1]]


class TagCollator(PadCollator):
    """Pads ids, types and per-position labels (with -100) on the tokenizer's side."""

    def __call__(self, pairs: list[tuple[int, Any]]) -> dict[str, Any]:
        index, items = self.unzip(pairs)
        input_ids, mask = self.pad([ids for ids, _, _ in items])
        width = input_ids.size(1)
        labels, _ = self.pad([lab for _, _, lab in items], IGNORE, width)
        batch = {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "index": index}
        self.add_types(batch, [t for _, t, _ in items], width)
        return batch


class TokenHead(nn.Module):
    """dropout -> linear on every token (as the XTREME tagging baselines)."""

    def __init__(self, hidden: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_labels)
        nn.init.normal_(self.out.weight, std=0.02)
        nn.init.zeros_(self.out.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(hidden))


def align_labels(word_ids: list[int | None], tags: list[int]) -> tuple[list[int], list[int]]:
    """Per-position labels (tag on a word's first sub-token, -100 elsewhere) and the word
    index of each labelled position, from a fast tokenizer's ``word_ids()``."""
    labels: list[int] = []
    words: list[int] = []
    prev: int | None = None
    for wid in word_ids:
        if wid is None or wid == prev:
            labels.append(IGNORE)
        else:
            labels.append(int(tags[wid]))
            words.append(int(wid))
        if wid is not None:
            prev = wid
    return labels, words


def default_tag(card: Any) -> int:
    """Index of the tag predicted for words the model never saw (see module docstring)."""
    names = list(card.labels or [])
    wanted = (card.extra or {}).get("default_tag")
    if wanted is not None:
        if str(wanted) not in names:
            raise DataError(f"Task '{card.name}': default_tag {wanted!r} is not in its labels {names}.")
        return names.index(str(wanted))
    return names.index("O") if "O" in names else 0


def words_from_predictions(pred: list[int], word_index: np.ndarray, n_words: int, default: int) -> list[int]:
    """One tag per word: the prediction of its first sub-token, ``default`` where it had none."""
    if len(pred) != len(word_index):
        raise RuntimeError(f"{len(pred)} predictions for {len(word_index)} first sub-tokens")
    out = [default] * n_words
    for w, p in zip(word_index, pred):
        out[int(w)] = int(p)
    return out


class TokenTagging(TaskType):
    name = "token_tagging"
    collator_class = TagCollator

    # ---------------------------------------------------------------- data
    def normalise(self, card: Any, ds: Any, where: str) -> Any:
        import datasets

        tok_col = column(card, "tokens", "tokens")
        tag_col = column(card, "tags", "tags")
        require(card, ds, [tok_col, tag_col], where)
        names = [str(x) for x in (card.labels or [])]
        if not names:
            raise DataError(f"Task '{card.name}': a token_tagging card needs its tag set in 'labels'.")
        index = {n: i for i, n in enumerate(names)}
        label_map = card.label_map or {}
        feature = ds.features.get(tag_col)
        inner = getattr(feature, "feature", None)
        if inner is None and isinstance(feature, list) and feature:
            inner = feature[0]
        class_names = list(getattr(inner, "names", None) or [])
        tokens_out, tags_out = [], []
        for r, (words, tags) in enumerate(zip(ds[tok_col], ds[tag_col])):
            words = [str(w) for w in (words or [])]
            tags = list(tags or [])
            if not words:
                raise DataError(f"Task '{card.name}': {where} row {r} has no tokens.")
            if len(words) != len(tags):
                raise DataError(f"Task '{card.name}': {where} row {r} has {len(words)} tokens but "
                                f"{len(tags)} tags.")
            idx = []
            for j, v in enumerate(tags):
                key = class_names[v] if class_names and isinstance(v, (int, np.integer)) else v
                key = label_map.get(str(key), key)
                if str(key) in index:
                    idx.append(index[str(key)])
                elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < len(names):
                    idx.append(int(key))
                else:
                    raise DataError(f"Task '{card.name}': {where} row {r} has tag {v!r} (word {j}, "
                                    f"{words[j]!r}), which is not in the card's label set {names}"
                                    + (f" (after label_map {label_map})" if label_map else "")
                                    + f". Fix the row or the card's labels/label_map in "
                                    f"conf/task/{card.name}.yaml.")
            tokens_out.append(words)
            tags_out.append(idx)
        features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                      "tags": datasets.Sequence(datasets.Value("int64"))})
        return datasets.Dataset.from_dict({"tokens": tokens_out, "tags": tags_out}, features=features)

    def encode(self, ds: Any, tokenizer: Any, card: Any, max_length: int, cache_dir: str | Path | None,
               name: str) -> TaggedSplit:
        def build() -> dict[str, np.ndarray]:
            all_ids, all_types, all_labels, all_words = [], [], [], []
            truncated = 0
            empty_words = 0
            tokens, tags = list(ds["tokens"]), list(ds["tags"])
            with quiet_transformers():
                for start in range(0, len(tokens), 1024):
                    chunk = tokens[start:start + 1024]
                    enc = tokenizer(chunk, is_split_into_words=True, truncation=True, max_length=max_length)
                    types = enc.get("token_type_ids")
                    for k, words in enumerate(chunk):
                        labels, widx = align_labels(enc.word_ids(k), tags[start + k])
                        all_ids.append(enc["input_ids"][k])
                        all_types.append(types[k] if types is not None else None)
                        all_labels.append(labels)
                        all_words.append(widx)
                        last = widx[-1] if widx else -1
                        if last < len(words) - 1:
                            truncated += 1
                        empty_words += (last + 1) - len(widx)
            if truncated:
                log.warning("%s: %d of %d sentences lose words to max_length=%d (predicted as the "
                            "default tag)", name, truncated, len(tokens), max_length)
            if empty_words:
                log.info("%s: %d words have no sub-token (predicted as the default tag)", name, empty_words)
            arrays = ragged_arrays(all_ids, all_types, truncated)
            arrays["label_ids"] = pack(all_labels, np.int64)[0]
            arrays["words"], arrays["word_offsets"] = pack(all_words, np.int64)
            arrays["tags"], arrays["tag_offsets"] = pack(tags, np.int64)
            return arrays

        a = encode_cached("tagging", ds, ["tokens", "tags"], tokenizer, max_length, cache_dir, name, build)
        return TaggedSplit(**TaggedSplit.ragged(a), label_ids=a["label_ids"], words=a["words"],
                           word_offsets=a["word_offsets"], tags=a["tags"], tag_offsets=a["tag_offsets"])

    # ---------------------------------------------------------------- model
    def head(self, hidden: int, card: Any, dropout: float) -> nn.Module:
        return TokenHead(hidden, card.num_labels, dropout)

    def logits(self, head: nn.Module, hidden: torch.Tensor, batch: dict[str, torch.Tensor],
               pooling: str) -> torch.Tensor:
        return head(hidden)

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                           batch["labels"].reshape(-1), ignore_index=IGNORE)

    def predict_batch(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        best = logits.argmax(-1)
        keep = batch["labels"] != IGNORE
        return [best[b][keep[b]].tolist() for b in range(best.size(0))]

    # ---------------------------------------------------------------- scoring
    def sentences(self, preds: list[Any], split: TaggedSplit, card: Any) -> tuple[list[list[str]], list[list[str]]]:
        """(gold, predicted) tag names per sentence, every word included."""
        names = list(card.labels)
        default = default_tag(card)
        n_words = split.n_words
        gold = [[names[t] for t in split.gold(i)] for i in range(len(split))]
        pred = [[names[t] for t in words_from_predictions(p, split.word_index(i), int(n_words[i]), default)]
                for i, p in enumerate(preds)]
        return gold, pred

    def score(self, preds: list[Any], split: Any, card: Any) -> dict[str, float]:
        from itt.metrics.xtreme_metrics import seqeval_prf

        gold, pred = self.sentences(preds, split, card)
        out = dict(seqeval_prf(gold, pred))
        if "accuracy" in card.metrics:
            flat = [(g, p) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]
            out["accuracy"] = sum(g == p for g, p in flat) / max(1, len(flat))
        return out

    def majority(self, train: Any, test: Any, card: Any) -> dict[str, float] | None:
        if len(train) == 0:
            return None
        const = int(np.bincount(np.asarray(train.tags), minlength=card.num_labels).argmax())
        return self.score([[const] * len(test.word_index(i)) for i in range(len(test))], test, card)

    def zero_shot_compatible(self, source: Any, target: Any) -> bool:
        return source.type == target.type == "token_tagging" and \
            list(source.labels or []) == list(target.labels or [])

    def export(self, preds: list[Any], split: Any, card: Any, lang: str, out_dir: Path) -> None:
        gold, pred = self.sentences(preds, split, card)
        task = xtreme_task(card)
        if task is None:  # CoNLL-style: one tag per line, a blank line between sentences
            write_local(out_dir, lang, "tsv", "\n".join("\n".join(s) + "\n" for s in pred))
            return
        write_xtreme(out_dir, task, lang, pred, gold)
