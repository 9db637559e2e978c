"""Masked language modelling of a tiny encoder on a token budget.

The budget is counted in tokens *after* tokenization (content tokens; the ``<s>``/``</s>``
wrapped around each block and the padding of the last block are not counted), so two corpora
given the same budget give the same number of training blocks and optimiser steps: the
comparison is about what the tokens are, not how many. Documents are taken in the corpus's
seeded order: the first ``held_out_tokens`` worth of documents form the held-out set (whole
documents, never seen in training), the next ``token_budget`` tokens the training stream, cut
exactly at the budget. The stream is split into blocks of ``max_length - 2`` tokens without
document separators (every block has the same shape whatever the corpus's document lengths).

Masking follows BERT/RoBERTa: ``mask_prob`` of the content tokens are predicted; of those 80%
are replaced by ``<mask>``, 10% by a random token, 10% kept. The output layer is applied to
the predicted positions only, which on a CPU is most of the step's cost saved. The held-out
loss uses one fixed masking, so "before" and "after" are measured on the same predictions.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from itt.errors import ConfigError, DataError
from itt.models.tiny import _model_config, train_tokenizer  # train_tokenizer: re-exported
from itt.pretraining.corpora import Corpus, get_corpus, in_memory
from itt.utils import atomic_write_json, publish_dir, utc_now

log = logging.getLogger(__name__)

MLM_ARCHITECTURES = ("bert", "roberta", "xlm-roberta")
META_FILE = "itt_pretrain.json"
ARCH_KEYS = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_position_embeddings")


@dataclass
class Blocks:
    """A corpus cut to a token budget: training and held-out blocks, and their token counts."""

    train: torch.Tensor            # [n_blocks, max_length] input ids, <s> ... </s> [pad]
    held_out: torch.Tensor
    train_tokens: int              # content tokens in ``train`` (== the budget)
    held_out_tokens: int
    train_documents: int
    held_out_documents: int
    corpus_tokens_read: int        # content tokens tokenized to fill both


def _backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind a fast tokenizer (or the object itself)."""
    return getattr(tokenizer, "backend_tokenizer", tokenizer)


def special_ids(tokenizer: Any) -> dict[str, int]:
    ids = {k: getattr(tokenizer, f"{k}_token_id") for k in ("cls", "sep", "pad", "mask")}
    missing = [k for k, v in ids.items() if v is None]
    if missing:
        raise ConfigError(f"Pretraining needs a tokenizer with {', '.join(missing)} tokens.")
    return ids


def tokenize_budget(corpus: Corpus, tokenizer: Any, token_budget: int, held_out_tokens: int,
                    max_length: int, seed: int, batch_docs: int = 64) -> Blocks:
    """Cut ``corpus`` to exactly ``token_budget`` training tokens (see the module docstring)."""
    if token_budget <= 0 or held_out_tokens < 0:
        raise ConfigError(f"token budget must be > 0 and held-out tokens >= 0, got {token_budget}, "
                          f"{held_out_tokens}.")
    if max_length < 8:
        raise ConfigError(f"pretraining max_length must be at least 8, got {max_length}.")
    backend = _backend(tokenizer)
    wanted = {"held_out": held_out_tokens, "train": token_budget}
    streams: dict[str, list[int]] = {"held_out": [], "train": []}
    docs_used = {"held_out": 0, "train": 0}
    part = "held_out" if held_out_tokens > 0 else "train"
    read = 0
    docs = corpus.documents(seed)
    for start in range(0, len(docs), batch_docs):
        for enc in backend.encode_batch(docs[start:start + batch_docs], add_special_tokens=False):
            ids = enc.ids
            if not ids:
                continue
            read += len(ids)
            room = wanted[part] - len(streams[part])
            streams[part] += ids[:room]
            docs_used[part] += 1
            if len(streams[part]) >= wanted[part]:
                if part == "train":
                    break
                part = "train"
        if len(streams["train"]) >= token_budget:
            break
    if len(streams["train"]) < token_budget:
        total = len(streams["train"]) + len(streams["held_out"])
        raise DataError(f"Corpus '{corpus.name}' has {total} tokens in all; the budget needs "
                        f"{token_budget} training + {held_out_tokens} held-out tokens. Lower "
                        "model.pretrain.tokens (the same for both corpora).")
    sp = special_ids(tokenizer)
    return Blocks(train=_blocks(streams["train"], max_length, sp),
                  held_out=_blocks(streams["held_out"], max_length, sp),
                  train_tokens=len(streams["train"]), held_out_tokens=len(streams["held_out"]),
                  train_documents=docs_used["train"], held_out_documents=docs_used["held_out"],
                  corpus_tokens_read=read)


