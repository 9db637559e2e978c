"""Multiple choice (XCOPA; COPA, SIQA, HellaSwag, ... as English sources).

Each item is a context (the premise, plus the question where the card has one) paired with
each of its choices. A batch holds every (context, choice) pair of its items, so the
encoder sees ``input_ids`` of shape ``[B * C, L]``; the pooled representation of each pair
gets one score from a linear head, the scores are reshaped to ``[B, C]`` and trained with
cross-entropy over the choices. Items with fewer choices than the widest item of the batch
are padded with a copy of their first choice whose score is masked out, so a source may
mix choice counts. The head scores a pair, independent of the number of choices, so a
model trained on SIQA (3 choices) can score XCOPA (2 choices) directly.

Card fields (columns): ``premise``, optional ``question``, ``choices`` (a list of columns,
one per choice, or one column holding a list, or a dict whose ``choices_field`` key,
default ``text``, holds it) and ``label`` (the index of the right choice, or a raw value
mapped by ``label_map``). ``question_map`` rewrites question values
(XCOPA's ``cause``/``effect``) into text appended to the premise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from itt.data.batching import PadCollator
from itt.data.encoding import encode_cached, encode_truncating, ragged_arrays, unpack
from itt.errors import DataError
from itt.models.heads import SequenceHead, pool
from itt.tasks.base import TaskType, column, require, xtreme_task

#: Score given to padding choices: low enough to never win, safe in half precision.
MASKED_SCORE = -1.0e4


@dataclass
class ChoiceSplit:
    """Token ids of every (context, choice) pair, grouped by item."""

    ids: np.ndarray            # int32, all pair sequences concatenated
    seq_offsets: np.ndarray    # int64, one entry per pair + 1
    types: np.ndarray | None   # token type ids, same layout as ids, or None
    row_offsets: np.ndarray    # int64, item i owns pairs row_offsets[i]:row_offsets[i+1]
    labels: np.ndarray         # int64, index of the right choice
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.row_offsets) - 1

    @property
    def num_choices(self) -> np.ndarray:
        return np.diff(self.row_offsets)

    @property
    def lengths(self) -> np.ndarray:
        seq_len = np.diff(self.seq_offsets)
        return np.array([seq_len[a:b].max() if b > a else 0
                         for a, b in zip(self.row_offsets[:-1], self.row_offsets[1:])], dtype=np.int64)

    def item(self, i: int) -> tuple[list[np.ndarray], list[np.ndarray] | None, int]:
        js = range(int(self.row_offsets[i]), int(self.row_offsets[i + 1]))
        seqs = [unpack(self.ids, self.seq_offsets, j) for j in js]
        types = [unpack(self.types, self.seq_offsets, j) for j in js] if self.types is not None else None
        return seqs, types, int(self.labels[i])


class ChoiceCollator(PadCollator):
    """Pads the pairs of a batch of items into ``[B * C, L]``; see the module docstring."""

    def __call__(self, pairs: list[tuple[int, Any]]) -> dict[str, Any]:
        index, items = self.unzip(pairs)
        width_c = max(len(seqs) for seqs, _, _ in items)
        flat: list[np.ndarray] = []
        flat_types: list[np.ndarray] = []
        choice_mask = torch.zeros((len(items), width_c), dtype=torch.bool)
        for b, (seqs, types, _) in enumerate(items):
            choice_mask[b, :len(seqs)] = True
            for c in range(width_c):
                k = c if c < len(seqs) else 0
                flat.append(seqs[k])
                if types is not None:
                    flat_types.append(types[k])
        input_ids, mask = self.pad(flat)
        batch: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask, "index": index,
                                 "labels": torch.tensor([y for _, _, y in items], dtype=torch.long),
                                 "choice_mask": choice_mask, "num_choices": width_c}
        self.add_types(batch, flat_types, input_ids.size(1))
        return batch


def _choice_columns(card: Any) -> list[str] | str:
    cols = (card.columns or {}).get("choices")
    if not cols:
        raise DataError(f"Task '{card.name}': a multiple_choice card needs columns.choices (a list of "
                        f"columns, one per choice, or one column holding the list of choices).")
    return cols if isinstance(cols, str) else list(cols)


def _label_index(card: Any, value: Any, n_choices: int, row: int, where: str) -> int:
    label_map = card.label_map or {}
    key = value.strip() if isinstance(value, str) else value
    if label_map:
        key = label_map.get(str(key), key)
    try:
        idx = int(key)
        if isinstance(key, float) and not key.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        idx = -1
    if not 0 <= idx < n_choices:
        raise DataError(f"Task '{card.name}': {where} row {row} has label {value!r}, which is not a "
                        f"choice index 0..{n_choices - 1}" + (f" (after label_map {label_map})" if label_map
                                                             else "")
                        + f". Fix the row or label_map in conf/task/{card.name}.yaml.")
    return idx


class MultipleChoice(TaskType):
    name = "multiple_choice"
    collator_class = ChoiceCollator

    # ---------------------------------------------------------------- data
    def normalise(self, card: Any, ds: Any, where: str) -> Any:
        import datasets

        premise = column(card, "premise", "premise")
        question = column(card, "question")
        choice_cols = _choice_columns(card)
        label = card.label_column
        needed = [premise, label] + ([question] if question else []) + \
            ([choice_cols] if isinstance(choice_cols, str) else choice_cols)
        require(card, ds, needed, where)
        qmap = {str(k): str(v) for k, v in ((card.extra or {}).get("question_map") or {}).items()}
        choices_field = (card.extra or {}).get("choices_field", "text")
        contexts, choices, labels = [], [], []
        premises = ds[premise]
        questions = ds[question] if question else [None] * len(ds)
        raw_choices = ds[choice_cols] if isinstance(choice_cols, str) else \
            list(zip(*[ds[c] for c in choice_cols]))
        for i, (p, q, ch, y) in enumerate(zip(premises, questions, raw_choices, ds[label])):
            if p is None or not str(p).strip():
                raise DataError(f"Task '{card.name}': {where} row {i} has an empty '{premise}'.")
            if isinstance(ch, dict):  # e.g. CommonsenseQA: {"label": [...], "text": [...]}
                ch = ch.get(choices_field)
            ch = [str(c) for c in (ch or []) if c is not None]
            if len(ch) < 2:
                raise DataError(f"Task '{card.name}': {where} row {i} has {len(ch)} choice(s); "
                                f"multiple choice needs at least 2 (columns.choices).")
            text = str(p).strip()
            if q is not None and str(q).strip():
                q = str(q).strip()
                text = f"{text} {qmap.get(q, q)}"
            contexts.append(text)
            choices.append(ch)
            labels.append(_label_index(card, y, len(ch), i, where))
        features = datasets.Features({"context": datasets.Value("string"),
                                      "choices": datasets.Sequence(datasets.Value("string")),
                                      "label": datasets.Value("int64")})
        return datasets.Dataset.from_dict({"context": contexts, "choices": choices, "label": labels},
                                          features=features)

    def encode(self, ds: Any, tokenizer: Any, card: Any, max_length: int, cache_dir: str | Path | None,
               name: str) -> ChoiceSplit:
        def build() -> dict[str, np.ndarray]:
            contexts, all_choices = list(ds["context"]), list(ds["choices"])
            firsts = [c for c, ch in zip(contexts, all_choices) for _ in ch]
            seconds = [x for ch in all_choices for x in ch]
            ids, types, long = encode_truncating(tokenizer, firsts, seconds, max_length)
            per_row = [len(ch) for ch in all_choices]
            row_offsets = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)
            long_set = set(long)
            truncated = sum(1 for a, b in zip(row_offsets[:-1], row_offsets[1:])
                            if any(j in long_set for j in range(a, b)))
            arrays = ragged_arrays(ids, types, truncated, offsets_key="seq_offsets")
            arrays.update(row_offsets=row_offsets, labels=np.asarray(ds["label"], dtype=np.int64))
            return arrays

        a = encode_cached("mc", ds, ["context", "choices", "label"], tokenizer, max_length, cache_dir, name, build)
        return ChoiceSplit(ids=a["ids"], seq_offsets=a["seq_offsets"], types=a.get("types"),
                           row_offsets=a["row_offsets"], labels=a["labels"], truncated=int(a["truncated"][0]))

    # ---------------------------------------------------------------- model
    def head(self, hidden: int, card: Any, dropout: float) -> nn.Module:
        return SequenceHead(hidden, 1, dropout)

    def logits(self, head: nn.Module, hidden: torch.Tensor, batch: dict[str, torch.Tensor],
               pooling: str) -> torch.Tensor:
        scores = head(pool(hidden, batch["attention_mask"], pooling)).squeeze(-1)
        mask = batch["choice_mask"]
        scores = scores.view(mask.shape)
        return scores.masked_fill(~mask, MASKED_SCORE)

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.float(), batch["labels"])

    def predict_batch(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        return logits.argmax(-1).tolist()

    # ---------------------------------------------------------------- scoring
    def score(self, preds: list[Any], split: Any, card: Any) -> dict[str, float]:
        from itt.metrics.xtreme_metrics import accuracy

        return {"accuracy": accuracy([int(x) for x in split.labels], [int(p) for p in preds])}

    def majority(self, train: Any, test: Any, card: Any) -> dict[str, float] | None:
        if len(train) == 0:
            return None
        const = int(np.bincount(np.asarray(train.labels)).argmax())
        return self.score([const] * len(test), test, card)

    def zero_shot_compatible(self, source: Any, target: Any) -> bool:
        return source.type == target.type == "multiple_choice"

    def export_labels(self, split: Any, card: Any, lang: str, out_dir: Path) -> None:
        from itt.metrics.xtreme_files import write_labels

        task = xtreme_task(card)
        if task is not None:
            write_labels(out_dir, task, lang, [int(x) for x in split.labels])
