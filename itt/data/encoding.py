"""The encoding stack of every task type: normalised rows to token arrays, cached by content.

* **Ragged arrays** — variable-length sequences stored flat with offsets (:func:`pack`,
  :func:`ragged_arrays`), so that an encoded split is a handful of numpy arrays that is
  cached as one ``.npz`` file; :class:`RaggedSplit` is an encoded split whose items are such
  sequences, :class:`TokenizedSplit` the one of the sequence types (one label per item).
* **The cache** — a split is encoded once per (tokenizer, max_length, the type's settings,
  content) under ``<cache_dir>/tokenized/<key>.npz`` (:func:`cached_arrays`,
  :func:`encode_cached`), so a rerun of a cell, or another cell on the same data, loads it
  instead of encoding again. The tokenizer is named by its serialised state
  (:func:`tokenizer_fingerprint`) and the rows by their values (:func:`content_fingerprint`),
  never by names or paths.
* **Encoding with truncation accounting** — :func:`encode_truncating` encodes texts or text
  pairs whole and again, truncated, only those longer than ``max_length``, and says which;
  :func:`quiet_transformers` keeps transformers' "longer than the maximum" notes out.
* **Special-token templates** — learnt from an encoding of a dummy pair
  (:func:`special_template`), so that sequences built from pieces (QA windows) get exactly
  the layout the tokenizer itself gives ([CLS] A [SEP] B [SEP], <s> A </s></s> B </s>,
  A <sep> B <sep> <cls>).

Sequences are kept unpadded here: :mod:`itt.data.batching` pads each batch.
"""
from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from itt.utils import atomic_file, move_aside, stable_hash

log = logging.getLogger(__name__)

#: Bump when the layout of a cached encoding of the XTREME types changes.
CACHE_VERSION = 1
#: Rows encoded per tokenizer call by :func:`tokenize_split` (bounds the tokenizer's memory).
CHUNK_ROWS = 2048


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


def pack_types(types: Sequence[Sequence[int] | None] | None) -> np.ndarray | None:
    """Token type ids packed like the ids (int8), or None where there are none or all are 0."""
    if not types or types[0] is None or not any(any(t) for t in types):
        return None
    return pack(types, np.int8)[0]


def ragged_arrays(seqs: Iterable[Sequence[int]], types: Sequence[Sequence[int] | None] | None, truncated: int,
                  offsets_key: str = "offsets") -> dict[str, np.ndarray]:
    """The cached form of token id sequences: ``ids``, their offsets, ``truncated`` and,
    where any is non-zero, ``types``."""
    ids, offsets = pack(seqs, np.int32)
    arrays = {"ids": ids, offsets_key: offsets, "truncated": np.array([truncated])}
    packed = pack_types(types)
    if packed is not None:
        arrays["types"] = packed
    return arrays


class EncodedSplit(Protocol):
    """What every task type's encoded split offers the loaders and the cell."""

    truncated: int

    def __len__(self) -> int: ...

    @property
    def lengths(self) -> np.ndarray: ...

    def item(self, i: int) -> tuple[Any, Any, Any]: ...