def _blocks(stream: list[int], max_length: int, sp: dict[str, int]) -> torch.Tensor:
    width = max_length - 2
    rows = []
    for i in range(0, len(stream), width):
        chunk = [sp["cls"]] + stream[i:i + width] + [sp["sep"]]
        rows.append(chunk + [sp["pad"]] * (max_length - len(chunk)))
    return torch.tensor(rows, dtype=torch.long) if rows else torch.empty(0, max_length, dtype=torch.long)


def content_mask(ids: torch.Tensor, sp: dict[str, int]) -> torch.Tensor:
    return (ids != sp["cls"]) & (ids != sp["sep"]) & (ids != sp["pad"])


def mask_tokens(ids: torch.Tensor, sp: dict[str, int], vocab_size: int, first_regular_id: int,
                prob: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, predicted positions, labels) with BERT's 80/10/10 corruption."""
    content = content_mask(ids, sp)
    chosen = (torch.rand(ids.shape, generator=gen) < prob) & content
    if not chosen.any():  # a batch with no prediction would give a NaN loss
        first = content.nonzero()[0]
        chosen[first[0], first[1]] = True
    labels = ids[chosen]
    r = torch.rand(ids.shape, generator=gen)
    inputs = ids.clone()
    inputs[chosen & (r < 0.8)] = sp["mask"]
    swap = chosen & (r >= 0.8) & (r < 0.9)
    inputs[swap] = torch.randint(first_regular_id, vocab_size, (int(swap.sum()),), generator=gen)
    return inputs, chosen, labels


def _split_mlm(model: Any) -> tuple[Any, Any]:
    """(encoder, output head) of a *ForMaskedLM model."""
    head = getattr(model, "lm_head", None) or getattr(model, "cls", None)
    if head is None:
        raise ConfigError(f"{type(model).__name__} has no masked-LM head this code knows.")
    return model.base_model, head


def mlm_loss(model: Any, ids: torch.Tensor, sp: dict[str, int], vocab_size: int, first_regular_id: int,
             prob: float, gen: torch.Generator) -> tuple[torch.Tensor, int]:
    encoder, head = _split_mlm(model)
    inputs, chosen, labels = mask_tokens(ids, sp, vocab_size, first_regular_id, prob, gen)
    hidden = encoder(input_ids=inputs, attention_mask=(ids != sp["pad"]).long()).last_hidden_state
    logits = head(hidden[chosen])
    return torch.nn.functional.cross_entropy(logits.float(), labels), int(labels.numel())


@torch.no_grad()
def held_out_loss(model: Any, blocks: torch.Tensor, sp: dict[str, int], vocab_size: int,
                  first_regular_id: int, prob: float, seed: int, batch_size: int = 64) -> float | None:
    """Mean cross-entropy per predicted token on ``blocks`` under one fixed masking."""
    if len(blocks) == 0:
        return None
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed + 7919)
    total, n = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        loss, count = mlm_loss(model, blocks[i:i + batch_size], sp, vocab_size, first_regular_id, prob, gen)
        total += float(loss) * count
        n += count
    model.train(was_training)
    return total / n


