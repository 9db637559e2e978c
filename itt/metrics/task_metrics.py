"""Metrics per task type (torchmetrics), computed over a whole split at once."""
from __future__ import annotations

import math

import torch
from torchmetrics.functional import accuracy, f1_score, pearson_corrcoef, spearman_corrcoef

from itt.errors import ConfigError

KNOWN = ("accuracy", "macro_f1", "pearson", "spearman")


def compute(metrics: list[str], preds: torch.Tensor, labels: torch.Tensor, num_labels: int) -> dict[str, float]:
    """``preds``: class indices (classification) or scores (regression)."""
    out: dict[str, float] = {}
    for name in metrics:
        if name == "accuracy":
            out[name] = float(accuracy(preds, labels, task="multiclass", num_classes=max(num_labels, 2)))
        elif name == "macro_f1":
            out[name] = float(f1_score(preds, labels, task="multiclass", num_classes=max(num_labels, 2),
                                       average="macro"))
        elif name in ("pearson", "spearman"):
            p, t = preds.float(), labels.float()
            if len(p) < 2 or float(p.std()) == 0.0 or float(t.std()) == 0.0:
                out[name] = math.nan  # undefined for a constant prediction (e.g. the mean baseline)
            else:
                fn = pearson_corrcoef if name == "pearson" else spearman_corrcoef
                out[name] = float(fn(p, t))
        else:
            raise ConfigError(f"Unknown metric '{name}'; known: {', '.join(KNOWN)}.")
    return out
