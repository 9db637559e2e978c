"""Readers for the raw files inside the packages, and the steps that turn them into the
JSONL rows of docs/schemas.md: labelling, de-duplication, seeded subsampling.

Every reader takes the raw bytes and a ``where`` string (``package==version: file inside``)
so that a malformed line is reported with the package and the file that hold it.
"""
from __future__ import annotations

import csv
import html
import io
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from itt.assets.errors import AssetError
from itt.utils import atomic_file
from itt.utils import read_jsonl as read_rows

Record = dict[str, Any]

#: The paper keeps the intermediate set at least this many times larger than the part of a
#: target that is trained on.
INTERMEDIATE_RATIO = 10
#: The train part of the 70/30 ratio split the task cards use.
TRAIN_FRACTION = 0.7


# --------------------------------------------------------------------------- text helpers

def clean_text(text: str) -> str:
    """Unescape HTML entities (bol.com, tweets), unify newlines, strip."""
    text = html.unescape(text).replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def text_key(text: str) -> str:
    """Key for exact duplicates: case- and whitespace-insensitive."""
    return " ".join(text.casefold().split())


def loose_key(text: str) -> str:
    """Key that survives re-tokenisation (``it's`` vs ``it 's``, ``''`` vs ``"``): letters
    and digits only. Used to find the same sentence in two differently processed corpora."""
    return re.sub(r"[\W_]+", "", text.casefold())


