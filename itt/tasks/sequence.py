"""Sequence-level tasks: single-text classification, text-pair classification and
text-pair regression (similarity). A head on the pooled sequence representation."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from itt.data.batching import Collator
from itt.data.encoding import tokenize_split
from itt.errors import DataError
from itt.metrics.task_metrics import compute
from itt.models.heads import SequenceHead, pool
from itt.tasks.base import TaskType, label_indices, require_columns


class SequenceClassification(TaskType):
    name = "sequence_classification"
    regression = False

    def _out_columns(self, card: Any) -> list[str]:
        return ["text"] if len(card.text_columns) == 1 else ["text_a", "text_b"]

    def normalise(self, card: Any, ds: Any, where: str) -> Any:
        import datasets

        cols = card.text_columns
        if len(cols) not in (1, 2):
            raise DataError(f"Task '{card.name}': columns.text must name one or two columns, got {cols}.")
        require_columns(card, ds, cols + [card.label_column], where)
        out_names = self._out_columns(card)
        data: dict[str, list] = {}
        for src, dst in zip(cols, out_names):
            values = ds[src]
            bad = [i for i, v in enumerate(values) if v is None]
            if bad:
                raise DataError(f"Task '{card.name}': {where} row {bad[0]} has an empty '{src}' value.")
            data[dst] = [str(v) for v in values]
        data["label"] = self._labels(card, ds[card.label_column], where)
        features = {n: datasets.Value("string") for n in out_names}
        features["label"] = datasets.Value("float32" if self.regression else "int64")
        return datasets.Dataset.from_dict(data, features=datasets.Features(features))

    def _labels(self, card: Any, values: list[Any], where: str) -> list[Any]:
        return label_indices(card, values, where)

    def encode(self, ds: Any, tokenizer: Any, card: Any, max_length: int, cache_dir: str | Path | None,
               name: str) -> Any:
        return tokenize_split(ds, tokenizer, max_length, cache_dir, self._out_columns(card), name)

    def collator(self, tokenizer: Any, card: Any) -> Collator:
        return Collator(tokenizer.pad_token_id, tokenizer.padding_side, regression=self.regression)

    def head(self, hidden: int, card: Any, dropout: float) -> nn.Module:
        head = SequenceHead(hidden, 1 if self.regression else card.num_labels, dropout)
        if self.regression:
            # The head's output 0 is the middle of the card's label range and +-1 its ends, so
            # a fresh head starts at the mid-range score instead of 0 (an Adam step moves a
            # bias by about the learning rate: from 0 to a 0-5 scale's 2.5 takes thousands).
            lo, hi = card.label_range or (-1.0, 1.0)
            head.center, head.scale = (float(lo) + float(hi)) / 2.0, (float(hi) - float(lo)) / 2.0
        return head

    def logits(self, head: nn.Module, hidden: torch.Tensor, batch: dict[str, torch.Tensor],
               pooling: str) -> torch.Tensor:
        out = head(pool(hidden, batch["attention_mask"], pooling))
        if self.regression:
            return getattr(head, "center", 0.0) + getattr(head, "scale", 1.0) * out.squeeze(-1)
        return out

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.float(), batch["labels"])

    def predict_batch(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        return logits.argmax(-1).tolist()

    def score(self, preds: list[Any], split: Any, card: Any) -> dict[str, float]:
        p = torch.as_tensor(preds)
        return compute(card.metrics, p, torch.as_tensor(split.labels).to(p.dtype), card.num_labels)

    def majority(self, train: Any, test: Any, card: Any) -> dict[str, float] | None:
        const = int(np.bincount(np.asarray(train.labels), minlength=card.num_labels).argmax())
        return self.score([const] * len(test), test, card)

    def zero_shot_compatible(self, source: Any, target: Any) -> bool:
        return source.type in ("single_text_classification", "text_pair_classification") and \
            source.type == target.type and list(source.labels or []) == list(target.labels or [])

    def export(self, preds: list[Any], split: Any, card: Any, lang: str, out_dir: Path) -> None:
        super().export([card.labels[int(p)] for p in preds], split, card, lang, out_dir)


class SequenceRegression(SequenceClassification):
    name = "sequence_regression"
    regression = True

    def _labels(self, card: Any, values: list[Any], where: str) -> list[Any]:
        out = []
        lo, hi = (card.label_range or [None, None])
        for i, v in enumerate(values):
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise DataError(f"Task '{card.name}': {where} row {i} has label {v!r}, not a number "
                                f"(a regression task).") from None
            if not np.isfinite(x) or (lo is not None and not lo <= x <= hi):
                raise DataError(f"Task '{card.name}': {where} row {i} has label {v!r} outside the "
                                f"label range {card.label_range} of conf/task/{card.name}.yaml.")
            out.append(x)
        return out

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.mse_loss(logits.float(), batch["labels"].float())

    def predict_batch(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        return logits.float().tolist()

    def score(self, preds: list[Any], split: Any, card: Any) -> dict[str, float]:
        return compute(card.metrics, torch.tensor(preds, dtype=torch.float32),
                       torch.as_tensor(split.labels, dtype=torch.float32), 1)

    def majority(self, train: Any, test: Any, card: Any) -> dict[str, float] | None:
        # The training mean: a constant, so correlations are undefined (reported as null).
        return self.score([float(np.mean(train.labels))] * len(test), test, card)

    def zero_shot_compatible(self, source: Any, target: Any) -> bool:
        return source.type == target.type == "text_pair_regression"

    def export(self, preds: list[Any], split: Any, card: Any, lang: str, out_dir: Path) -> None:
        TaskType.export(self, [f"{float(p):.6f}" for p in preds], split, card, lang, out_dir)
