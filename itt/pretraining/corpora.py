"""The two pretraining corpora of the code-versus-text study, read deterministically.

* ``code``: the Python standard library's own modules on this machine
  (``sysconfig.get_paths()["stdlib"]``, every ``*.py`` file, walked in sorted order). Installed
  packages (``site-packages`` / ``dist-packages``, which pyenv and Debian put *inside* the stdlib
  directory) and the stdlib's test suites (``test``, ``tests``, ``idle_test``) are left out: the
  packages are not the standard library, and the test suites are dominated by deliberately
  malformed, non-UTF-8 and repetitive fixture files. A document is a run of ``piece_lines``
  consecutive lines of a module (50 by default): a budget of a few hundred thousand tokens
  then samples hundreds of modules instead of a few dozen whole files.
* ``text``: the English text of the offline suite (``outputs/assets/data/*.jsonl``, built by
  ``python -m itt.assets fetch``). English files are ``<dataset>.jsonl`` (the suite's
  single-language sets are English, docs/schemas.md) and ``<dataset>-en.jsonl``; every
  ``<dataset>-<lang>.jsonl`` with another language is left out. One row is one document (the
  ``text`` / ``text_a`` / ``text_b`` fields joined by a newline). ``exclude`` drops datasets by
  name, so that the text model never sees the text of the targets it is evaluated on.

A corpus is identified by a content hash over its files (relative name and bytes), so a model
built from it is rebuilt exactly when the corpus changes. Documents come out in a seeded
shuffle of their sorted order: the same on every machine with the same files, and not an
alphabetical run of a few modules or one dataset.
"""
from __future__ import annotations

import glob
import hashlib
import logging
import os
import random
import re
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from itt.errors import ConfigError, DataError
from itt.utils import read_jsonl

log = logging.getLogger(__name__)

CORPORA = ("code", "text")
# Directory names skipped inside the stdlib (see the module docstring).
SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"})
_LANG_SUFFIX = re.compile(r"^(?P<dataset>.+)-(?P<lang>[a-z]{2,3})$")
_FINGERPRINTS: dict[tuple, str] = {}


@dataclass
class Corpus:
    """A named, ordered set of files and how to split them into documents."""

    name: str                      # code | text | a free label for in-memory corpora
    root: Path | None
    files: list[Path] = field(default_factory=list)
    kind: str = "code"             # code: a run of lines is a document; jsonl: a row is a document
    piece_lines: int = 50
    documents_in_memory: list[str] | None = None

    @property
    def fingerprint(self) -> str:
        """sha256 over (relative name, content) of every file; memoised per process by stat."""
        if self.documents_in_memory is not None:
            h = hashlib.sha256()
            for doc in self.documents_in_memory:
                h.update(doc.encode("utf-8", "surrogatepass") + b"\0")
            return h.hexdigest()
        stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in self.files)
        key = (self.name, str(self.root), stats)
        if key not in _FINGERPRINTS:
            h = hashlib.sha256()
            for p in self.files:
                h.update(self._relative(p).encode() + b"\0")
                h.update(p.read_bytes())
                h.update(b"\0")
            _FINGERPRINTS[key] = h.hexdigest()
        return _FINGERPRINTS[key]

    def _relative(self, p: Path) -> str:
        return str(p.relative_to(self.root)) if self.root is not None else p.name

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "root": str(self.root) if self.root else None, "files": len(self.files),
                "kind": self.kind, "piece_lines": self.piece_lines if self.kind == "code" else None,
                "fingerprint": self.fingerprint}

    def documents(self, seed: int) -> list[str]:
        """Every document, in a seeded shuffle of the sorted order (deterministic)."""
        if self.documents_in_memory is not None:
            docs = list(self.documents_in_memory)
        elif self.kind == "code":
            # errors="replace": a stray non-UTF-8 byte must not make the corpus unreadable.
            docs = []
            for p in self.files:
                lines = p.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
                docs += ["".join(lines[i:i + self.piece_lines]) for i in range(0, len(lines), self.piece_lines)]
        else:
            docs = list(_jsonl_documents(self.files))
        docs = [d for d in docs if d.strip()]
        random.Random(f"{self.name}:{seed}").shuffle(docs)
        return docs

    def sample_text(self, chars: int, seed: int) -> list[str]:
        """Documents from the front of the seeded order, up to about ``chars`` characters."""
        out, total = [], 0
        for doc in self.documents(seed):
            if total >= chars:
                break
            piece = doc[: chars - total]
            out.append(piece)
            total += len(piece)
        return out


