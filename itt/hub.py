"""Fail fast, with a useful message, when something needs the Hugging Face hub and it is
out of reach (offline mode set, or no network): the hub client would otherwise retry for
about a minute before giving up.
"""
from __future__ import annotations

import os
import socket
import threading

from itt.errors import HubUnavailableError

HUB_HOST = "huggingface.co"
_OFFLINE_HINT = ("Offline alternatives: model=tiny_bert|tiny_roberta|tiny_xlnet|minilm|me5_small and "
                 "the task cards whose source.kind is 'local' (run `python -m itt.assets fetch` "
                 "for the real offline suite); `experiment=mini` is the offline grid.")
_reachable_cache: dict[str, bool] = {}


def hub_offline_flag() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """True if a TCP connection to the hub opens within ``timeout`` seconds (DNS included)."""
    endpoint = os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    if host in _reachable_cache:
        return _reachable_cache[host]
    result = {"ok": False}

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result["ok"] = True
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    _reachable_cache[host] = result["ok"]
    return result["ok"]


def require_hub(kind: str, name: str, config_name: str) -> None:
    """Raise :class:`HubUnavailableError` unless the hub can serve ``name``."""
    if hub_offline_flag():
        raise HubUnavailableError(
            f"The {kind} '{name}' ({config_name}) must come from the Hugging Face hub, but offline "
            f"mode is set (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and it is not in the local cache. "
            f"Unset offline mode on a machine with the hub, or use a local path. {_OFFLINE_HINT}")
    if not hub_reachable():
        raise HubUnavailableError(
            f"The {kind} '{name}' ({config_name}) must come from the Hugging Face hub, which is "
            f"unreachable from this machine ({HUB_HOST}:443 did not answer within 3 s) and it is "
            f"not in the local cache. {_OFFLINE_HINT}")


def model_in_cache(repo_id: str, revision: str | None = None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
        return isinstance(found, str)
    except Exception:  # noqa: BLE001 - any failure means "not usable from cache"
        return False
