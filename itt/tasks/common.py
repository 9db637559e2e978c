"""Helpers shared by the XTREME task types (multiple choice, tagging, span QA, retrieval).

* ragged arrays: variable-length sequences stored flat with offsets, so that an encoded
  split is a handful of numpy arrays that can be cached as one ``.npz`` file;
* a content-addressed encoding cache (same idea as :mod:`itt.data.tokenize`);
* the special-token template of a tokenizer, learnt by encoding a dummy pair, so that
  sequences built from pieces (QA windows) get exactly the layout the tokenizer itself
  would give them ([CLS] A [SEP] B [SEP], <s> A </s></s> B </s>, A <sep> B <sep> <cls>);
* padding of a batch on the tokenizer's padding side;
* the XTREME export location (``xtreme_task`` card field).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from itt.errors import ConfigError, DataError
from itt.utils import stable_hash

log = logging.getLogger(__name__)

#: Bump when the layout of a cached encoding changes.
CACHE_VERSION = 1


# --------------------------------------------------------------------------------------
# Ragged arrays
# --------------------------------------------------------------------------------------

def pack(seqs: Iterable[Sequence[Any]], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate sequences into one flat array plus ``len + 1`` offsets."""
    seqs = list(seqs)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.fromiter((x for s in seqs for x in s), dtype=dtype, count=int(offsets[-1]))
    return flat, offsets


def unpack(flat: np.ndarray, offsets: np.ndarray, i: int) -> np.ndarray:
    return flat[offsets[i]:offsets[i + 1]]


# --------------------------------------------------------------------------------------
# Encoding cache
# --------------------------------------------------------------------------------------

def tokenizer_key(tokenizer: Any) -> str:
    from itt.data.tokenize import tokenizer_fingerprint

    return tokenizer_fingerprint(tokenizer)


def rows_fingerprint(ds: Any, columns: list[str]) -> str:
    """Hash of the given columns of a normalised dataset (from Arrow buffers where it can;
    list columns value by value)."""
    from itt.data.tokenize import content_fingerprint

    return content_fingerprint(ds, columns)


def cached_arrays(cache_dir: str | Path | None, key_parts: list[Any], name: str,
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()`` once per key; later calls load the arrays from ``cache_dir``."""
    path = None
    if cache_dir is not None:
        key = stable_hash([CACHE_VERSION] + key_parts)
        path = Path(cache_dir) / "tokenized" / f"{key}.npz"
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
                log.info("Encoded %s loaded from cache", name)
                return arrays
            except (OSError, ValueError, KeyError) as exc:
                log.warning("Ignoring unreadable encoding cache %s: %s", path, exc)
    arrays = build()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    return arrays


# --------------------------------------------------------------------------------------
# Special-token templates
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    """Where the special tokens go around one or two sequences.

    ``parts`` is a list of ``("special", token_id, type_id)``, ``("A", None, type_id)`` or
    ``("B", None, type_id)``; ``with_types`` says whether the tokenizer returns token type
    ids at all (many do not; the encoder then gets none)."""

    parts: tuple[tuple[str, int | None, int], ...]
    with_types: bool

    @property
    def n_special(self) -> int:
        return sum(1 for kind, _, _ in self.parts if kind == "special")

    def build(self, a: Sequence[int], b: Sequence[int] | None = None
              ) -> tuple[list[int], list[int] | None, int, int]:
        """Token ids, token types, and where ``b`` starts and ends (end exclusive; -1
        when there is no ``b``)."""
        ids: list[int] = []
        types: list[int] = []
        b_start = b_end = -1
        for kind, tok, typ in self.parts:
            if kind == "special":
                ids.append(int(tok))
                types.append(typ)
            elif kind == "A":
                ids.extend(a)
                types.extend([typ] * len(a))
            else:
                if b is None:
                    raise ValueError("a pair template needs a second sequence")
                b_start = len(ids)
                ids.extend(b)
                types.extend([typ] * len(b))
                b_end = len(ids)
        return ids, (types if self.with_types else None), b_start, b_end


def special_template(tokenizer: Any, pair: bool) -> Template:
    """Learn the special-token layout from an encoding of a dummy (pair of) text(s)."""
    enc = tokenizer("a", "b") if pair else tokenizer("a")
    seq_ids = enc.sequence_ids(0)
    ids = enc["input_ids"]
    types = enc.get("token_type_ids")
    parts: list[tuple[str, int | None, int]] = []
    for pos, (sid, tok) in enumerate(zip(seq_ids, ids)):
        typ = int(types[pos]) if types is not None else 0
        if sid is None:
            parts.append(("special", int(tok), typ))
        else:
            kind = "A" if sid == 0 else "B"
            if not parts or parts[-1][0] != kind:
                parts.append((kind, None, typ))
    return Template(parts=tuple(parts), with_types=types is not None)


# --------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------

def pad_2d(seqs: Sequence[np.ndarray], pad: int, left: bool, width: int | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad sequences into ``[n, width]`` (and their attention mask) on one side."""
    n = len(seqs)
    width = width if width is not None else max((len(s) for s in seqs), default=1)
    width = max(width, 1)
    out = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, s in enumerate(seqs):
        k = len(s)
        if not k:
            continue
        sl = slice(width - k, width) if left else slice(0, k)
        out[i, sl] = torch.as_tensor(np.asarray(s, dtype=np.int64))
        mask[i, sl] = 1
    return out, mask


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


def card_int(card: Any, key: str, default: int) -> int:
    value = (getattr(card, "extra", None) or {}).get(key, default)
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Task card '{card.name}': {key} must be an integer, got {value!r}.") from None
    if value <= 0:
        raise ConfigError(f"Task card '{card.name}': {key} must be positive, got {value}.")
    return value


def column(card: Any, key: str, default: str | None = None) -> str | None:
    """A column name from ``card.columns`` (``columns.<key>``), or the default."""
    value = (card.columns or {}).get(key, default)
    return value if value is None or isinstance(value, str) else str(value)


def require(card: Any, ds: Any, cols: list[str], where: str) -> None:
    absent = [c for c in cols if c not in ds.column_names]
    if absent:
        raise DataError(f"Task '{card.name}': {where} has no column(s) {absent}; it has "
                        f"{ds.column_names}. Set columns in conf/task/{card.name}.yaml.")
