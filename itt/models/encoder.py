"""Load an encoder and its tokenizer from a model card: hub id, local path, offline asset,
or a tiny model built from a config. Safe by default: remote code runs only when the model
card sets ``trust_remote_code: true``; weights load from safetensors where they exist."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from itt.errors import ConfigError, HubUnavailableError, ModelError

log = logging.getLogger(__name__)


def resolve_model_path(model_cfg: dict[str, Any], cache_dir: str | Path) -> tuple[str, bool]:
    """Return (name or path to load from, is_local)."""
    if model_cfg.get("pretrain"):  # a tiny encoder pretrained on a local corpus on first use
        from itt.pretraining.build import build_pretrained

        return str(build_pretrained(model_cfg, cache_dir)), True
    if model_cfg.get("tiny"):
        from itt.models.tiny import build_tiny

        return str(build_tiny(model_cfg, cache_dir)), True
    name = model_cfg.get("pretrained")
    if not name:
        raise ConfigError(f"Model card '{model_cfg.get('name')}' sets none of 'pretrained', 'tiny', 'pretrain'.")
    name = str(name)
    looks_local = name.startswith(("/", "./", "../", "~")) or os.path.sep in name and os.path.exists(name)
    if os.path.isdir(os.path.expanduser(name)):
        return os.path.expanduser(name), True
    if looks_local or model_cfg.get("asset"):
        hint = (f"It is an offline asset: run `python -m itt.assets fetch` (or `make assets`) to build it."
                if model_cfg.get("asset") else "Check model.pretrained.")
        raise ModelError(f"Model '{model_cfg.get('name')}': directory not found: {name}. {hint}")
    return name, False


def load_tokenizer(path: str, model_cfg: dict[str, Any], local: bool):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=bool(model_cfg.get("trust_remote_code")),
                                         revision=model_cfg.get("revision"), local_files_only=local or None)


def load_encoder(model_cfg: dict[str, Any], cache_dir: str | Path):
    """Return (encoder, tokenizer, path) for a model card (a plain dict)."""
    from transformers import AutoModel

    path, local = resolve_model_path(model_cfg, cache_dir)
    if not local:
        from itt.hub import hub_offline_flag, hub_reachable, model_in_cache, require_hub

        if model_in_cache(path, model_cfg.get("revision")):
            local = True
        elif hub_offline_flag() or not hub_reachable():
            require_hub("model", path, f"model={model_cfg.get('name')}")
    trust = bool(model_cfg.get("trust_remote_code"))
    try:
        tokenizer = load_tokenizer(path, model_cfg, local)
        encoder = AutoModel.from_pretrained(path, trust_remote_code=trust, revision=model_cfg.get("revision"),
                                            local_files_only=local or None)
    except HubUnavailableError:
        raise
    except (OSError, ValueError) as exc:
        raise ModelError(f"Model '{model_cfg.get('name')}' could not be loaded from '{path}': {exc}") from exc
    arch = model_cfg.get("architecture")
    got = getattr(encoder.config, "model_type", None)
    if arch and got and arch.replace("-", "_") != got.replace("-", "_"):
        log.warning("Model card '%s' says architecture %s but the checkpoint is %s", model_cfg.get("name"), arch, got)
    return encoder, tokenizer, path