@dataclass
class RaggedSplit:
    """An encoded split whose items are token id sequences stored flat with offsets.

    Subclasses add what an item carries besides its tokens (:meth:`target`) and the
    structure their scoring needs."""

    ids: np.ndarray            # int32 token ids, flat
    offsets: np.ndarray        # int64, one entry per item + 1
    types: np.ndarray | None   # token type ids, same layout as ids, or None
    truncated: int = field(default=0, kw_only=True)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def span(self, i: int) -> slice:
        """Where item ``i`` lies in the flat (per-token) arrays."""
        return slice(self.offsets[i], self.offsets[i + 1])

    def target(self, i: int) -> Any:
        raise NotImplementedError

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray | None, Any]:
        s = self.span(i)
        return self.ids[s], (self.types[s] if self.types is not None else None), self.target(i)

    @staticmethod
    def ragged(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """The fields of this class from arrays written by :func:`ragged_arrays`."""
        return {"ids": arrays["ids"], "offsets": arrays["offsets"], "types": arrays.get("types"),
                "truncated": int(arrays["truncated"][0])}


@dataclass
class TokenizedSplit(RaggedSplit):
    """The encoded split of a sequence type: one token sequence and one label per item."""

    labels: np.ndarray         # int64 (classes) or float (regression)

    def target(self, i: int) -> Any:
        return self.labels[i]

    def arrays(self) -> dict[str, np.ndarray]:
        """The cached form (see :func:`ragged_arrays`) plus ``labels``."""
        out = {"ids": self.ids, "offsets": self.offsets, "labels": self.labels,
               "truncated": np.array([self.truncated])}
        if self.types is not None:
            out["types"] = self.types
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "TokenizedSplit":
        return cls(**cls.ragged(arrays), labels=arrays["labels"])

    @classmethod
    def load(cls, path: Path) -> "TokenizedSplit":
        """A split from its cache file."""
        return cls.from_arrays(read_arrays(path))


# --------------------------------------------------------------------------------------
# Fingerprints and the cache
# --------------------------------------------------------------------------------------

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
    is what keeps a cache hit cheap; anything else, or a column type not handled there (list
    columns), is hashed value by value.
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


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` cache file."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def cached_arrays(cache_dir: str | Path | None, key_parts: list[Any], name: str,
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()`` once per key (the hash of ``key_parts``); later calls load the arrays from
    ``<cache_dir>/tokenized/<key>.npz``. An unreadable entry is logged, moved aside and built again; a
    new entry is written whole or not at all."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "tokenized" / f"{stable_hash(key_parts)}.npz"
        if path.exists():
            try:
                arrays = read_arrays(path)
                log.info("Encoded %s loaded from cache", name)
                return arrays
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                move_aside(path, f"unreadable: {exc}")
    arrays = build()
    if path is not None:
        with atomic_file(path, "wb") as f:
            np.savez(f, **arrays)
    return arrays


def encode_cached(kind: str, ds: Any, columns: list[str], tokenizer: Any, max_length: int,
                  cache_dir: str | Path | None, name: str, build: Callable[[], dict[str, np.ndarray]],
                  settings: Sequence[Any] = ()) -> dict[str, np.ndarray]:
    """:func:`cached_arrays` keyed by the task ``kind``, the tokenizer, ``max_length``, the
    type's other encoding ``settings`` and the content of ``columns`` of ``ds``."""
    return cached_arrays(cache_dir, [CACHE_VERSION, kind, tokenizer_fingerprint(tokenizer), max_length,
                                     *settings, content_fingerprint(ds, columns)], name, build)


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------

@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Only errors from transformers' logger inside the block (e.g. no "sequence longer than
    the model's maximum" warning for text that is about to be truncated)."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)


def encode_truncating(tokenizer: Any, firsts: list[str], seconds: list[str] | None, max_length: int
                      ) -> tuple[list[list[int]], list[list[int]] | None, list[int]]:
    """Token ids and token types (None where the tokenizer gives none) of texts or text
    pairs, with special tokens; the sequences longer than ``max_length`` are encoded again
    truncated (longest first). Also returns the indices of those."""
    if not firsts:
        return [], None, []
    full = tokenizer(firsts, seconds, add_special_tokens=True, truncation=False, return_attention_mask=False)
    ids = list(full["input_ids"])
    types = full.get("token_type_ids")
    types = list(types) if types is not None else None
    long = [j for j, x in enumerate(ids) if len(x) > max_length]
    if long:
        short = tokenizer([firsts[j] for j in long], [seconds[j] for j in long] if seconds is not None else None,
                          truncation="longest_first", max_length=max_length, return_attention_mask=False)
        for k, j in enumerate(long):
            ids[j] = short["input_ids"][k]
            if types is not None:
                types[j] = short["token_type_ids"][k]
    return ids, types, long


def tokenize_split(ds: Any, tokenizer: Any, max_length: int, cache_dir: str | Path | None,
                   text_columns: list[str], name: str = "") -> TokenizedSplit:
    """The sequence types' encoding: one or two text columns and ``label`` of ``ds``
    (normalised rows), encoded or loaded from the cache."""

    def build() -> dict[str, np.ndarray]:
        ids: list[list[int]] = []
        types: list[list[int]] | None = []
        long = 0
        columns = [ds[c] for c in text_columns]
        with quiet_transformers():
            for start in range(0, len(ds), CHUNK_ROWS):
                chunk = [col[start:start + CHUNK_ROWS] for col in columns]
                got, got_types, got_long = encode_truncating(tokenizer, chunk[0], chunk[1] if len(chunk) > 1 else None,
                                                             max_length)
                ids += got
                long += len(got_long)
                if got_types is None:
                    types = None
                elif types is not None:
                    types += got_types
        if long:
            log.warning("%s: %d of %d sequences truncated to max_length=%d", name, long, len(ds), max_length)
        else:
            log.info("%s: tokenized %d rows, none truncated (max_length=%d)", name, len(ds), max_length)
        arrays = ragged_arrays(ids, types, long)
        arrays["labels"] = np.asarray(ds["label"])
        return arrays

    # The key has no CACHE_VERSION: it is the one sequence-type entries have always had.
    key = [tokenizer_fingerprint(tokenizer), max_length, text_columns,
           content_fingerprint(ds, text_columns + ["label"])]
    return TokenizedSplit.from_arrays(cached_arrays(cache_dir, key, name, build))


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
