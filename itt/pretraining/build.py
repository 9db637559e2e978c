"""Model cards with a ``pretrain:`` block: a tiny encoder pretrained on first use, then cached.

``conf/model/tiny_code.yaml`` and ``tiny_text.yaml`` differ only in ``pretrain.corpus``:
same architecture, sizes, optimiser, token budget and **one shared tokenizer**. The tokenizer
is trained once on equal numbers of characters from each corpus in ``tokenizer.corpora`` and
used by both models, so the comparison is about the pretraining data, not about a vocabulary
fitted to one of them (a code-only vocabulary would split English into more, shorter pieces
and the two models would see different numbers of words for the same budget).

Both the tokenizer and each model live under ``paths.cache_dir``, keyed by a hash of the
settings that determine them and the content hash of the corpora they are built from
(never their location). A file lock makes parallel workers build each once; the result is
written to a temporary directory and renamed into place.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from itt.errors import ConfigError
from itt.models.tiny import train_tokenizer
from itt.pretraining.corpora import CORPORA, Corpus, get_corpus
from itt.pretraining.mlm import ARCH_KEYS, META_FILE, pretrain
from itt.utils import atomic_write_json, build_once, publish_dir, stable_hash

log = logging.getLogger(__name__)

VERSION = 1    # bump when the build changes what it produces for the same settings
# Keys of the block that say where a corpus is, not what it is: the content hash stands in.
_LOCATION_KEYS = ("code_dir", "text_files")
DEFAULTS: dict[str, Any] = {
    "tokens": 300_000, "held_out_tokens": 20_000, "epochs": 2, "batch_size": 32, "max_length": 64,
    "lr": 1e-3, "warmup_ratio": 0.06, "weight_decay": 0.01, "mask_prob": 0.15, "grad_clip": 1.0,
    "seed": 0, "piece_lines": 50, "code_dir": None, "text_files": None, "text_exclude": [],
    "tokenizer": {"corpora": ["code", "text"], "vocab_size": 4000, "chars_per_corpus": 1_000_000},
}


def settings(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """The card's ``pretrain`` block over :data:`DEFAULTS`, checked."""
    block = model_cfg.get("pretrain")
    if not isinstance(block, dict):
        raise ConfigError(f"Model card '{model_cfg.get('name')}': pretrain must be a mapping.")
    out = {**DEFAULTS, **block, "tokenizer": {**DEFAULTS["tokenizer"], **(block.get("tokenizer") or {})}}
    unknown = sorted(set(block) - set(DEFAULTS) - {"corpus", "model"})
    if unknown:
        raise ConfigError(f"Model card '{model_cfg.get('name')}': unknown pretrain keys {unknown}; known: "
                          f"corpus, model, {', '.join(sorted(DEFAULTS))}.")
    if out.get("corpus") not in CORPORA:
        raise ConfigError(f"Model card '{model_cfg.get('name')}': pretrain.corpus must be one of "
                          f"{', '.join(CORPORA)}, got {out.get('corpus')!r}.")
    bad = [c for c in out["tokenizer"]["corpora"] if c not in CORPORA]
    if bad or not out["tokenizer"]["corpora"]:
        raise ConfigError(f"Model card '{model_cfg.get('name')}': pretrain.tokenizer.corpora must list "
                          f"{' and/or '.join(CORPORA)}, got {out['tokenizer']['corpora']!r}.")
    model = out.get("model") or {}
    missing = [k for k in ARCH_KEYS[:4] if k not in model]
    if missing:
        raise ConfigError(f"Model card '{model_cfg.get('name')}': pretrain.model lacks {', '.join(missing)}.")
    out["model"] = {"architecture": model_cfg.get("architecture", "roberta"), **model}
    return out


def corpora_for(spec: dict[str, Any]) -> dict[str, Corpus]:
    names = sorted(set(spec["tokenizer"]["corpora"]) | {spec["corpus"]})
    return {n: get_corpus(n, code_dir=spec["code_dir"], text_files=spec["text_files"],
                          exclude=spec["text_exclude"], piece_lines=spec["piece_lines"]) for n in names}


