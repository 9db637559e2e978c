"""Content fingerprints of the data a task card reads.

Caches and finished-cell checks key on what the data *is*, not where it lies: a card's
local files (every language, the training source and translated training sets too) are
replaced by the SHA-256 of their bytes. An edited file changes the fingerprint, so the
stage-1 models and the cells that used it are trained again; the same files at another path
give the same fingerprint, so the cache is reused. Hub sources are named by repository,
config and revision (their content is the hub's and the datasets cache's to version).

Hashes are remembered per (path, size, modification time) under
``<cache_dir>/fingerprints/``, so a large file is read once until it changes.
"""
from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

from itt.utils import atomic_write_text, file_sha256, stable_hash

log = logging.getLogger(__name__)

#: Card keys that only say where data lies: replaced by the content fingerprint.
_LOCATION_KEYS = ("data_files", "path")
_memo: dict[tuple[str, int, int], str] = {}


def file_fingerprint(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str:
    """SHA-256 of a file's bytes, remembered per (real path, size, mtime)."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    if key in _memo:
        return _memo[key]
    memo_file = Path(cache_dir) / "fingerprints" / f"{stable_hash(list(key), 24)}.sha256" if cache_dir else None
    if memo_file is not None and memo_file.exists():
        digest = memo_file.read_text().strip()
    else:
        digest = file_sha256(real)
        if memo_file is not None:
            try:
                atomic_write_text(memo_file, digest + "\n")
            except OSError as exc:  # a read-only cache only costs the hashing again
                log.debug("Could not remember the fingerprint of %s: %s", real, exc)
    _memo[key] = digest
    return digest


def path_fingerprint(path: str, cache_dir: str | os.PathLike | None = None) -> str:
    """A file's or a directory's content (every file below it, by relative name)."""
    p = Path(path)
    if p.is_file():
        return file_fingerprint(p, cache_dir)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and ".git" not in f.parts)
        return stable_hash({str(f.relative_to(p)): file_fingerprint(f, cache_dir) for f in files}, 40)
    return f"missing:{p.name}"


def _lang_codes(source: dict[str, Any], languages: list[str]) -> list[str]:
    codes = source.get("lang_codes") or {}
    return sorted({str(codes.get(lang, lang)) for lang in languages})


def _content(value: Any, codes: list[str], cache_dir: Any) -> Any:
    """The fingerprint of what a location value names (a path, a list, a split mapping)."""
    if isinstance(value, dict):
        return {k: _content(v, codes, cache_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_content(v, codes, cache_dir) for v in value]
    if isinstance(value, str):
        if "{lang}" in value:
            return {code: path_fingerprint(value.replace("{lang}", code), cache_dir) for code in codes}
        return path_fingerprint(value, cache_dir)
    return value


def _ensure_generated(card: dict[str, Any], source: dict[str, Any]) -> None:
    """Generated sources (the smoke suite) are written on first use: before hashing."""
    if source.get("generator") != "smoke":
        return
    files = source.get("data_files") or {}
    files = files.values() if isinstance(files, dict) else [files]
    for f in files:
        for one in ([f] if isinstance(f, str) else list(f)):
            if not os.path.exists(one):
                from itt.data import smoke

                smoke.generate(Path(one).parent)
                return


def source_fingerprint(source: dict[str, Any] | None, languages: list[str],
                       cache_dir: Any = None, card: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A source block with its local locations replaced by their content."""
    if not isinstance(source, dict):
        return source
    out = copy.deepcopy(source)
    codes = _lang_codes(source, languages)
    kind = source.get("kind", "local")
    if kind == "local":
        _ensure_generated(card or {}, source)
        for key in _LOCATION_KEYS:
            if out.get(key):
                out[key] = {"content": _content(out[key], codes, cache_dir)}
    elif kind == "hub" and isinstance(source.get("path"), str) and os.path.isdir(source["path"].split("{lang}")[0]):
        out["path"] = {"content": _content(source["path"], codes, cache_dir)}  # a hub-shaped local repo
    return out


def card_fingerprint(card: dict[str, Any], cache_dir: Any = None) -> dict[str, Any]:
    """A task card (plain dict) with every local data location replaced by its content."""
    out = {k: v for k, v in card.items() if k not in ("description", "license", "citation", "url")}
    languages = list(card.get("languages") or ["en"])
    out["source"] = source_fingerprint(card.get("source"), languages, cache_dir, card)
    if isinstance(card.get("train_source"), dict):
        out["train_source"] = source_fingerprint(card["train_source"], languages, cache_dir, card)
    tt = card.get("translate_train")
    if isinstance(tt, dict) and isinstance(tt.get("source"), dict):
        out["translate_train"] = dict(tt, source=source_fingerprint(tt["source"], languages, cache_dir, card))
    return out
