"""The split protocol of a task card: its fractions, where validation comes from, its summary.

A card's ``split`` block (docs/schemas.md)::

    split:
      protocol: ratio          # ratio: pool the dataset's splits and re-split them (seeded)
                               # given: use the dataset's own splits (split.splits names them)
      train_fraction: 0.7      # ratio: the training part of the pool
      test_fraction: 0.3       # ratio: the test part (default: what the other parts leave)
      validation_fraction: 0.1 # the validation part, a fraction of what validation_from names
      validation_from: train   # ratio: train (carved out of the training part) | pool
                               # given: split (the dataset's validation split) | train

With ``protocol: ratio`` and ``validation_from: train`` (the default) the pool is cut into
``train_fraction`` and ``test_fraction`` and validation is ``validation_fraction`` *of the
training part*: 0.7 / 0.1 gives 63% training rows, 7% validation, 30% test. With
``validation_from: pool`` the three parts are fractions of the pool (0.7 / 0.1 / 0.2 gives
exactly 70% training rows). With ``protocol: given`` the dataset's validation split is used
when ``split.splits`` names one (``validation_from: split``), else ``validation_fraction`` of
the training split is carved out (``validation_from: train``). The same seed gives the same
row indices in every language, so a parallel corpus never leaks a translation of a training
row into a test set.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from itt.errors import ConfigError

PROTOCOLS = ("ratio", "given")
VALIDATION_FROM = {"ratio": ("train", "pool"), "given": ("split", "train")}
_EPS = 1e-9


def _fraction(name: str, split: dict[str, Any], key: str, default: float,
              allow_zero: bool = False) -> float:
    value = split.get(key, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Task card '{name}': split.{key} must be a number, got {value!r}.") from None
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        bound = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"Task card '{name}': split.{key} must be in {bound}, got {value} "
                          f"(conf/task/{name}.yaml).")
    return value


def resolve(name: str, split: dict[str, Any]) -> dict[str, Any]:
    """The card's split block, checked, with every fraction and ``validation_from`` filled in."""
    split = dict(split or {})
    protocol = split.get("protocol", "ratio")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"Task card '{name}': split.protocol must be 'ratio' or 'given', "
                          f"not '{protocol}'.")
    split["protocol"] = protocol
    splits = split.get("splits") or {}
    no_val_split = "validation" in splits and splits["validation"] in (None, "none")
    default_from = "train" if protocol == "ratio" or no_val_split else "split"
    source = split.get("validation_from") or default_from
    if source not in VALIDATION_FROM[protocol]:
        raise ConfigError(f"Task card '{name}': split.validation_from must be one of "
                          f"{', '.join(VALIDATION_FROM[protocol])} with protocol '{protocol}', "
                          f"not '{source}' (conf/task/{name}.yaml).")
    split["validation_from"] = source
    split["validation_fraction"] = _fraction(name, split, "validation_fraction", 0.1, allow_zero=True)
    if protocol == "given":
        return split
    train = _fraction(name, split, "train_fraction", 0.7)
    val_of_pool = split["validation_fraction"] if source == "pool" else 0.0
    rest = 1.0 - train - val_of_pool
    test = split.get("test_fraction")
    test = rest if test is None else _fraction(name, split, "test_fraction", rest)
    if rest <= _EPS or abs(train + val_of_pool + test - 1.0) > 1e-6:
        if source == "pool":
            parts, got = "train_fraction + validation_fraction + test_fraction", f"{train} + {val_of_pool} + {test}"
        else:
            parts, got = "train_fraction + test_fraction", f"{train} + {test}"
        raise ConfigError(f"Task card '{name}': {parts} must be 1 (validation_from: {source}), got "
                          f"{got}; fix split in conf/task/{name}.yaml.")
    split["train_fraction"] = train
    split["test_fraction"] = test
    return split


def summary(name: str, split: dict[str, Any]) -> dict[str, Any]:
    """What result.json records about the split: the protocol, the fractions of the card,
    the share of the data that ends in each part (``ratio``), and one line of prose."""
    s = resolve(name, split)
    out: dict[str, Any] = {"protocol": s["protocol"], "validation_from": s["validation_from"],
                           "validation_fraction": s["validation_fraction"]}
    if s["protocol"] == "given":
        names = {"train": "train", "validation": "validation", "test": "test", **(s.get("splits") or {})}
        out["splits"] = {k: v for k, v in names.items() if v not in (None, "none")}
        if s["validation_from"] == "split":
            out["text"] = (f"the dataset's own splits: train '{names['train']}', validation "
                           f"'{names['validation']}' ({s['validation_fraction']:.0%} of train carved "
                           f"out, seeded, where the dataset has no such split), test '{names['test']}'")
        else:
            out["text"] = (f"the dataset's own splits: train '{names['train']}' less "
                           f"{s['validation_fraction']:.0%} carved out (seeded) for validation, test "
                           f"'{names['test']}'")
        return out
    train, val, test = s["train_fraction"], s["validation_fraction"], s["test_fraction"]
    if s["validation_from"] == "train":
        shares = {"train": train * (1 - val), "validation": train * val, "test": test}
        how = f"validation = {val:.0%} of the {train:.0%} training part"
    else:
        shares = {"train": train, "validation": val, "test": test}
        how = "validation drawn from the pool"
    out.update(train_fraction=train, test_fraction=test,
               shares={k: round(v, 6) for k, v in shares.items()})
    out["text"] = (f"seeded re-split of the pooled data: {shares['train']:.0%} train, "
                   f"{shares['validation']:.0%} validation, {shares['test']:.0%} test ({how})")
    return out


def ratio_indices(n: int, name: str, split: dict[str, Any], seed: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) row indices of a pool of ``n`` rows under ``protocol: ratio``."""
    s = resolve(name, split)
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(n * s["train_fraction"]))
    if s["validation_from"] == "train":
        # The original protocol: the seeded 70/30 cut, validation taken from the front of the
        # training part (the same rows as before validation_from existed).
        train_idx, test_idx = perm[:n_train], perm[n_train:]
        n_val = int(round(len(train_idx) * s["validation_fraction"]))
        return train_idx[n_val:], train_idx[:n_val], test_idx
    n_val = int(round(n * s["validation_fraction"]))
    n_test = int(round(n * s["test_fraction"]))
    n_val = min(n_val, n - n_train)
    n_test = min(n_test, n - n_train - n_val)
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:n_train + n_val + n_test]


def carve_validation(n: int, name: str, split: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, train) row indices carved out of a given training split of ``n`` rows."""
    s = resolve(name, split)
    n_val = int(round(n * s["validation_fraction"]))
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:n_val], perm[n_val:]