def _semantic(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in _LOCATION_KEYS}


def tokenizer_key(spec: dict[str, Any], corpora: dict[str, Corpus]) -> str:
    tok = spec["tokenizer"]
    return stable_hash([spec["model"]["architecture"], tok, spec["seed"], spec["piece_lines"],
                        spec["text_exclude"], spec["model"].get("max_position_embeddings", 512),
                        {n: corpora[n].fingerprint for n in tok["corpora"]}, VERSION])


def model_key(spec: dict[str, Any], corpora: dict[str, Corpus]) -> str:
    return stable_hash([_semantic(spec), {n: c.fingerprint for n, c in corpora.items()}, VERSION])


def shared_tokenizer(spec: dict[str, Any], corpora: dict[str, Corpus], cache_dir: str | Path) -> Path:
    """The tokenizer directory for ``spec`` (trained once; shared by every card that agrees)."""
    tok = spec["tokenizer"]
    out = Path(cache_dir) / "tokenizers" / f"pretrain-{tokenizer_key(spec, corpora)}"

    def fill(tmp: Path) -> None:
        docs: list[str] = []
        sample = {}
        for name in tok["corpora"]:
            part = corpora[name].sample_text(int(tok["chars_per_corpus"]), int(spec["seed"]))
            sample[name] = {"documents": len(part), "chars": sum(map(len, part))}
            docs += part
        log.info("Training the shared pretraining tokenizer (%s) in %s", ", ".join(tok["corpora"]), out)
        hf_tok = train_tokenizer(docs, spec["model"]["architecture"], int(tok["vocab_size"]),
                                 int(spec["model"].get("max_position_embeddings", 512)))
        hf_tok.save_pretrained(tmp)
        atomic_write_json(tmp / "itt_tokenizer.json", {
            "corpora": {n: corpora[n].describe() for n in tok["corpora"]}, "sample": sample,
            "settings": tok, "vocab": len(hf_tok)})

    return build_once(out, lambda: publish_dir(out, fill), lambda p: (p / "tokenizer.json").exists())


def model_dir(model_cfg: dict[str, Any], cache_dir: str | Path) -> tuple[Path, dict[str, Any], dict[str, Corpus]]:
    """Where the card's model is (or will be) cached, with its settings and corpora."""
    spec = settings(model_cfg)
    corpora = corpora_for(spec)
    return Path(cache_dir) / "models" / f"{model_cfg['name']}-{model_key(spec, corpora)}", spec, corpora


def is_built(path: Path) -> bool:
    return (path / "config.json").exists() and (path / META_FILE).exists()


def build_pretrained(model_cfg: dict[str, Any], cache_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Return the directory of the card's pretrained model, pretraining it on first use.

    ``out_dir`` builds into that directory instead of the cache (always trains).
    """
    cached, spec, corpora = model_dir(model_cfg, cache_dir)
    out = Path(out_dir) if out_dir else cached

    def build() -> None:
        tok_dir = shared_tokenizer(spec, corpora, cache_dir)
        log.info("Pretraining %s on %s (%d tokens, first use; cached in %s)", model_cfg["name"], spec["corpus"],
                 int(spec["tokens"]), out)
        pretrain(spec["model"], corpora[spec["corpus"]], out, int(spec["tokens"]), tokenizer=tok_dir,
                 held_out_tokens=int(spec["held_out_tokens"]), epochs=int(spec["epochs"]),
                 batch_size=int(spec["batch_size"]), max_length=int(spec["max_length"]), lr=float(spec["lr"]),
                 warmup_ratio=float(spec["warmup_ratio"]), weight_decay=float(spec["weight_decay"]),
                 mask_prob=float(spec["mask_prob"]), grad_clip=float(spec["grad_clip"]), seed=int(spec["seed"]))

    return build_once(out, build, is_built if out_dir is None else (lambda p: False))
