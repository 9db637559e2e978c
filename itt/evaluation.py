"""Evaluation of a trained module: predictions per test language, their scores and
average, the majority-class baseline, and per-example rows for paired tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from itt.builders import device_for
from itt.data.cards import TaskCard


def autocast_for(device: torch.device, precision: str):
    """Inference autocast for a stage's ``trainer.precision``: bf16-mixed autocasts on CUDA and
    on CPUs (oneDNN's bf16 kernels), anything else runs as is."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled="bf16" in str(precision))


@torch.inference_mode()
def predict(module: Any, split: Any, collator: Any, batch_size: int, device: torch.device,
            precision: str = "32-true") -> list[Any]:
    """Predictions for an encoded split, in the split's order (batches sorted by length)."""
    from itt.data.batching import make_loader
    from itt.models.module import gather_predictions

    module.eval().to(device)
    loader = make_loader(split, batch_size, collator, train=False, shard=False)  # all of it, here
    chunks = []
    with autocast_for(device, precision):
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            chunks.append((batch["index"].tolist(), module.impl.predict_batch(module(batch), batch)))
    return gather_predictions(chunks, len(split))


def aggregate(per_language: dict[str, dict[str, float]], card: TaskCard) -> dict[str, Any]:
    def mean(m: str) -> float | None:
        vals = [v.get(m) for v in per_language.values()]
        vals = [x for x in vals if x is not None and x == x]
        return round(sum(vals) / len(vals), 6) if len(vals) == len(per_language) and vals else None

    per_language = {lang: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()}
                    for lang, m in per_language.items()}
    average = {m: mean(m) for m in card.metrics}
    return {"main": average.get(card.main_metric), "per_language": per_language, "average": average}


def per_example(preds: list[Any], split: Any) -> dict[str, list] | None:
    """Predictions and gold labels of a split in its order, for the report's paired tests
    over examples; None for types whose predictions are not one number per example."""
    labels = getattr(split, "labels", None)
    if labels is None or len(preds) != len(labels) or \
            not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in preds):
        return None
    return {"pred": [round(float(p), 6) if isinstance(p, float) else int(p) for p in preds],
            "gold": [round(float(g), 6) if isinstance(g, float) else int(g) for g in np_list(labels)]}


def np_list(values: Any) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def evaluate(module: Any, tests: dict[str, Any], collator: Any, card: TaskCard, cfg: dict[str, Any],
             run_dir: Path | None = None, tag: str = "",
             examples: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scores per test language (and their average). ``examples``, when given, receives each
    language's per-example predictions and gold labels (see :func:`per_example`)."""
    device = device_for(cfg)
    per_language = {}
    for lang, split in tests.items():
        preds = predict(module, split, collator, int(cfg["stage2"]["eval_batch_size"]), device,
                        cfg["trainer"]["precision"])
        m = dict(module.impl.score(preds, split, card))
        m["n"] = int(getattr(split, "n_examples", len(split)))   # QA: questions, not windows
        per_language[lang] = m
        if examples is not None:
            rows = per_example(preds, split)
            if rows is not None:
                examples[lang] = rows
        if run_dir is not None and cfg["eval"]["export_predictions"]:
            module.impl.export(preds, split, card, lang, run_dir / "predictions" / (tag or "target"))
    return aggregate(per_language, card)


def majority_baseline(train: Any, tests: dict[str, Any], card: TaskCard) -> dict[str, Any] | None:
    """The most frequent training label (classification) or the training mean (regression)."""
    from itt.tasks import get_task_type

    impl = get_task_type(card.type)
    per_language = {}
    for lang, split in tests.items():
        m = impl.majority(train, split, card)
        if m is None:
            return None
        per_language[lang] = dict(m, n=len(split))
    return aggregate(per_language, card)
