"""Read back what an offline W&B run logged, without the W&B service.

An offline run lives in ``<save_dir>/wandb/offline-run-*/run-<id>.wandb``: a LevelDB-style
log (32 KiB blocks, each record a 7-byte header + chunk) of protobuf ``Record`` messages.
This lets tests and users check an offline run before (or instead of) ``wandb sync``.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_BLOCK = 32768
_HEADER = 7
_FILE_HEADER = 7  # b":W&B" + version bytes


def _records(data: bytes) -> list[bytes]:
    out, buf, pos = [], b"", _FILE_HEADER
    while pos + _HEADER <= len(data):
        left = _BLOCK - (pos % _BLOCK)
        if left < _HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
        chunk = data[pos + _HEADER:pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 0 and length == 0:
            break
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            out.append(buf + chunk)
            buf = b""
    return out


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline_run(run_dir: str | Path) -> dict[str, Any]:
    """``{"history": [step dicts], "summary": {...}, "config": {...}, "tags": [...]}``."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    config: dict[str, Any] = {}
    tags: list[str] = []
    group = job_type = None
    for chunk in _records(files[0].read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(chunk)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "run":
            tags = list(rec.run.tags)
            group, job_type = rec.run.run_group, rec.run.job_type
            config.update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in rec.config.update})
    return {"history": history, "summary": summary, "config": config, "tags": tags, "group": group,
            "job_type": job_type}
