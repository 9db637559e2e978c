"""Frozen features of a task's examples: the data a cell would see, encoded the way the cell
encodes it, passed once through an encoder without gradients, pooled per example."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from itt.data.cards import TaskCard
from itt.errors import ConfigError

log = logging.getLogger(__name__)

#: Task types whose examples are one sequence (or one pair) with one label: the selection
#: methods score those.
SEQUENCE_TYPES = ("single_text_classification", "text_pair_classification", "text_pair_regression")
_ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def check_type(card: TaskCard, role: str) -> None:
    if card.type not in SEQUENCE_TYPES:
        raise ConfigError(f"{role} '{card.name}' is of type {card.type}; intermediate-task selection scores "
                          f"sequence-level tasks only ({', '.join(SEQUENCE_TYPES)}). Choose another {role}.")


@dataclass
class Split:
    """One encoded split of a task and its labels."""

    card: TaskCard
    tokens: Any             # TokenizedSplit
    labels: np.ndarray


def load_splits(card: TaskCard, tokenizer: Any, cfg: dict[str, Any], stage: str, roles: tuple[str, ...],
                max_examples: int | None = None, seed: int = 0) -> dict[str, Split]:
    """The ``roles`` (train, validation) of a task as a cell's ``stage`` loads and encodes
    them (itt.cell's data preparation: same split seed, caps and token length), the training
    split further cut to ``max_examples`` seeded rows."""
    from itt.data.loading import load_task
    from itt.tasks import get_task_type

    check_type(card, "task")
    impl = get_task_type(card.type)
    s = cfg[stage]
    data = load_task(card, impl, split_seed=int(cfg["data"]["split_seed"]), assets_dir=cfg["paths"]["assets_dir"],
                     max_train_examples=s.get("max_train_examples"), need_test=False,
                     max_eval_examples=s.get("max_eval_examples"), max_val_examples=s.get("max_val_examples"))
    cache = cfg["paths"]["cache_dir"] if cfg["data"].get("cache", True) else None
    out = {}
    for role in roles:
        ds = data.train if role == "train" else data.validation
        if role == "train" and max_examples and len(ds) > max_examples:
            idx = np.random.default_rng(seed).permutation(len(ds))[:max_examples]
            ds = ds.select(np.sort(idx))
        tok = impl.encode(ds, tokenizer, card, int(s["max_length"]), cache, f"{card.name}/{role}")
        out[role] = Split(card=card, tokens=tok, labels=np.asarray(tok.labels))
    return out


def _inputs(encoder: torch.nn.Module) -> tuple[str, ...]:
    import inspect

    params = inspect.signature(encoder.forward).parameters
    return tuple(k for k in _ENCODER_INPUTS if k in params or k != "token_type_ids")


@torch.inference_mode()
def encode(encoder: torch.nn.Module, tokenizer: Any, split: Split, poolings: tuple[str, ...],
           batch_size: int = 64, head: Any = None, head_pooling: str = "mean",
           precision: str = "32-true") -> dict[str, Any]:
    """Pooled features of every example of ``split``, in its order: ``{pooling: n x H array}``,
    and with ``head`` (a stage-1 task head) ``"predictions"``: the head's predictions.
    ``precision``: the grid's ``trainer.precision`` (bf16-mixed autocasts, as evaluation does)."""
    from itt.data.batching import make_loader
    from itt.evaluation import autocast_for
    from itt.models.heads import pool
    from itt.models.module import gather_predictions
    from itt.tasks import get_task_type

    impl = get_task_type(split.card.type)
    collator = impl.collator(tokenizer, split.card)
    loader = make_loader(split.tokens, batch_size, collator, train=False, shard=False)
    device = next(encoder.parameters()).device
    encoder.eval()
    names = _inputs(encoder)
    n = len(split.tokens)
    feats: dict[str, np.ndarray | None] = {p: None for p in poolings}
    preds: list[tuple[list[int], list[Any]]] = []
    with autocast_for(device, precision):
        for batch in loader:
            idx = batch["index"].numpy()
            kwargs = {k: batch[k].to(device) for k in names if k in batch}
            hidden = encoder(**kwargs).last_hidden_state
            mask = batch["attention_mask"].to(device)
            for p in poolings:
                v = pool(hidden, mask, p).float().cpu().numpy()
                if feats[p] is None:
                    feats[p] = np.zeros((n, v.shape[1]), dtype=np.float32)
                feats[p][idx] = v
            if head is not None:
                batch_d = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
                logits = impl.logits(head, hidden, batch_d, head_pooling)
                preds.append((idx.tolist(), impl.predict_batch(logits, batch_d)))
    out: dict[str, Any] = dict(feats)
    if head is not None:
        out["predictions"] = gather_predictions(preds, n)
    return out