def _jsonl_documents(files: Sequence[Path]) -> Iterator[str]:
    for path in files:
        for n, row in read_jsonl(path, DataError):
            if not isinstance(row, dict):
                raise DataError(f"{path}, line {n}: expected a JSON object, got {type(row).__name__}")
            parts = [str(row[k]) for k in sorted(row) if k.startswith("text") and row[k]]
            if parts:
                yield "\n".join(parts)


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def code_corpus(root: str | os.PathLike | None = None) -> Corpus:
    """The standard library's ``*.py`` modules under ``root`` (default: this Python's stdlib)."""
    base = Path(root) if root else stdlib_dir()
    if not base.is_dir():
        raise DataError(f"Code corpus: {base} is not a directory (the Python standard library's source).")
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        files += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
    if not files:
        raise DataError(f"Code corpus: no .py files under {base}. This Python installation ships "
                        "without its standard library source (only .pyc files); install the "
                        "source (e.g. the distribution's python3-dev / libpython3-stdlib package).")
    return Corpus(name="code", root=base, files=files, kind="code")


def default_assets_dir() -> Path:
    from itt.utils import REPO_ROOT

    out = Path(os.environ.get("ITT_OUTPUT_DIR", REPO_ROOT / "outputs"))
    return Path(os.environ.get("ITT_ASSETS_DIR", out / "assets"))


def english_files(pattern: str) -> list[Path]:
    """The English ``.jsonl`` files matching ``pattern`` (see the module docstring)."""
    out = []
    for f in sorted(glob.glob(pattern)):
        stem = Path(f).name.removesuffix(".jsonl")
        m = _LANG_SUFFIX.match(stem)
        if m is None or m.group("lang") == "en":
            out.append(Path(f))
    return out


def dataset_name(path: Path) -> str:
    stem = path.name.removesuffix(".jsonl")
    m = _LANG_SUFFIX.match(stem)
    return m.group("dataset") if m else stem


def text_corpus(files: str | os.PathLike | None = None, exclude: Sequence[str] = ()) -> Corpus:
    """English text of the offline suite; ``files`` is a glob (default: the assets' data/*.jsonl)."""
    pattern = str(files) if files else str(default_assets_dir() / "data" / "*.jsonl")
    found = english_files(pattern)
    unknown_excludes = sorted(set(exclude) - {dataset_name(p) for p in found})
    kept = [p for p in found if dataset_name(p) not in set(exclude)]
    if not kept:
        why = (f"no English .jsonl file matches {pattern}" if not found else
               f"every English file matching {pattern} is excluded ({', '.join(exclude)})")
        raise DataError(f"Text corpus: {why}. The text corpus is the offline suite's English text: "
                        "build it with `python -m itt.assets fetch` (or `make assets`), or point "
                        "model.pretrain.text_files at other English .jsonl files.")
    if unknown_excludes and found:
        log.warning("Text corpus: exclude names no file here: %s", ", ".join(unknown_excludes))
    root = Path(os.path.commonpath([str(p.parent) for p in kept]))
    return Corpus(name="text", root=root, files=kept, kind="jsonl")


def in_memory(name: str, documents: Sequence[str]) -> Corpus:
    """A corpus of given documents (tests, notebooks)."""
    return Corpus(name=name, root=None, documents_in_memory=list(documents))


def get_corpus(name: str, *, code_dir: str | None = None, text_files: str | None = None,
               exclude: Sequence[str] = (), piece_lines: int = 50) -> Corpus:
    """``code`` or ``text`` (see the module docstring)."""
    if name == "code":
        corpus = code_corpus(code_dir)
        corpus.piece_lines = int(piece_lines)
        return corpus
    if name == "text":
        return text_corpus(text_files, exclude)
    raise ConfigError(f"Unknown pretraining corpus {name!r}; known: {', '.join(CORPORA)}.")
