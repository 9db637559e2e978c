"""Helpers shared by the XTREME task types (multiple choice, tagging, span QA, retrieval).

* ragged arrays: variable-length sequences stored flat with offsets, so that an encoded
  split is a handful of numpy arrays that can be cached as one ``.npz`` file, and
  :class:`RaggedSplit`, the encoded split whose items are such sequences;
* a content-addressed encoding cache (same idea as :mod:`itt.data.tokenize`), keyed by
  :func:`encode_cached` on the task kind, tokenizer, settings and the split's content;
* encoding with truncation accounting (:func:`encode_truncating`) and without
  transformers' warnings (:func:`quiet_transformers`);
* the special-token template of a tokenizer, learnt by encoding a dummy pair, so that
  sequences built from pieces (QA windows) get exactly the layout the tokenizer itself
  would give them ([CLS] A [SEP] B [SEP], <s> A </s></s> B </s>, A <sep> B <sep> <cls>);
* padding of a batch on the tokenizer's padding side (:class:`PadCollator`);
* the XTREME export location (``xtreme_task`` card field) and prediction files.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from itt.errors import ConfigError
from itt.tasks.base import require_columns as require  # re-exported: the task types import it from here
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


def encode_cached(kind: str, ds: Any, columns: list[str], tokenizer: Any, max_length: int,
                  cache_dir: str | Path | None, name: str, build: Callable[[], dict[str, np.ndarray]],
                  settings: Sequence[Any] = ()) -> dict[str, np.ndarray]:
    """:func:`cached_arrays` keyed by the task ``kind``, the tokenizer, ``max_length``, the
    type's other encoding ``settings`` and the content of ``columns`` of ``ds``."""
    return cached_arrays(cache_dir, [kind, tokenizer_key(tokenizer), max_length, *settings,
                                     rows_fingerprint(ds, columns)], name, build)


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
    full = tokenizer(firsts, seconds, add_special_tokens=True, truncation=False) if firsts else {"input_ids": []}
    ids = list(full["input_ids"])
    types = full.get("token_type_ids")
    types = list(types) if types is not None else None
    long = [j for j, x in enumerate(ids) if len(x) > max_length]
    if long:
        short = tokenizer([firsts[j] for j in long], [seconds[j] for j in long] if seconds is not None else None,
                          truncation="longest_first", max_length=max_length)
        for k, j in enumerate(long):
            ids[j] = short["input_ids"][k]
            if types is not None:
                types[j] = short["token_type_ids"][k]
    return ids, types, long


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


class PadCollator:
    """Base of the task types' collators: pads on the tokenizer's padding side, and every
    batch has the items' indices as ``batch["index"]`` (see :class:`itt.data.batching.Collator`)."""

    def __init__(self, pad_id: int, padding_side: str = "right") -> None:
        self.pad_id = pad_id
        self.left = padding_side == "left"

    @staticmethod
    def unzip(pairs: list[tuple[int, Any]]) -> tuple[torch.Tensor, list[Any]]:
        """The indices (a tensor) and the items of a list of (index, item)."""
        return torch.tensor([i for i, _ in pairs], dtype=torch.long), [item for _, item in pairs]

    def pad(self, seqs: Sequence[np.ndarray], value: int | None = None, width: int | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`pad_2d` on this collator's side, with the pad id unless ``value`` is given."""
        return pad_2d(seqs, self.pad_id if value is None else value, self.left, width)

    def add_types(self, batch: dict[str, Any], types: Sequence[np.ndarray | None], width: int) -> None:
        """``batch["token_type_ids"]`` where the items have token types."""
        if types and types[0] is not None:
            batch["token_type_ids"], _ = pad_2d(types, 0, self.left, width)


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
