"""Task heads and pooling. The encoder is shared; a head belongs to one task and is dropped
when the encoder moves on to the next stage."""
from __future__ import annotations

import torch
from torch import nn


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Sequence representation: first token ([CLS]/<s>), last real token (XLNet's summary
    token; works for left and right padding) or the mean over real tokens."""
    if mode == "first":
        # With left padding the first real token is not at position 0.
        first = mask.float().argmax(dim=1)
        return hidden[torch.arange(hidden.size(0), device=hidden.device), first]
    if mode == "last":
        width = mask.size(1)
        positions = torch.arange(width, device=mask.device).expand_as(mask)
        last = torch.where(mask.bool(), positions, torch.full_like(positions, -1)).max(dim=1).values
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    if mode == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    raise ValueError(f"unknown pooling '{mode}' (first, last or mean)")


class SequenceHead(nn.Module):
    """dense -> tanh -> dropout -> linear, on the pooled representation (as in BERT/RoBERTa)."""

    def __init__(self, hidden: int, num_outputs: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_outputs)
        for lin in (self.dense, self.out):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(pooled)))))


def hidden_size(encoder: nn.Module) -> int:
    cfg = encoder.config
    for attr in ("hidden_size", "d_model", "dim"):
        if getattr(cfg, attr, None):
            return int(getattr(cfg, attr))
    raise ValueError(f"cannot tell the hidden size of {type(encoder).__name__}")
