"""LogME: the log of the maximum evidence of a Bayesian linear model on frozen features.

Follows You et al. (2021), "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML, Algorithm 1: for features ``F`` (n x D) and one target column ``y``, the
model ``y = F w + e`` with prior ``w ~ N(0, I/alpha)`` and noise ``e ~ N(0, I/beta)`` has the
marginal likelihood (evidence) ``p(y | F, alpha, beta) = N(y; 0, F F^T / alpha + I / beta)``.
``alpha`` and ``beta`` are set by MacKay's fixed-point iteration, computed on the singular
values of ``F`` (one SVD serves every target column), and LogME is the maximised log
evidence divided by ``n``. Classification uses one-hot label columns, regression each
target dimension, and the score is the mean over the columns (the paper's Section 4.2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from itt.errors import DataError


@dataclass
class Evidence:
    """The fixed point of one target column."""

    alpha: float
    beta: float
    log_evidence: float     # log p(y | F, alpha, beta), not divided by n
    iterations: int


def _spectrum(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(U, s) of the thin SVD of the features, zero singular values dropped."""
    u, s, _ = np.linalg.svd(features, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(features.shape) * np.finfo(np.float64).eps
    return u[:, keep], s[keep]


def _fixed_point(x: np.ndarray, y2: float, sigma: np.ndarray, n: int, d: int,
                 tol: float, max_iter: int) -> Evidence:
    """MacKay's updates in the eigenbasis of F^T F. ``x`` = U^T y, ``y2`` = |y|^2,
    ``sigma`` = the nonzero eigenvalues of F^T F (squared singular values)."""
    x2 = x * x
    outside = max(y2 - float(x2.sum()), 0.0)      # the part of y outside F's column space
    alpha, beta = 1.0, 1.0
    it = 0
    for it in range(1, max_iter + 1):
        t = alpha + beta * sigma
        gamma = float((beta * sigma / t).sum())
        m2 = float((beta * beta * sigma * x2 / (t * t)).sum())          # |m|^2
        res2 = float(((alpha * x / t) ** 2).sum()) + outside           # |F m - y|^2
        new_alpha = gamma / max(m2, 1e-300)
        new_beta = (n - gamma) / max(res2, 1e-300)
        done = abs(new_alpha - alpha) / alpha < tol and abs(new_beta - beta) / beta < tol
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return Evidence(alpha, beta, log_evidence(x, y2, sigma, n, d, alpha, beta), it)


def log_evidence(x: np.ndarray, y2: float, sigma: np.ndarray, n: int, d: int,
                 alpha: float, beta: float) -> float:
    """log p(y | F, alpha, beta) from the spectrum (see the module docstring)."""
    t = alpha + beta * sigma
    m2 = float((beta * beta * sigma * x * x / (t * t)).sum())
    res2 = float(((alpha * x / t) ** 2).sum()) + max(y2 - float((x * x).sum()), 0.0)
    log_det_a = float(np.log(t).sum()) + (d - len(sigma)) * math.log(alpha)  # log|alpha I + beta F^T F|
    return (d / 2 * math.log(alpha) + n / 2 * math.log(beta) - n / 2 * math.log(2 * math.pi)
            - beta / 2 * res2 - alpha / 2 * m2 - log_det_a / 2)


def target_columns(labels: np.ndarray, num_classes: int | None) -> np.ndarray:
    """One column per class (one-hot) for classification, the target dimensions for
    regression."""
    labels = np.asarray(labels)
    if num_classes is not None:
        idx = labels.astype(np.int64)
        if idx.ndim != 1 or (idx != labels).any() or idx.min(initial=0) < 0 or idx.max(initial=0) >= num_classes:
            raise DataError(f"LogME: class labels must be integers in [0, {num_classes}).")
        return np.eye(num_classes, dtype=np.float64)[idx]
    y = labels.astype(np.float64)
    return y[:, None] if y.ndim == 1 else y


def logme(features: np.ndarray, labels: np.ndarray, num_classes: int | None = None, *,
          tol: float = 1e-5, max_iter: int = 100) -> float:
    """LogME of ``labels`` on ``features`` (n x D): the mean over target columns of the
    maximised log evidence divided by n. ``num_classes`` set: classification (labels are
    class indices); None: regression (labels are n or n x k values).

    Classes absent from ``labels`` are left out of the mean: their all-zero column would
    score the same for every feature set."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise DataError(f"LogME needs a 2-d feature matrix of at least 2 rows, got shape {f.shape}.")
    if not np.isfinite(f).all():
        raise DataError("LogME: the features hold NaN or infinite values.")
    y = target_columns(labels, num_classes)
    if len(y) != len(f):
        raise DataError(f"LogME: {len(f)} feature rows but {len(y)} labels.")
    n, d = f.shape
    u, s = _spectrum(f)
    sigma = s * s
    scores = []
    for k in range(y.shape[1]):
        col = y[:, k]
        if num_classes is not None and not col.any():
            continue
        if num_classes is None and not np.any(col != col[0]):
            raise DataError("LogME: a regression target is constant.")
        ev = _fixed_point(u.T @ col, float(col @ col), sigma, n, d, tol, max_iter)
        scores.append(ev.log_evidence / n)
    return float(np.mean(scores))


def fit_evidence(features: np.ndarray, y: np.ndarray, *, tol: float = 1e-5, max_iter: int = 100) -> Evidence:
    """The fixed point (alpha, beta, log evidence) of one target column."""
    f = np.asarray(features, dtype=np.float64)
    col = np.asarray(y, dtype=np.float64)
    u, s = _spectrum(f)
    return _fixed_point(u.T @ col, float(col @ col), s * s, f.shape[0], f.shape[1], tol, max_iter)
