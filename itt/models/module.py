"""The LightningModule: a shared encoder with one task head."""
from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from itt.metrics.task_metrics import compute
from itt.models.heads import SequenceHead, hidden_size, pool

log = logging.getLogger(__name__)


def _layers(encoder: nn.Module) -> nn.ModuleList | None:
    for path in ("encoder.layer", "layer", "layers", "transformer.layer", "encoder.layers"):
        obj: Any = encoder
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    return None


def freeze(encoder: nn.Module, embeddings: bool, n_layers: int) -> int:
    """Freeze the embeddings and/or the lowest ``n_layers`` layers; returns frozen params."""
    frozen = 0
    modules: list[nn.Module] = []
    if embeddings:
        emb = getattr(encoder, "embeddings", None) or encoder.get_input_embeddings()
        modules.append(emb)
    if n_layers:
        layers = _layers(encoder)
        if layers is None:
            raise ValueError(f"cannot find the layer stack of {type(encoder).__name__} to freeze")
        if n_layers > len(layers):
            raise ValueError(f"freeze_layers={n_layers} but the encoder has {len(layers)} layers")
        modules += list(layers[:n_layers])
    for m in modules:
        for p in m.parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                frozen += p.numel()
    return frozen


class ITTModule(pl.LightningModule):
    """Encoder + sequence head for classification (cross-entropy) or regression (MSE)."""

    def __init__(self, encoder: nn.Module, *, task_type: str, num_labels: int, pooling: str,
                 metrics: list[str], main_metric: str, optim: dict[str, Any], dropout: float = 0.1,
                 head: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.task_type = task_type
        self.regression = task_type == "text_pair_regression"
        self.num_labels = num_labels
        self.pooling = pooling
        self.metric_names = list(metrics)
        self.main_metric = main_metric
        self.optim = dict(optim)
        self.head = head if head is not None else SequenceHead(
            hidden_size(encoder), 1 if self.regression else num_labels, dropout)
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.last_val: dict[str, float] = {}
        self.val_history: list[dict[str, float]] = []
        self._accepts_types = "token_type_ids" in encoder.forward.__code__.co_varnames

    # -- forward -----------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch and self._accepts_types:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        hidden = self.encoder(**kwargs).last_hidden_state
        logits = self.head(pool(hidden, batch["attention_mask"], self.pooling))
        return logits.squeeze(-1) if self.regression else logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.regression:
            return nn.functional.mse_loss(logits.float(), labels.float())
        return nn.functional.cross_entropy(logits.float(), labels)

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float() if self.regression else logits.argmax(-1)

    # -- Lightning hooks ---------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch), batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["labels"].size(0))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        self.log("val/loss", self.loss(logits, batch["labels"]), batch_size=batch["labels"].size(0), sync_dist=True)
        self._val.append((self.predictions(logits).detach().cpu(), batch["labels"].detach().cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        preds = torch.cat([p for p, _ in self._val])
        labels = torch.cat([t for _, t in self._val])
        self._val.clear()
        if self.trainer is not None and self.trainer.world_size > 1:
            preds = self.all_gather(preds.to(self.device)).reshape(-1).cpu()
            labels = self.all_gather(labels.to(self.device)).reshape(-1).cpu()
        values = compute(self.metric_names, preds, labels, self.num_labels)
        self.last_val = values
        self.val_history.append(values)
        for k, v in values.items():
            self.log(f"val/{k}", float("-inf") if v != v else v, prog_bar=(k == self.main_metric))

    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias")
        params = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in params if not any(k in n for k in no_decay)],
             "weight_decay": float(self.optim.get("weight_decay", 0.0))},
            {"params": [p for n, p in params if any(k in n for k in no_decay)], "weight_decay": 0.0},
        ]
        fused = torch.cuda.is_available() and all(p.is_cuda for _, p in params)
        opt = torch.optim.AdamW(groups, lr=float(self.optim["lr"]), fused=fused or None)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(float(self.optim.get("warmup_ratio", 0.0)) * total)
        sched = get_linear_schedule_with_warmup(opt, warmup, total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