def _as_corpus(corpus: Corpus | str | Sequence[str]) -> Corpus:
    if isinstance(corpus, Corpus):
        return corpus
    if isinstance(corpus, str):
        return get_corpus(corpus)
    return in_memory("documents", corpus)


def _load_tokenizer(tokenizer: Any):
    if tokenizer is None or not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer), local_files_only=True)


def _optimizer(model: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def pretrain(model_cfg: Mapping[str, Any], corpus: Corpus | str | Sequence[str], out_dir: str | os.PathLike,
             token_budget: int, *, tokenizer: Any = None, held_out_tokens: int = 20_000, epochs: int = 2,
             batch_size: int = 32, max_length: int = 64, lr: float = 1e-3, warmup_ratio: float = 0.06,
             weight_decay: float = 0.01, mask_prob: float = 0.15, grad_clip: float = 1.0, seed: int = 0,
             vocab_size: int = 4000, tokenizer_chars: int = 1_000_000, log_every: int = 50) -> dict[str, Any]:
    """Pretrain a tiny encoder with masked language modelling and save it to ``out_dir``.

    ``model_cfg``: ``architecture`` (bert | roberta | xlm-roberta) and the sizes
    ``hidden_size``, ``num_layers``, ``num_heads``, ``intermediate_size``,
    ``max_position_embeddings`` (the keys of a tiny model card), or a whole model card whose
    ``pretrain.model`` (or ``tiny``) block holds them. ``corpus``: ``"code"``,
    ``"text"``, a :class:`Corpus`, or a list of documents. ``tokenizer``: a fast tokenizer or
    its directory; ``None`` trains one on ``tokenizer_chars`` characters of ``corpus``.

    ``out_dir`` receives an encoder loadable with ``AutoModel.from_pretrained`` (pooler
    initialised, not trained: MLM does not train it), its tokenizer and ``itt_pretrain.json``
    (token counts, held-out MLM loss before and after, losses during training, wall time).
    Returns that summary.
    """
    from transformers import AutoModel, AutoModelForMaskedLM, get_linear_schedule_with_warmup

    for block in ("pretrain", "tiny"):   # a whole model card: its sizes
        if isinstance(model_cfg.get(block), Mapping):
            sizes_block = model_cfg[block].get("model", model_cfg[block])
            model_cfg = {"architecture": model_cfg.get("architecture", "roberta"), **sizes_block}
            break
    arch = str(model_cfg.get("architecture", "roberta"))
    if arch not in MLM_ARCHITECTURES:
        raise ConfigError(f"Masked-LM pretraining supports {', '.join(MLM_ARCHITECTURES)}, not '{arch}'.")
    sizes = {k: model_cfg[k] for k in ARCH_KEYS if k in model_cfg}
    missing = [k for k in ARCH_KEYS[:4] if k not in sizes]
    if missing:
        raise ConfigError(f"Pretraining model config lacks {', '.join(missing)}.")
    if max_length - 2 > int(sizes.get("max_position_embeddings", 512)):
        raise ConfigError(f"pretraining max_length {max_length} exceeds max_position_embeddings.")
    out = Path(out_dir)
    if out.is_dir() and any(out.iterdir()) and not (out / META_FILE).exists():
        raise ConfigError(f"{out} exists and is not a pretrained-model directory; choose another output.")
    t_start = time.perf_counter()
    corpus = _as_corpus(corpus)
    tokenizer = _load_tokenizer(tokenizer)
    if tokenizer is None:
        tokenizer = train_tokenizer(corpus.sample_text(tokenizer_chars, seed), arch, vocab_size,
                                    int(sizes.get("max_position_embeddings", 512)))
    sp = special_ids(tokenizer)
    blocks = tokenize_budget(corpus, tokenizer, int(token_budget), int(held_out_tokens), int(max_length), seed)
    vocab = len(tokenizer)
    first_regular = max(sp.values()) + 1
    log.info("Pretraining on '%s': %d training tokens (%d blocks of %d), %d held-out tokens",
             corpus.name, blocks.train_tokens, len(blocks.train), max_length, blocks.held_out_tokens)

    torch.manual_seed(seed)
    config = _model_config(arch, sizes, vocab, sp["pad"])
    model = AutoModelForMaskedLM.from_config(config)
    before = held_out_loss(model, blocks.held_out, sp, vocab, first_regular, mask_prob, seed)
    steps_per_epoch = math.ceil(len(blocks.train) / batch_size)
    total_steps = max(1, steps_per_epoch * int(epochs))
    opt = _optimizer(model, lr, weight_decay)
    sched = get_linear_schedule_with_warmup(opt, int(warmup_ratio * total_steps), total_steps)
    gen = torch.Generator().manual_seed(seed)
    order_rng = random.Random(seed)
    curve: list[dict[str, float]] = []
    model.train()
    step, running, t_train = 0, 0.0, time.perf_counter()
    for epoch in range(int(epochs)):
        order = list(range(len(blocks.train)))
        order_rng.shuffle(order)
        for i in range(0, len(order), batch_size):
            loss, _ = mlm_loss(model, blocks.train[order[i:i + batch_size]], sp, vocab, first_regular,
                               mask_prob, gen)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            running += float(loss.detach())
            if step % log_every == 0 or step == total_steps:
                n = (step - 1) % log_every + 1
                curve.append({"step": step, "epoch": epoch, "loss": round(running / n, 4)})
                log.info("pretrain %s step %d/%d loss %.3f", corpus.name, step, total_steps, running / n)
                running = 0.0
    train_s = time.perf_counter() - t_train
    after = held_out_loss(model, blocks.held_out, sp, vocab, first_regular, mask_prob, seed)

    # The encoder alone, in the layout AutoModel loads (with the pooler the MLM model lacks).
    torch.manual_seed(seed)
    encoder = AutoModel.from_config(config)
    missing_keys, unexpected = encoder.load_state_dict(_split_mlm(model)[0].state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing_keys):
        raise RuntimeError(f"Encoder weights do not match: missing {missing_keys}, unexpected {unexpected}")
    summary = {
        "schema": "itt.pretrain/1",
        "corpus": corpus.describe(),
        "architecture": arch, "model": sizes, "vocab_size": vocab,
        "tokens": {"budget": int(token_budget), "train": blocks.train_tokens, "held_out": blocks.held_out_tokens,
                   "train_blocks": len(blocks.train), "train_documents": blocks.train_documents,
                   "held_out_documents": blocks.held_out_documents, "read": blocks.corpus_tokens_read,
                   "seen": blocks.train_tokens * int(epochs)},
        "settings": {"epochs": int(epochs), "batch_size": batch_size, "max_length": max_length, "lr": lr,
                     "warmup_ratio": warmup_ratio, "weight_decay": weight_decay, "mask_prob": mask_prob,
                     "grad_clip": grad_clip, "seed": seed, "steps": step},
        "held_out_loss": {"before": before, "after": after},
        "curve": curve,
        "wall_time_s": {"train": round(train_s, 3), "total": round(time.perf_counter() - t_start, 3)},
        "torch_threads": torch.get_num_threads(),
        "finished_at": utc_now(),
    }

    def fill(tmp: Path) -> None:
        encoder.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / META_FILE, summary)

    publish_dir(out, fill)
    log.info("Pretrained '%s' in %.1fs: held-out MLM loss %.3f -> %.3f (%s)", corpus.name,
             summary["wall_time_s"]["total"], before or float("nan"), after or float("nan"), out)
    return summary


def read_summary(model_dir: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(model_dir) / META_FILE).read_text())


__all__ = ["Blocks", "pretrain", "tokenize_budget", "train_tokenizer", "held_out_loss", "mask_tokens",
           "read_summary", "META_FILE"]
