"""The interface every task type implements.

Data flow for one split: ``normalise`` (raw dataset rows -> the type's normal form, labels
checked against the card) -> ``encode`` (token ids, cached; returns an object with
``__len__``, ``item(i)``, ``lengths`` and ``truncated``) -> batches from ``collator`` ->
``logits`` on the encoder's hidden states -> ``loss`` in training, ``predict_batch`` in
evaluation (one prediction per item, in item order) -> ``score`` over the whole split ->
``export`` in the XTREME folder layout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from itt.errors import DataError


class TaskType:
    """Base class; see the module docstring for the contract."""

    name = "base"
    #: False for types scored without target training (e.g. representation retrieval).
    trainable = True
    #: The validation/test metric the checkpoint is selected by is ``card.main_metric``.

    #: Built by the default :meth:`collator` on the tokenizer's pad id and padding side.
    collator_class: Any = None

    def normalise(self, card: Any, ds: Any, where: str) -> Any:
        raise NotImplementedError

    def encode(self, ds: Any, tokenizer: Any, card: Any, max_length: int, cache_dir: str | Path | None,
               name: str) -> Any:
        raise NotImplementedError

    def collator(self, tokenizer: Any, card: Any):
        if self.collator_class is None:
            raise NotImplementedError
        return self.collator_class(tokenizer.pad_token_id, tokenizer.padding_side)

    def head(self, hidden: int, card: Any, dropout: float) -> nn.Module:
        raise NotImplementedError

    def logits(self, head: nn.Module, hidden: torch.Tensor, batch: dict[str, torch.Tensor],
               pooling: str) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def predict_batch(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        raise NotImplementedError

    def score(self, preds: list[Any], split: Any, card: Any) -> dict[str, float]:
        raise NotImplementedError

    def majority(self, train: Any, test: Any, card: Any) -> dict[str, float] | None:
        """Score of the trivial baseline (most frequent label); None where undefined."""
        return None

    def zero_shot_compatible(self, source: Any, target: Any) -> bool:
        """Whether a head trained on ``source`` can score ``target`` directly."""
        return False

    def export(self, preds: list[Any], split: Any, card: Any, lang: str, out_dir: Path) -> None:
        """Write one language's predictions. A card with ``xtreme_task`` gets the official
        layout (``out_dir/<task>/test-<lang>.<ext>``, gold labels next to it under
        ``<out_dir>/../labels``), so that ``python -m itt.metrics.xtreme_r`` scores a run."""
        from itt.tasks.common import labels_dir, write_local, xtreme_task

        task = xtreme_task(card)
        if task is not None:
            from itt.metrics.xtreme_files import write_predictions

            write_predictions(out_dir, task, lang, preds)
            self.export_labels(split, card, lang, labels_dir(out_dir))
            return
        write_local(out_dir, lang, "tsv", "".join(f"{p}\n" for p in preds))

    def export_labels(self, split: Any, card: Any, lang: str, out_dir: Path) -> None:
        """Write the gold labels of one language in the XTREME layout (cards with
        ``xtreme_task`` only). The default covers classification: label names by index."""
        from itt.tasks.common import xtreme_task

        task = xtreme_task(card)
        labels = getattr(split, "labels", None)
        if task is None or labels is None or not card.labels:
            return
        from itt.metrics.xtreme_files import write_labels

        write_labels(out_dir, task, lang, [card.labels[int(x)] for x in labels])


def label_indices(card: Any, values: list[Any], where: str, what: str = "label") -> list[int]:
    """Map raw label values (names, indices, or values under ``card.label_map``) to indices
    into ``card.labels``; a value outside the label set names the row and the value."""
    names = card.labels or []
    index = {n: i for i, n in enumerate(names)}
    label_map = card.label_map or {}
    out = []
    for i, v in enumerate(values):
        key = v
        if label_map:
            key = label_map.get(str(v), label_map.get(str(v).strip(), v))
        if isinstance(key, str) and key in index:
            out.append(index[key])
            continue
        if not isinstance(key, bool) and isinstance(key, (int, np.integer)) and str(key) not in index \
                and 0 <= int(key) < len(names):
            out.append(int(key))
            continue
        if isinstance(key, float) and key.is_integer() and str(key) not in index and 0 <= key < len(names):
            out.append(int(key))
            continue
        if str(key) in index:
            out.append(index[str(key)])
            continue
        raise DataError(f"Task '{card.name}': {where} row {i} has {what} {v!r}, which is not in the "
                        f"card's label set {names}" + (f" (after label_map {label_map})" if label_map else "")
                        + f". Fix the row or the card's labels/label_map in conf/task/{card.name}.yaml.")
    return out


def require_columns(card: Any, ds: Any, needed: list[str], where: str) -> None:
    absent = [c for c in needed if c not in ds.column_names]
    if absent:
        raise DataError(f"Task '{card.name}': {where} has no column(s) {absent}; it has "
                        f"{ds.column_names}. Set columns in conf/task/{card.name}.yaml.")
