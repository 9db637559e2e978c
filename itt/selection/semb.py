"""SEmb: how alike two datasets are, as the cosine similarity of their mean sentence
embeddings (Poth et al., 2021, "What to Pre-Train on? Efficient Intermediate Task Selection",
EMNLP, Section 3, "SEmb"; Vu et al., 2020's TextEmb is the same average-embedding idea).
The embedding of a text (or text pair) is the encoder's mean-pooled last layer."""
from __future__ import annotations

import numpy as np

from itt.errors import DataError


def dataset_embedding(features: np.ndarray) -> np.ndarray:
    """The mean of a dataset's sentence embeddings (n x H -> H)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or not len(f):
        raise DataError(f"SEmb needs a non-empty n x H feature matrix, got shape {f.shape}.")
    return f.mean(axis=0)


def semb(target: np.ndarray, candidate: np.ndarray) -> float:
    """Cosine similarity of the mean embeddings of two datasets (n x H and m x H)."""
    a, b = dataset_embedding(target), dataset_embedding(candidate)
    if a.shape != b.shape:
        raise DataError(f"SEmb: the two datasets have embeddings of width {a.shape[0]} and {b.shape[0]}.")
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        raise DataError("SEmb: a dataset's mean embedding is zero.")
    return float(a @ b / (na * nb))
