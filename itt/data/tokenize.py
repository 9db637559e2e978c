"""Tokenization with a content-addressed cache and truncation accounting.

A split is tokenized once per (tokenizer, max_length, content) and stored as flat numpy
arrays, so a rerun of a cell, or another cell on the same data, loads it instead of
tokenizing again. Sequences are kept unpadded: batches are padded per batch.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from itt.utils import stable_hash

log = logging.getLogger(__name__)


@dataclass
class TokenizedSplit:
    """Unpadded token ids of one split, stored flat with offsets."""

    ids: np.ndarray          # int32, all sequences concatenated
    types: np.ndarray | None  # token type ids, same layout, or None
    offsets: np.ndarray      # int64, len n+1
    labels: np.ndarray       # int64 or float32
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray | None, Any]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], (self.types[a:b] if self.types is not None else None), self.labels[i]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        arrays = {"ids": self.ids, "offsets": self.offsets, "labels": self.labels,
                  "truncated": np.array([self.truncated])}
        if self.types is not None:
            arrays["types"] = self.types
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "TokenizedSplit":
        with np.load(path, allow_pickle=False) as z:
            return cls(ids=z["ids"], types=z["types"] if "types" in z else None, offsets=z["offsets"],
                       labels=z["labels"], truncated=int(z["truncated"][0]))


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Identifies a tokenizer by its full serialised state, not by its name.

    Serialising the state (vocabulary included) costs a tenth of a second for a large
    vocabulary, so the result is kept on the tokenizer object, keyed by the things that
    can change after loading (added tokens, padding and truncation sides).
    """
    marker = (len(tokenizer), tokenizer.padding_side, tokenizer.truncation_side)
    cached = getattr(tokenizer, "_itt_fingerprint", None)
    if cached is not None and cached[0] == marker:
        return cached[1]
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        import json

        data = json.loads(backend.to_str())
        # Truncation/padding settings change with each call; they are not part of the vocabulary.
        data.pop("truncation", None)
        data.pop("padding", None)
        state = json.dumps(data, sort_keys=True)
    else:  # pragma: no cover - every tokenizer used here is tokenizers-backed
        state = repr(sorted(tokenizer.get_vocab().items()))
    fp = hashlib.sha256(f"{state}|{tokenizer.padding_side}|{tokenizer.truncation_side}".encode()).hexdigest()[:16]
    try:
        tokenizer._itt_fingerprint = (marker, fp)
    except AttributeError:  # pragma: no cover - a tokenizer that refuses new attributes
        pass
    return fp


def _hash_arrow(h: Any, arr: Any) -> bool:
    """Feed one Arrow column to ``h`` from its buffers; False when its type is not handled."""
    import pyarrow as pa

    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    t = arr.type
    h.update(str(t).encode())
    h.update(len(arr).to_bytes(8, "little"))
    if arr.null_count:
        h.update(np.asarray(arr.is_null()).tobytes())
        arr = arr.fill_null("" if (pa.types.is_string(t) or pa.types.is_large_string(t)) else 0)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        # Offsets account for slicing but are not rebased; lengths plus the covered bytes
        # identify the values whatever the array's offset in its buffers.
        width = np.int64 if pa.types.is_large_string(t) else np.int32
        offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset:arr.offset + len(arr) + 1]
        h.update(np.diff(offsets).astype(np.int64).tobytes())
        data = arr.buffers()[2]
        if data is not None and len(offsets):
            h.update(memoryview(data)[int(offsets[0]):int(offsets[-1])])
        return True
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        h.update(np.ascontiguousarray(arr.to_numpy(zero_copy_only=False)).tobytes())
        return True
    return False


def content_fingerprint(ds: Any, columns: list[str]) -> str:
    """Hash of the values of ``columns``, row order included.

    A ``datasets.Dataset`` is hashed from its Arrow buffers (after its index mapping), which
    is what keeps a cache hit cheap; anything else, or a column type not handled there, is
    hashed value by value.
    """
    h = hashlib.sha256()
    table = None
    if hasattr(ds, "with_format") and hasattr(ds, "column_names"):
        try:
            table = ds.with_format("arrow", columns=list(columns))[:]
        except Exception:  # noqa: BLE001 - fall back to the value-by-value path
            table = None
    for col in columns:
        h.update(col.encode())
        h.update(b"\x01")
        if table is not None and _hash_arrow(h, table.column(col)):
            continue
        h.update(b"\x02")
        for v in ds[col]:
            h.update(str(v).encode("utf-8"))
            h.update(b"\x00")
    return h.hexdigest()[:16]


def _encode(tokenizer: Any, texts: list[list[str]], max_length: int | None) -> dict[str, list]:
    kwargs: dict[str, Any] = {"add_special_tokens": True, "return_attention_mask": False}
    if max_length is None:
        kwargs["truncation"] = False
    else:
        kwargs.update(truncation="longest_first" if len(texts) == 2 else True, max_length=max_length)
    return tokenizer(*texts, **kwargs)


def tokenize_split(ds: Any, tokenizer: Any, max_length: int, cache_dir: str | Path | None,
                   text_columns: list[str], name: str = "") -> TokenizedSplit:
    """Tokenize ``ds`` (normalised rows) or load it from the cache."""
    path = None
    if cache_dir is not None:
        key = stable_hash([tokenizer_fingerprint(tokenizer), max_length, text_columns,
                           content_fingerprint(ds, text_columns + ["label"])])
        path = Path(cache_dir) / "tokenized" / f"{key}.npz"
        if path.exists():
            try:
                out = TokenizedSplit.load(path)
                log.info("Tokenized %s loaded from cache (%d rows)", name, len(out))
                return out
            except (OSError, ValueError, KeyError) as exc:
                log.warning("Ignoring unreadable tokenization cache %s: %s", path, exc)
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # silence "sequence longer than max" notes
    try:
        ids_all: list[list[int]] = []
        types_all: list[list[int]] | None = []
        truncated = 0
        n = len(ds)
        columns = [ds[c] for c in text_columns]
        for start in range(0, n, 2048):
            chunk = [col[start:start + 2048] for col in columns]
            enc = _encode(tokenizer, chunk, None)
            ids, types = enc["input_ids"], enc.get("token_type_ids")
            long = [i for i, x in enumerate(ids) if len(x) > max_length]
            if long:
                truncated += len(long)
                enc2 = _encode(tokenizer, [[c[i] for i in long] for c in chunk], max_length)
                for j, i in enumerate(long):
                    ids[i] = enc2["input_ids"][j]
                    if types is not None:
                        types[i] = enc2["token_type_ids"][j]
            ids_all.extend(ids)
            if types is None:
                types_all = None
            elif types_all is not None:
                types_all.extend(types)
    finally:
        transformers.logging.set_verbosity(verbosity)
    lengths = np.fromiter((len(x) for x in ids_all), dtype=np.int64, count=len(ids_all))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.fromiter((t for x in ids_all for t in x), dtype=np.int32, count=int(offsets[-1]))
    flat_types = None
    if types_all is not None and any(any(t) for t in types_all):
        flat_types = np.fromiter((t for x in types_all for t in x), dtype=np.int8, count=int(offsets[-1]))
    labels = np.asarray(ds["label"])
    out = TokenizedSplit(ids=flat, types=flat_types, offsets=offsets, labels=labels, truncated=truncated)
    if truncated:
        log.warning("%s: %d of %d sequences truncated to max_length=%d", name, truncated, n, max_length)
    else:
        log.info("%s: tokenized %d rows, none truncated (max_length=%d)", name, n, max_length)
    if path is not None:
        out.save(path)
    return out
