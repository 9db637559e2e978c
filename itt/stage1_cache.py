"""The stage-1 cache, with one owner: key, lock, atomic publish, wait, validation and
invalidation of the intermediate-task models that target cells start from.

* **Key** — a content hash of everything that determines the stage-1 weights: the encoder
  card, the intermediate task card with its data files replaced by their content
  (:mod:`itt.data.fingerprint`), the stage-1 settings, the data and head settings, the
  precision and the seed. Edited data is a new key; the same data at another path is not.
* **Lock** — workers take ``<key>.lock`` (filelock), so each key is trained once however
  many cells and workers need it; a waiting worker then reuses what the first one wrote.
* **Publish** — a model is written to ``<key>.tmp<pid>/`` and renamed into place, so a
  reader sees nothing or a whole entry; ``stage1.json`` records each weight file's size
  and SHA-256.
* **Validation** — before reuse, the entry's metadata must parse and its weight files must
  match the recorded sizes and hold readable safetensors headers (the SHA-256 is checked
  once per process and entry). A corrupt or truncated entry is logged with its path, moved
  aside to ``<key>.corrupt-<time>`` and trained again.

Under DDP only rank 0 takes the lock and publishes; the other ranks, started by Lightning
once rank 0 begins training, join that training (``ITT_STAGE1_TRAINING``) or wait for the
published entry.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch

from itt.utils import atomic_write_json, file_sha256, move_aside, stable_hash, utc_now

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.safetensors"
HEAD_FILE = "head.safetensors"
META_FILE = "stage1.json"
FORMAT = 3            # bump when what an entry holds changes: old entries are not reused
#: Set by rank 0 while it trains a key: the other DDP ranks join that training.
TRAINING_ENV = "ITT_STAGE1_TRAINING"

_verified: set[str] = set()


class CorruptEntry(RuntimeError):
    """A cache entry that cannot be used (the message says why)."""


# ----------------------------------------------------------------------------- key
def stage1_key(cfg: dict[str, Any]) -> str:
    """Content address of a stage-1 model (see the module docstring)."""
    from itt.data.fingerprint import card_fingerprint

    model = {k: v for k, v in cfg["model"].items() if k not in ("name", "resources")}
    task = {k: v for k, v in card_fingerprint(cfg["intermediate"], cfg["paths"].get("cache_dir")).items()
            if k not in ("setting",)}
    trainer = {"precision": cfg["trainer"]["precision"]}
    data = {k: cfg["data"][k] for k in ("split_seed", "batching", "mega_batch_factor")}
    return stable_hash({"model": model, "task": task, "stage1": cfg["stage1"], "data": data,
                        "trainer": trainer, "head": cfg.get("head"), "seed": cfg["seed"], "v": FORMAT}, 20)


def stage1_dir(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / "stage1" / key


def partial_dir(final: Path) -> Path:
    """Where an interrupted training's checkpoints wait to be resumed."""
    return final.with_name(final.name + ".partial")


# ----------------------------------------------------------------------------- entries
def read_meta(path: Path) -> dict[str, Any]:
    return json.loads((path / META_FILE).read_text())


def validate(path: Path, full: bool | None = None) -> dict[str, Any]:
    """The entry's metadata when the entry is whole; CorruptEntry otherwise. ``full``
    checks every file's SHA-256 (default: once per process and entry)."""
    from safetensors import safe_open

    try:
        meta = read_meta(path)
    except (OSError, ValueError) as exc:
        raise CorruptEntry(f"{path / META_FILE} is unreadable ({exc})") from None
    files = meta.get("files")
    if not isinstance(files, dict) or set(files) != {ENCODER_FILE, HEAD_FILE}:
        raise CorruptEntry(f"{path / META_FILE} does not list its weight files (format older than v{FORMAT})")
    full = str(path) not in _verified if full is None else full
    for name, want in files.items():
        f = path / name
        if not f.exists():
            raise CorruptEntry(f"{f} is missing")
        if f.stat().st_size != want.get("bytes"):
            raise CorruptEntry(f"{f} has {f.stat().st_size} bytes, {want.get('bytes')} were written (truncated?)")
        try:
            with safe_open(str(f), framework="pt") as handle:
                handle.keys()
        except Exception as exc:  # noqa: BLE001 - any unreadable header is a broken entry
            raise CorruptEntry(f"{f} is not a readable safetensors file ({exc})") from None
        if full and file_sha256(f) != want.get("sha256"):
            raise CorruptEntry(f"{f} does not match its recorded SHA-256")
    _verified.add(str(path))
    return meta


def ready(path: Path) -> bool:
    """Whether a whole, valid entry is published at ``path`` (a broken one is moved aside)."""
    if not (path / META_FILE).exists() and not (path / ENCODER_FILE).exists():
        return False
    try:
        validate(path)
        return True
    except CorruptEntry as exc:
        invalidate(path, str(exc))
        return False


