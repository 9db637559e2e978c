"""The interface every task type implements.

Data flow for one split: ``normalise`` (raw dataset rows -> the type's normal form, labels
checked against the card) -> ``encode`` (token ids, cached; returns an object with
``__len__``, ``item(i)``, ``lengths`` and ``truncated``) -> batches from ``collator`` ->
``logits`` on the encoder's hidden states -> ``loss`` in training, ``predict_batch`` in
evaluation (one prediction per item, in item order) -> ``score`` over the whole split ->
``export`` in the XTREME folder layout.

The encoding and batching they use are :mod:`itt.data.encoding` and :mod:`itt.data.batching`
(one stack for every type); this module also holds the card helpers the types share (columns,
integer settings, the ``xtreme_task`` export location and prediction files).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from itt.data.encoding import EncodedSplit
from itt.errors import ConfigError, DataError


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
               name: str) -> EncodedSplit:
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


#: The task types import it under this name.
require = require_columns


def column(card: Any, key: str, default: str | None = None) -> str | None:
    """A column name from ``card.columns`` (``columns.<key>``), or the default."""
    value = (card.columns or {}).get(key, default)
    return value if value is None or isinstance(value, str) else str(value)


def card_int(card: Any, key: str, default: int) -> int:
    """A positive integer setting of a card (``<key>:`` at its top level), or the default."""
    value = (getattr(card, "extra", None) or {}).get(key, default)
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Task card '{card.name}': {key} must be an integer, got {value!r}.") from None
    if value <= 0:
        raise ConfigError(f"Task card '{card.name}': {key} must be positive, got {value}.")
    return value


# --------------------------------------------------------------------------------------
# XTREME export
# --------------------------------------------------------------------------------------

def xtreme_task(card: Any) -> str | None:
    """The XTREME registry name a card exports under (card field ``xtreme_task``)."""
    name = (getattr(card, "extra", None) or {}).get("xtreme_task")
    if not name:
        return None
    from itt.metrics.xtreme_tasks import TASKS

    if name not in TASKS:
        raise ConfigError(f"Task card '{card.name}': xtreme_task '{name}' is not an XTREME task; "
                          f"known: {', '.join(sorted(TASKS))}.")
    return str(name)


def labels_dir(out_dir: Path) -> Path:
    """``<run>/predictions/labels`` for ``out_dir`` = ``<run>/predictions/<tag>``."""
    return Path(out_dir).parent / "labels"


def write_xtreme(out_dir: Path, task: str, lang: str, preds: Any, gold: Any) -> None:
    """One language's predictions in the XTREME layout and its gold labels next to them."""
    from itt.metrics.xtreme_files import write_labels, write_predictions

    write_predictions(out_dir, task, lang, preds)
    write_labels(labels_dir(out_dir), task, lang, gold)


def write_local(out_dir: Path, lang: str, ext: str, text: str) -> None:
    """``out_dir/test-<lang>.<ext>`` for a card without ``xtreme_task``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"test-{lang}.{ext}").write_text(text, encoding="utf-8")
