"""The LightningModule: a shared encoder with one task head; the task type (see
itt.tasks) supplies the head, the loss, the predictions and the metrics."""
from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from itt.models.heads import hidden_size

log = logging.getLogger(__name__)

_ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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


def gather_predictions(chunks: list[tuple[list[int], list[Any]]], n: int | None = None) -> list[Any]:
    """Put (indices, predictions) chunks, from any batch order or rank, back in item order."""
    by_index: dict[int, Any] = {}
    for idx, preds in chunks:
        by_index.update(zip(idx, preds))
    size = n if n is not None else len(by_index)
    missing = [i for i in range(size) if i not in by_index]
    if missing:
        raise RuntimeError(f"no prediction for {len(missing)} items (first: {missing[:5]})")
    return [by_index[i] for i in range(size)]


class ITTModule(pl.LightningModule):
    """Encoder + head; ``impl`` is the task type, ``card`` the task card."""

    def __init__(self, encoder: nn.Module, *, impl: Any, card: Any, pooling: str, optim: dict[str, Any],
                 dropout: float = 0.1, head: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.impl = impl
        self.card = card
        self.pooling = pooling
        self.optim = dict(optim)
        self.main_metric = card.main_metric
        self.head = head if head is not None else impl.head(hidden_size(encoder), card, dropout)
        self.val_split: Any = None
        self._val: list[tuple[list[int], list[Any]]] = []
        self.last_val: dict[str, float] = {}
        self.val_history: list[dict[str, float]] = []
        import inspect

        params = inspect.signature(encoder.forward).parameters
        self._inputs = tuple(k for k in _ENCODER_INPUTS if k in params or k != "token_type_ids")

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        kwargs = {k: batch[k] for k in self._inputs if k in batch}
        # A task type may ask for more of the encoder (e.g. output_hidden_states for a
        # middle-layer representation) and then gets the whole output, not the last layer.
        kwargs.update(getattr(self.impl, "encoder_kwargs", None) or {})
        out = self.encoder(**kwargs)
        if getattr(self.impl, "wants_encoder_output", False):
            return self.impl.logits(self.head, out, batch, self.pooling)
        return self.impl.logits(self.head, out.last_hidden_state, batch, self.pooling)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.impl.loss(self(batch), batch)
        if self._logs_this_step():
            self.log("train/loss", loss, prog_bar=True, batch_size=int(batch["index"].numel()))
        return loss

    def _logs_this_step(self) -> bool:
        """Whether the loggers take this step's values (every ``log_every_n_steps``-th step).

        ``self.log`` costs about a millisecond per call, a share of a small model's step;
        on the other steps its value would only reach the progress bar, which then shows
        the loss of the last logged step."""
        trainer = self._trainer
        connector = getattr(trainer, "_logger_connector", None)
        try:
            return trainer is None or bool(connector.should_update_logs)
        except Exception:  # noqa: BLE001 - another Lightning version: log every step, as before
            return True

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        n = int(batch["index"].numel())
        self.log("val/loss", self.impl.loss(logits, batch), batch_size=n, sync_dist=True)
        self._val.append((batch["index"].tolist(), self.impl.predict_batch(logits, batch)))

    def on_validation_epoch_end(self) -> None:
        if not self._val or self.val_split is None:
            return
        chunks = list(self._val)
        self._val.clear()
        if self.trainer is not None and self.trainer.world_size > 1:
            gathered: list[Any] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(gathered, chunks)
            chunks = [c for part in gathered for c in part]
        preds = gather_predictions(chunks, len(self.val_split))
        values = self.impl.score(preds, self.val_split, self.card)
        self.last_val = values
        self.val_history.append(values)
        for k, v in values.items():
            self.log(f"val/{k}", float("-inf") if v is None or v != v else float(v),
                     prog_bar=(k == self.main_metric))

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # Lightning's mixed-precision plugin refuses to clip for a fused optimizer because, with
        # fp16, the fused step unscales the gradients itself (clipping before it would clip scaled
        # gradients). bf16-mixed has no grad scaler: the gradients are already true values, so
        # clipping them here is what the unfused path does. fp16 keeps Lightning's own check.
        if not gradient_clip_val or not str(self.trainer.precision).startswith("bf16"):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, float(gradient_clip_val))
        else:
            torch.nn.utils.clip_grad_norm_(params, float(gradient_clip_val))

    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias")
        params = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in params if not any(k in n for k in no_decay)],
             "weight_decay": float(self.optim.get("weight_decay", 0.0))},
            {"params": [p for n, p in params if any(k in n for k in no_decay)], "weight_decay": 0.0},
        ]
        # The fused kernel exists for CUDA and (torch >= 2.4) CPU tensors; on a CPU it is several
        # times faster than the default multi-tensor step (benchmarks/, section 2).
        # Not with fp16-mixed: its grad scaler and Lightning's clipping need the unfused step.
        fp16 = str(getattr(self.trainer, "precision", "")).startswith("16")
        fused = bool(params) and not fp16 and all(
            p.device.type in ("cuda", "cpu") and p.is_floating_point() for _, p in params)
        opt = torch.optim.AdamW(groups, lr=float(self.optim["lr"]), fused=fused or None)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(float(self.optim.get("warmup_ratio", 0.0)) * total)
        sched = get_linear_schedule_with_warmup(opt, warmup, total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

