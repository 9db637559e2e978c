"""Linear-probe transfer: a linear model trained on the frozen features of the target's
training split, scored with the target's main metric on its validation split.

Classification: multinomial logistic regression with scikit-learn's default objective
(``C = 1``: summed cross-entropy plus half the squared weight norm, bias unpenalised),
minimised with scipy's L-BFGS. Regression: ridge regression (penalty 1) in closed form.
Features are standardised with the training split's mean and spread first.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from itt.errors import DataError


def _standardise(train: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd[sd == 0] = 1.0
    return (train - mu) / sd, (other - mu) / sd


def fit_logistic(x: np.ndarray, y: np.ndarray, num_classes: int, c: float = 1.0,
                 max_iter: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Weights (H x K) and bias (K) of L2-regularised multinomial logistic regression."""
    n, h = x.shape
    onehot = np.eye(num_classes)[y]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[:h * num_classes].reshape(h, num_classes)
        b = theta[h * num_classes:]
        z = x @ w + b
        lse = logsumexp(z, axis=1)
        loss = c * float((lse - (z * onehot).sum(1)).sum()) + 0.5 * float((w * w).sum())
        p = np.exp(z - lse[:, None])
        g = c * (p - onehot)
        grad = np.concatenate([(x.T @ g + w).ravel(), g.sum(0)])
        return loss, grad

    theta0 = np.zeros(h * num_classes + num_classes)
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return res.x[:h * num_classes].reshape(h, num_classes), res.x[h * num_classes:]


def fit_ridge(x: np.ndarray, y: np.ndarray, penalty: float = 1.0) -> tuple[np.ndarray, float]:
    """Weights and intercept of ridge regression (intercept unpenalised)."""
    mean_y = float(y.mean())
    a = x.T @ x + penalty * np.eye(x.shape[1])
    w = np.linalg.solve(a, x.T @ (y - mean_y))
    return w, mean_y


def probe_predictions(train_x: np.ndarray, train_y: np.ndarray, eval_x: np.ndarray,
                      num_classes: int | None) -> list:
    """Predictions on ``eval_x`` of a linear model fit on (train_x, train_y): class indices
    (``num_classes`` set) or values (regression)."""
    train_x = np.asarray(train_x, dtype=np.float64)
    eval_x = np.asarray(eval_x, dtype=np.float64)
    if len(train_x) < 2 or len(eval_x) < 1:
        raise DataError(f"Linear probe: needs 2+ training and 1+ evaluation rows, got {len(train_x)} and "
                        f"{len(eval_x)}.")
    tx, ex = _standardise(train_x, eval_x)
    if num_classes is not None:
        w, b = fit_logistic(tx, np.asarray(train_y, dtype=np.int64), num_classes)
        return (ex @ w + b).argmax(1).tolist()
    w, b0 = fit_ridge(tx, np.asarray(train_y, dtype=np.float64))
    return (ex @ w + b0).tolist()