def decode(data: bytes, where: str) -> str:
    """UTF-8 (a BOM is dropped); a few old files are Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise AssetError(f"{where}: neither UTF-8 nor Windows-1252 ({exc}).") from exc


# --------------------------------------------------------------------------- readers

def read_vader_tsv(data: bytes, where: str) -> list[tuple[str, float]]:
    """VADER ground truth: ``id<TAB>mean_rating<TAB>text`` (rating -4..4), no header."""
    rows: list[tuple[str, float]] = []
    for lineno, line in enumerate(decode(data, where).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise AssetError(f"{where}: line {lineno} has {len(parts)} tab-separated field(s); "
                             f"expected id, mean_rating, text.")
        try:
            rating = float(parts[1])
        except ValueError:
            raise AssetError(f"{where}: line {lineno}: rating {parts[1]!r} is not a number.") from None
        rows.append(("\t".join(parts[2:]), rating))
    if not rows:
        raise AssetError(f"{where}: no rows.")
    return rows


def label_by_sign(rows: Iterable[tuple[str, float]]) -> tuple[list[Record], Counter]:
    """``positive`` for a rating > 0, ``negative`` for < 0; rating 0 and text without any
    letter or digit are dropped (counted in the returned Counter)."""
    out: list[Record] = []
    dropped: Counter = Counter()
    for text, rating in rows:
        text = clean_text(text)
        if rating == 0:
            dropped["rating_zero"] += 1
        elif not has_words(text):
            dropped["no_words"] += 1
        else:
            out.append({"text": text, "label": "positive" if rating > 0 else "negative"})
    return out, dropped


_POLARITY = {"1": "positive", "-1": "negative", "+1": "positive"}


def read_pattern_polarity(data: bytes, where: str) -> list[Record]:
    """pattern's polarity CSVs: two quoted fields, the label (1 / -1) and the review, in
    either order (the French file has the label last); the first line may carry a BOM."""
    reader = csv.reader(io.StringIO(decode(data, where), newline=""))
    out: list[Record] = []
    for lineno, row in enumerate(reader, 1):
        if not row or not any(f.strip() for f in row):
            continue
        if len(row) != 2:
            raise AssetError(f"{where}: record {lineno} has {len(row)} field(s); expected label, text.")
        a, b = (f.strip() for f in row)
        if a in _POLARITY:
            label, text = _POLARITY[a], row[1]
        elif b in _POLARITY:
            label, text = _POLARITY[b], row[0]
        else:
            raise AssetError(f"{where}: record {lineno} has no 1/-1 label ({a[:20]!r}, {b[:20]!r}).")
        text = clean_text(text)
        if has_words(text):
            out.append({"text": text, "label": label})
    if not out:
        raise AssetError(f"{where}: no rows.")
    return out


def read_orange_tab(data: bytes, where: str, text_col: str, label_col: str) -> list[tuple[str, str]]:
    """Orange's ``.tab`` format: tab-separated with three header lines (names, types, flags);
    values may be double-quoted (then they can hold tabs)."""
    rows = list(csv.reader(io.StringIO(decode(data, where), newline=""), delimiter="\t"))
    if len(rows) < 4:
        raise AssetError(f"{where}: expected 3 header lines and data, found {len(rows)} line(s).")
    names = rows[0]
    for col in (text_col, label_col):
        if col not in names:
            raise AssetError(f"{where}: no column {col!r} in the header {names}.")
    ti, li = names.index(text_col), names.index(label_col)
    out: list[tuple[str, str]] = []
    for lineno, row in enumerate(rows[3:], 4):
        if not row:
            continue
        if len(row) != len(names):
            raise AssetError(f"{where}: line {lineno} has {len(row)} field(s), the header {len(names)}.")
        out.append((row[ti], row[li]))
    return out


def read_sts_csv(path: Path) -> list[tuple[str, str, float]]:
    """stsb-multi-mt: ``sentence1,sentence2,similarity_score`` (0..5), no header."""
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AssetError(f"STS benchmark file {where} cannot be read ({exc}).") from exc
    out: list[tuple[str, str, float]] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(decode(data, where), newline="")), 1):
        if not row:
            continue
        if len(row) != 3:
            raise AssetError(f"{where}: record {lineno} has {len(row)} field(s); expected "
                             f"sentence1, sentence2, similarity_score.")
        try:
            score = float(row[2])
        except ValueError:
            raise AssetError(f"{where}: record {lineno}: score {row[2]!r} is not a number.") from None
        if not (0.0 <= score <= 5.0 and math.isfinite(score)):
            raise AssetError(f"{where}: record {lineno}: score {score} is outside 0..5.")
        out.append((row[0].strip(), row[1].strip(), score))
    return out


def news_text(raw: str) -> str:
    """A BBC article: title line, blank line, paragraphs; kept as non-empty lines."""
    return "\n".join(line.strip() for line in raw.splitlines() if line.strip())


# --------------------------------------------------------------------------- cleaning

def dedupe(records: Sequence[Record], key: Callable[[Record], Any]) -> tuple[list[Record], Counter]:
    """Keep the first of each group of duplicates; drop every copy of a text that occurs
    with two different labels (it cannot be learned, and it would leak across the split)."""
    labels: dict[Any, set] = defaultdict(set)
    for r in records:
        labels[key(r)].add(str(r["label"]))
    seen: set = set()
    out: list[Record] = []
    dropped: Counter = Counter()
    for r in records:
        k = key(r)
        if len(labels[k]) > 1:
            dropped["conflicting_duplicate"] += 1
        elif k in seen:
            dropped["duplicate"] += 1
        else:
            seen.add(k)
            out.append(r)
    return out, dropped


def target_cap(intermediate_rows: int, train_fraction: float = TRAIN_FRACTION,
               ratio: int = INTERMEDIATE_RATIO) -> int:
    """Most rows a target may keep so that its training part (``train_fraction`` of it)
    is at most 1/``ratio`` of the intermediate set."""
    return int(math.floor(intermediate_rows / (ratio * train_fraction) + 1e-9))


def _rng(seed: int, name: str) -> random.Random:
    return random.Random(f"itt.assets:{seed}:{name}")


def stratified_subsample(records: Sequence[Record], cap: int, seed: int, name: str,
                         label: str = "label") -> tuple[list[Record], dict[str, Any]]:
    """At most ``cap`` rows, each label keeping its share (largest remainder); the kept rows
    stay in their original order. The same (seed, name) always keeps the same rows."""
    n = len(records)
    info: dict[str, Any] = {"seed": seed, "max_rows": cap, "rows_before": n, "method": "stratified"}
    if n <= cap:
        info["rows_after"] = n
        return list(records), info
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_label[str(r[label])].append(i)
    quotas = {lab: cap * len(idx) / n for lab, idx in by_label.items()}
    take = {lab: int(q) for lab, q in quotas.items()}
    for lab in sorted(quotas, key=lambda k: (-(quotas[k] - take[k]), k))[: cap - sum(take.values())]:
        take[lab] += 1
    rng = _rng(seed, name)
    keep: list[int] = []
    for lab in sorted(by_label):
        keep += rng.sample(by_label[lab], take[lab])
    info["rows_after"] = len(keep)
    return [records[i] for i in sorted(keep)], info


def random_subsample_indices(n: int, cap: int, seed: int, name: str) -> list[int]:
    """Sorted indices of at most ``cap`` of ``n`` rows (for parallel corpora, where every
    language must keep the same rows)."""
    if n <= cap:
        return list(range(n))
    return sorted(_rng(seed, name).sample(range(n), cap))


# --------------------------------------------------------------------------- files

def write_jsonl(path: Path, records: Iterable[Record]) -> int:
    """Write rows atomically (readers see the old file or the whole new one)."""
    n = 0
    with atomic_file(path, "w") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: Path) -> list[Record]:
    return [row for _, row in read_rows(path, AssetError)]


def count_jsonl_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def label_counts(records: Iterable[Record]) -> dict[str, int]:
    return dict(sorted(Counter(str(r["label"]) for r in records).items()))
