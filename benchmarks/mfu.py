"""Model FLOPs and model FLOPs utilisation (MFU).

FLOPs of one training step on real tokens, following Kaplan et al. (2020) and PaLM
(Chowdhery et al., 2022, appendix B): a forward and backward pass costs 6 FLOPs per
parameter per token for the dense layers, plus the attention score and value products,
12 x layers x hidden x sequence length per token (forward and backward):

    FLOPs(sequence of length T) = 6 * N * T + 12 * L * d * T**2

N counts the non-embedding parameters (embedding lookups are gathers, not matmuls), L the
layers, d the hidden size. Only real tokens count: padding is work the model did not need.
MFU = model FLOPs per second / the device's peak dense FLOPs per second at the precision
used (bf16 on a GPU). On a CPU there is no vendor peak to divide by; the report gives the
model FLOPs per second and, for scale, the same process's dense-matmul FLOPs per second.
"""
from __future__ import annotations

import os
import time
from typing import Any, Iterable

import numpy as np

#: Dense bf16 peak FLOP/s (no sparsity) by device name fragment; ITT_PEAK_FLOPS overrides.
PEAK_BF16 = {
    "H200": 989e12, "H100 SXM": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12,
    "A100": 312e12, "L40S": 362e12, "L40": 181e12, "L4": 121e12, "A10G": 125e12, "A10": 125e12,
    "RTX 4090": 165e12, "RTX 3090": 71e12, "V100": 125e12, "T4": 65e12,
}


def non_embedding_params(model: Any) -> int:
    """Parameters outside embedding tables (word, position, token-type)."""
    total = 0
    for name, p in model.named_parameters():
        if "embeddings" in name.split(".") or name.endswith(("word_embeddings.weight", "position_embeddings.weight",
                                                              "token_type_embeddings.weight",
                                                              "word_embedding.weight")):   # XLNet's name
            continue
        total += p.numel()
    return total


def flops_per_sequence(n_params: int, layers: int, hidden: int, lengths: Iterable[int] | np.ndarray) -> float:
    """Training FLOPs (forward + backward) of sequences of the given real lengths."""
    t = np.asarray(list(lengths) if not isinstance(lengths, np.ndarray) else lengths, dtype=np.float64)
    return float(6.0 * n_params * t.sum() + 12.0 * layers * hidden * (t ** 2).sum())


def model_shape(encoder: Any) -> tuple[int, int]:
    """(layers, hidden size) of a transformers encoder."""
    cfg = encoder.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None)
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model", None)
    return int(layers), int(hidden)


def peak_flops(device_name: str | None = None) -> float | None:
    """The device's dense bf16 peak, from ITT_PEAK_FLOPS or the table; None if unknown."""
    env = os.environ.get("ITT_PEAK_FLOPS")
    if env:
        return float(env)
    if device_name is None:
        import torch

        if not torch.cuda.is_available():
            return None
        device_name = torch.cuda.get_device_name(0)
    for key in sorted(PEAK_BF16, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return PEAK_BF16[key]
    return None


def mfu(model_flops: float, seconds: float, device_name: str | None = None) -> float | None:
    """Model FLOPs utilisation of a run that did ``model_flops`` in ``seconds``."""
    peak = peak_flops(device_name)
    if peak is None or seconds <= 0:
        return None
    return model_flops / seconds / peak


def matmul_flops_per_s(n: int = 1024, repeats: int = 8) -> float:
    """Dense float32 matmul throughput of this process right now (a CPU's practical peak)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2.0 * n ** 3 * repeats / (time.perf_counter() - start)
