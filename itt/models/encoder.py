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
    """Return (name or path to load from, is_local) for a card with ``pretrained`` or ``tiny``.

    A card with ``pretrain:`` is a model pretrained on first use by :mod:`itt.pretraining`,
    which sits above this module: :func:`itt.builders.model_path` resolves it and passes the
    path to :func:`load_encoder` and :func:`check_max_lengths`."""
    if model_cfg.get("pretrain"):
        raise ConfigError(f"Model card '{model_cfg.get('name')}' is pretrained on first use (pretrain:): "
                          f"load it with itt.builders.load_encoder, which builds it through itt.pretraining.")
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
        hint = ("It is an offline asset: run `python -m itt.assets fetch` (or `make assets`) to build it."
                if model_cfg.get("asset") else "Check model.pretrained.")
        raise ModelError(f"Model '{model_cfg.get('name')}': directory not found: {name}. {hint}")
    return name, False


_TOKENIZERS: dict[tuple, Any] = {}
_WEIGHTS = (".safetensors", ".bin", ".pt", ".h5", ".msgpack", ".ckpt")


def load_tokenizer(path: str, model_cfg: dict[str, Any], local: bool):
    """The model's tokenizer, loaded once per process for a local directory: a launcher worker
    runs many cells of one encoder, and parsing a 250k-word tokenizer.json costs seconds. Cells
    share the object: itt never changes a tokenizer's state (padding and truncation are set per
    call). Keyed by the files' size and mtime, so a rebuilt asset is read again; a tokenizer
    that a caller changed in place since (added tokens, padding or truncation side, maximum
    length, special tokens) is loaded afresh rather than handed to the next cell."""
    from transformers import AutoTokenizer

    trust, revision = bool(model_cfg.get("trust_remote_code")), model_cfg.get("revision")
    folder = Path(path)
    key = None
    if local and folder.is_dir():
        stamp = tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                             for f in folder.iterdir() if f.is_file() and not f.name.endswith(_WEIGHTS)))
        key = (str(folder.resolve()), trust, revision, stamp)
        if key in _TOKENIZERS:
            tokenizer, state = _TOKENIZERS[key]
            if _tokenizer_state(tokenizer) == state:
                return tokenizer
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust, revision=revision,
                                              local_files_only=local or None)
    if key is not None:
        _TOKENIZERS[key] = (tokenizer, _tokenizer_state(tokenizer))
    return tokenizer


def _tokenizer_state(tokenizer: Any) -> tuple:
    """What a caller can change in place on a loaded tokenizer and that changes its output."""
    return (len(tokenizer), tokenizer.padding_side, tokenizer.truncation_side,
            getattr(tokenizer, "model_max_length", None), tuple(tokenizer.all_special_tokens),
            tuple(sorted(tokenizer.get_added_vocab().items())))


def load_encoder(model_cfg: dict[str, Any], cache_dir: str | Path, where: tuple[str, bool] | None = None):
    """Return (encoder, tokenizer, path) for a model card (a plain dict). ``where`` is the
    (path, is_local) to load from when the caller resolved it (:func:`itt.builders.model_path`)."""
    from transformers import AutoModel

    path, local = where or resolve_model_path(model_cfg, cache_dir)
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


def max_positions(encoder: Any) -> int | None:
    """The longest input the encoder's position embeddings take (None: no absolute limit,
    e.g. XLNet's relative positions). RoBERTa-style models reserve the first padding_idx + 1
    positions."""
    config = encoder.config
    n = getattr(config, "max_position_embeddings", None)
    if not isinstance(n, int) or n <= 0 or getattr(config, "model_type", "") in ("xlnet",):
        return None
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert", "longformer"):
        n -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    return n


def check_max_lengths(model_cfg: dict[str, Any], cache_dir: str | Path, lengths: dict[str, int],
                      where: tuple[str, bool] | None = None) -> None:
    """``<stage>.max_length`` above the encoder's positions is a config error raised before
    any training, not a crash inside the model's forward pass. Reads only the model config
    (``where``: as for :func:`load_encoder`)."""
    from transformers import AutoConfig

    path, local = where or resolve_model_path(model_cfg, cache_dir)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=bool(model_cfg.get("trust_remote_code")),
                                            revision=model_cfg.get("revision"), local_files_only=True)
    except (OSError, ValueError):
        return  # not available locally yet: load_encoder reports that with its own message
    limit = max_positions(type("_Encoder", (), {"config": config})())
    for stage, max_length in lengths.items():
        if limit is not None and max_length > limit:
            raise ConfigError(f"{stage}.max_length={max_length} is more than model '{model_cfg.get('name')}' "
                              f"takes ({limit} positions): set {stage}.max_length={limit} or less.")