def invalidate(path: Path, why: str) -> Path | None:
    """Move a broken entry aside (kept for inspection) so that it is trained again."""
    _verified.discard(str(path))
    return move_aside(path, why)


def save(module: Any, out: Path, meta: dict[str, Any]) -> None:
    """Write an entry (encoder, head, metadata with each file's size and SHA-256)."""
    from safetensors.torch import save_file

    from itt.stages import untied_state

    def plain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return untied_state({k: v.detach().cpu().contiguous() for k, v in state.items()})

    out.mkdir(parents=True, exist_ok=True)
    save_file(plain(module.encoder.state_dict()), str(out / ENCODER_FILE))
    save_file(plain(module.head.state_dict()), str(out / HEAD_FILE))
    files = {name: {"bytes": (out / name).stat().st_size, "sha256": file_sha256(out / name)}
             for name in (ENCODER_FILE, HEAD_FILE)}
    atomic_write_json(out / META_FILE, dict(meta, files=files, format=FORMAT))


def publish(tmp: Path, final: Path) -> None:
    """Move a finished entry into place atomically (a valid one already there wins)."""
    if final.exists():
        if ready(final):
            shutil.rmtree(tmp, ignore_errors=True)
            return
    os.replace(tmp, final)


def load_encoder_state(encoder: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(path / ENCODER_FILE))
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    # Buffers such as position_ids may be absent from the file; real weights may not.
    real_missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if real_missing or unexpected:
        raise RuntimeError(f"stage-1 encoder at {path} does not fit the encoder: missing={real_missing[:5]} "
                           f"unexpected={unexpected[:5]}")


def load_head_state(head: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    head.load_state_dict(load_file(str(path / HEAD_FILE)))


# ----------------------------------------------------------------------------- get or train
def _rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)


def reused_info(key: str, final: Path) -> dict[str, Any]:
    meta = read_meta(final)
    return {"key": key, "reused": True, "wall_time_s": 0.0, "trained_wall_time_s": meta.get("wall_time_s"),
            "epochs": meta.get("epochs"), "val": meta.get("val")}


def _wait_published(final: Path, timeout_s: float = 24 * 3600.0) -> None:
    """A rank other than 0 waits for rank 0 to publish the entry it trained."""
    parent, start = os.getppid(), time.monotonic()
    while not (final / META_FILE).exists():
        if os.getppid() != parent:
            raise RuntimeError(f"rank 0 exited before publishing {final}")
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"stage-1 model {final} not published after {timeout_s:.0f}s")
        time.sleep(0.2)


def get_or_train(cfg: dict[str, Any], train: Callable[[str, Path, Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """The stage-1 entry for a cell's config, training it with ``train(key, tmp, partial)``
    (which writes the entry into ``tmp`` through :func:`save` on rank 0, resuming from
    ``partial``'s checkpoints, and returns the stage-1 block of result.json) unless the cache
    holds a valid one."""
    from filelock import FileLock, Timeout

    key = stage1_key(cfg)
    final = stage1_dir(cfg["paths"]["cache_dir"], key)
    if _rank() != 0:
        if os.environ.get(TRAINING_ENV) == key:
            train(key, final.with_name(final.name + f".tmp{os.getpid()}"), partial_dir(final))
        _wait_published(final)
        return final, reused_info(key, final)
    if ready(final):
        log.info("Stage 1 %s: reusing %s", key, final)
        return final, reused_info(key, final)
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(final) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("Stage 1 %s: another worker is training it; waiting for it", key)
        lock.acquire()
    try:
        if ready(final):
            log.info("Stage 1 %s: reusing %s (trained by another worker)", key, final)
            return final, reused_info(key, final)
        tmp = final.with_name(final.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        os.environ[TRAINING_ENV] = key
        try:
            info = train(key, tmp, partial_dir(final))
        finally:
            os.environ.pop(TRAINING_ENV, None)
        publish(tmp, final)
        shutil.rmtree(partial_dir(final), ignore_errors=True)
        _verified.add(str(final))
        return final, info
    finally:
        lock.release()


def entry_meta(cfg: dict[str, Any], key: str, inter_summary: dict[str, Any], labels: Any, outcome: Any,
               wall: float, data_info: dict[str, Any]) -> dict[str, Any]:
    """The metadata an entry records (stage1.json)."""
    return {"key": key, "model": cfg["model"]["name"], "task": inter_summary, "labels": labels,
            "seed": cfg["seed"], "stage1": cfg["stage1"], "epochs": outcome.epochs, "steps": outcome.steps,
            "val": outcome.best_val, "wall_time_s": round(wall, 3), "fit_time_s": round(outcome.wall_time_s, 3),
            "resumed_from": outcome.resumed_from, "data": data_info, "created": utc_now()}
