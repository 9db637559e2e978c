"""Small helpers shared across the package: hashing, atomic writes, versions, git."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: os.umask can only be read by setting it
_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd)", re.IGNORECASE)


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-serialisable object, independent of key order."""
    payload = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """A file to write whose content replaces ``path`` when the block ends without error:
    readers see the old file or the whole new one, never a part. It is written beside
    ``path`` (same file system), synced, and gets the user's umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, new_file_mode())  # mkstemp makes 0600; the file gets the user's umask
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    with atomic_file(path, "w") as f:
        f.write(text)


def publish_dir(out: str | os.PathLike, fill: Callable[[Path], Any]) -> Path:
    """Write a directory whole: ``fill(tmp)`` fills a temporary directory beside ``out``,
    which then replaces ``out`` (an older one is removed), so a reader sees no directory, the
    old one or the whole new one."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        fill(tmp)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def replace_dir(staging: str | os.PathLike, final: str | os.PathLike) -> None:
    """Put the directory ``staging`` in the place of ``final`` with two renames: the old
    ``final`` is moved aside (and removed) only once ``staging`` is complete."""
    staging, final = Path(staging), Path(final)
    old = final.with_name(f".{final.name}.old{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def new_file_mode() -> int:
    """The mode ``open`` gives a new file under the user's umask (mkstemp gives 0600)."""
    return 0o666 & ~_UMASK


def build_once(out: str | os.PathLike, build: Callable[[], Any], done: Callable[[Path], bool]) -> Path:
    """``out``, built by ``build()`` first where ``done(out)`` is false. A file lock
    (``<out>.lock``) makes parallel workers build it once: a worker that waited finds it done
    and reuses it. ``build`` writes ``out`` whole (e.g. with :func:`publish_dir`)."""
    from filelock import FileLock

    out = Path(out)
    if done(out):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not done(out):
            build()
    return out


def jsonl_rows(lines: Iterable[str], where: str | os.PathLike,
               error: type[Exception] = ValueError) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of every non-blank line of JSON-lines text; a line that is
    not JSON raises ``error`` naming ``where``, the line and the column."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}, line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        yield lineno, value


def read_jsonl(path: str | os.PathLike, error: type[Exception] = ValueError) -> Iterator[tuple[int, Any]]:
    """:func:`jsonl_rows` of a file (UTF-8), read line by line."""
    with open(path, encoding="utf-8") as f:
        yield from jsonl_rows(f, path, error)


def move_aside(path: str | os.PathLike, why: str) -> Path | None:
    """Move a broken cache entry (file or folder) to ``<name>.corrupt-<time>-<pid>`` so that
    it is rebuilt and can still be inspected; logs the path and why. None when another
    process moved it first."""
    import logging
    import time

    path = Path(path)
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    try:
        os.replace(path, aside)
    except OSError:
        return None
    logging.getLogger("itt.cache").warning("Cache entry %s is broken (%s): moved to %s; rebuilding it",
                                           path, why, aside)
    return aside


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def redact(obj: Any) -> Any:
    """Copy of a config tree with values of secret-looking keys replaced."""
    if isinstance(obj, dict):
        return {
            k: ("***" if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "") else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    from importlib import metadata

    names = ["torch", "pytorch-lightning", "transformers", "datasets", "tokenizers", "hydra-core",
             "omegaconf", "torchmetrics", "wandb", "numpy"]
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_info(root: Path = REPO_ROOT) -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=5).stdout.strip()
        return {"commit": commit or None, "dirty": bool(status)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
