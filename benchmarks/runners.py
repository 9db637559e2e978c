"""The contenders: itt's training path, a bare PyTorch loop and transformers' Trainer, each
training the same model (same weights at the start, same seed) on the same tokenized data.

* :func:`run_itt` is what a cell runs: the ITTModule built by ``itt.builders.build_module``, the
  loaders of ``itt.builders.make_loaders`` (``make_loader`` + the task's Collator) and
  ``itt.stages.fit`` itself (its Lightning Trainer, per-epoch validation and checkpoints).
  Hooks on the module split the wall time into training, validation and checkpoint spans.
* :func:`run_bare` is the plain loop over the very same loader: forward, loss, backward,
  gradient clipping, AdamW (itt's parameter groups) and a linear schedule.
* :func:`run_hf` is transformers' ``Trainer`` in its fastest configuration for this data:
  ``train_sampling_strategy="group_by_length"`` with precomputed lengths,
  ``DataCollatorWithPadding``, no evaluation, saving, logging or progress bar.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from benchmarks.workload import Workload


# ----------------------------------------------------------------------------- batches
class RecordedBatches(torch.utils.data.Sampler[list[int]]):
    """A batch sampler that remembers what it yielded (to count real and padded tokens
    afterwards, outside the timed loop) and can train on a stratified sample of an epoch.

    ``sample``: train on that many of the epoch's batches, one from each stratum of batches
    ordered by width, so that a short run has the epoch's mix of short and long batches
    (the first ``sample`` batches of a length-grouped epoch would not: its longest batch
    comes first by design). ``set_epoch`` is passed on, as Lightning's epoch reaches the
    wrapped sampler through itt's TrainingState callback."""

    def __init__(self, inner: Any, lengths: np.ndarray, sample: int | None = None, seed: int = 0) -> None:
        self.inner = inner
        self.lengths = np.asarray(lengths)
        self.sample = sample
        self.seed = seed
        self.seen: list[list[int]] = []

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def _chosen(self) -> list[list[int]]:
        batches = list(self.inner)
        if self.sample is None or self.sample >= len(batches):
            return batches
        widths = np.array([self.lengths[b].max() for b in batches])
        order = np.argsort(widths, kind="stable")
        strata = np.array_split(order, self.sample)
        rng = np.random.default_rng(self.seed)
        keep = sorted(int(rng.choice(s)) for s in strata if len(s))
        return [batches[i] for i in keep]

    def __iter__(self) -> Iterator[list[int]]:
        for b in self._chosen():
            self.seen.append(b)
            yield b

    def __len__(self) -> int:
        n = len(self.inner)
        return n if self.sample is None else min(n, self.sample)

    def tokens(self, pad_to: int | None = None) -> tuple[int, int]:
        """(real, padded) tokens of the batches yielded so far."""
        real = padded = 0
        for b in self.seen:
            lens = self.lengths[b]
            width = int(lens.max()) if pad_to is None else -(-int(lens.max()) // pad_to) * pad_to
            real += int(lens.sum())
            padded += width * len(b)
        return real, padded


def train_loader(wl: Workload, mode: str, *, sample: int | None = None, pad_to: int | None = None,
                 seed: int | None = None) -> tuple[torch.utils.data.DataLoader, RecordedBatches]:
    """itt's training loader (``itt.builders.make_loaders``) for batching ``mode``, its batch
    sampler wrapped to record (and optionally sample) the batches. ``pad_to`` pads every
    batch to a multiple of it (``max_length``: every batch padded to the maximum)."""
    from itt.builders import make_loaders as _loaders
    from itt.data.batching import TokenDataset

    cfg = _cfg(wl, mode, seed)
    loader, _, collator = _loaders({"train": wl.tok["train"], "validation": wl.tok["validation"]},
                                   wl.tokenizer, wl.card, cfg, "stage2")
    if pad_to:
        collator.multiple = int(pad_to)
    rec = RecordedBatches(loader.batch_sampler, wl.tok["train"].lengths, sample, seed=int(cfg["seed"]))
    out = torch.utils.data.DataLoader(TokenDataset(wl.tok["train"]), batch_sampler=rec, collate_fn=collator,
                                      num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                                      persistent_workers=loader.persistent_workers,
                                      generator=torch.Generator().manual_seed(int(cfg["seed"])))
    return out, rec


def val_loader(wl: Workload) -> torch.utils.data.DataLoader:
    from itt.builders import make_loaders as _loaders

    _, val, _ = _loaders({"train": wl.tok["train"], "validation": wl.tok["validation"]}, wl.tokenizer, wl.card,
                         wl.cfg, "stage2")
    return val


def _cfg(wl: Workload, mode: str | None = None, seed: int | None = None) -> dict[str, Any]:
    import copy

    cfg = copy.deepcopy(wl.cfg)
    if mode is not None:
        cfg["data"]["batching"] = mode
    if seed is not None:
        cfg["seed"] = int(seed)
    return cfg


def build_module(wl: Workload, seed: int, encoder: Any = None) -> Any:
    """The ITTModule a cell builds, seeded as a cell seeds it (head initialised after the
    seed is set): every contender starts from the same weights. ``encoder``: another
    encoder than the workload's (the framework-overhead probe's trivial one)."""
    import pytorch_lightning as pl

    from itt.builders import build_module as _module

    cfg = _cfg(wl, seed=seed)
    pl.seed_everything(int(seed), workers=True, verbose=False)
    module = _module(encoder if encoder is not None else wl.encoder(), wl.card, cfg, "stage2")
    module.val_split = wl.tok["validation"]
    return module


def accuracy(wl: Workload, module: Any) -> float:
    """Held-out accuracy, scored the same way for every contender (itt's ``predict``)."""
    from itt.builders import device_for as _device
    from itt.evaluation import predict

    collator = module.impl.collator(wl.tokenizer, wl.card)
    split = wl.tok["test"]["en"]
    device = _device(wl.cfg)
    preds = predict(module, split, collator, int(wl.stage["eval_batch_size"]), device,
                    wl.cfg["trainer"].get("precision", "32-true"))
    return float(module.impl.score(preds, split, wl.card)["accuracy"])


def _result(seconds: float, rec: RecordedBatches | None, pad_to: int | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": seconds, **extra}
    if rec is not None:
        real, padded = rec.tokens(pad_to)
        out.update(real_tokens=real, padded_tokens=padded, steps=len(rec.seen),
                   tok_per_s=real / seconds if seconds > 0 else float("nan"))
    return out


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- bare loop
def run_bare(wl: Workload, loader: torch.utils.data.DataLoader, rec: RecordedBatches, *, epochs: int = 1,
             seed: int = 0, pad_to: int | None = None, score: bool = False, encoder: Any = None) -> dict[str, Any]:
    """The plain loop: what any training loop must do per step, nothing else."""
    from transformers import get_linear_schedule_with_warmup

    module = build_module(wl, seed, encoder)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module.to(device).train()
    s = wl.stage
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias")
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in params if not any(k in n for k in no_decay)],
               "weight_decay": float(s.get("weight_decay", 0.0))},
              {"params": [p for n, p in params if any(k in n for k in no_decay)], "weight_decay": 0.0}]
    # The optimizer ITTModule.configure_optimizers builds (fused where the kernel exists).
    opt = torch.optim.AdamW(groups, lr=float(s["lr"]), fused=True if device.type in ("cuda", "cpu") else None)
    total = max(1, len(loader) * epochs)
    sched = get_linear_schedule_with_warmup(opt, int(float(s.get("warmup_ratio", 0.0)) * total), total)
    clip = float(s.get("grad_clip") or 0.0)
    all_params = [p for _, p in params]
    # bf16-mixed autocasts on the CPU too, as Lightning's precision plugin does.
    bf16 = "bf16" in str(wl.cfg["trainer"].get("precision", ""))
    _sync()
    start = time.perf_counter()
    for epoch in range(epochs):
        rec.set_epoch(epoch)
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = module.impl.loss(module(batch), batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(all_params, clip)
            opt.step()
            sched.step()
    _sync()
    seconds = time.perf_counter() - start
    extra = {"accuracy": accuracy(wl, module)} if score else {}
    return _result(seconds, rec, pad_to, train_seconds=seconds, **extra)


# ----------------------------------------------------------------------------- itt
class _Spans:
    """Timestamps from the module's own hooks: training, validation and checkpoint spans."""

    def __init__(self, module: Any) -> None:
        self.train = self.val = self.ckpt = 0.0
        self.epoch_times: list[float] = []
        self._t0 = self._v0 = self._scored = 0.0
        self._in_epoch = False
        for name in ("on_train_epoch_start", "on_validation_start", "on_validation_epoch_end",
                     "on_validation_end", "on_train_epoch_end"):
            setattr(module, name, self._wrap(name, getattr(module, name)))

    def _wrap(self, name: str, fn: Any) -> Any:
        def hook(*args: Any, **kwargs: Any) -> Any:
            if name in ("on_validation_start", "on_train_epoch_end"):
                _sync()
                now = time.perf_counter()
                if self._in_epoch:
                    self.train += now - self._t0
                    self.epoch_times.append(now - self._t0)
                    self._in_epoch = False
                if name == "on_validation_start":
                    self._v0 = now
            out = fn(*args, **kwargs)
            now = time.perf_counter()
            if name == "on_train_epoch_start":
                self._t0, self._in_epoch = now, True
            elif name == "on_validation_epoch_end":
                self._scored = now
                self.val += now - self._v0
            elif name == "on_validation_end":
                self.ckpt += now - (self._scored or self._v0)
            return out
        return hook


def run_itt(wl: Workload, loader: torch.utils.data.DataLoader, rec: RecordedBatches | None, *, epochs: int = 1,
            seed: int = 0, pad_to: int | None = None, score: bool = False, validate: bool = True,
            work_dir: Path | None = None, encoder: Any = None) -> dict[str, Any]:
    """``itt.stages.fit`` as a cell calls it (per-epoch validation, best and last
    checkpoints), with ``epochs`` epochs."""
    from itt import stages

    module = build_module(wl, seed, encoder)
    spans = _Spans(module)
    stage_cfg = dict(wl.stage, epochs=int(epochs))
    trainer_cfg = dict(wl.cfg["trainer"])
    ckpt = Path(tempfile.mkdtemp(prefix="itt-bench-ckpt-", dir=str(work_dir) if work_dir else None))
    try:
        _sync()
        start = time.perf_counter()
        outcome = stages.fit(module, loader, val_loader(wl) if validate else None, stage_cfg=stage_cfg,
                             trainer_cfg=trainer_cfg, logger=None, ckpt_dir=ckpt, main_metric="accuracy",
                             resume=False)
        _sync()
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
    extra = {"accuracy": accuracy(wl, module)} if score else {}
    res = _result(spans.train, rec, pad_to, fit_seconds=wall, train_seconds=spans.train, val_seconds=spans.val,
                  ckpt_seconds=spans.ckpt, epoch_seconds=spans.epoch_times, steps_done=outcome.steps, **extra)
    res["fixed_seconds"] = wall - spans.train - spans.val - spans.ckpt
    return res


class TrivialEncoder(torch.nn.Module):
    """An encoder that costs next to nothing (an embedding lookup), so that a training step
    is all framework: what is left of a step's time is the loop around the model."""

    def __init__(self, vocab: int, hidden: int = 16) -> None:
        super().__init__()
        from types import SimpleNamespace

        self.config = SimpleNamespace(hidden_size=hidden)
        self.embeddings = torch.nn.Embedding(vocab, hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(last_hidden_state=self.embeddings(input_ids))


# ----------------------------------------------------------------------------- transformers' Trainer
class HFClassifier(torch.nn.Module):
    """The ITTModule's encoder and head behind the interface ``Trainer`` expects; the
    ``length`` argument keeps the precomputed length column alive through the Trainer's
    column filter, so that its length-grouped sampler need not measure every example."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.inner = module

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None,
                length: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        logits = self.inner(batch)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.inner.impl.loss(logits, {"labels": labels})
        return out


def hf_dataset(split: Any) -> Any:
    import datasets

    ids = [split.ids[a:b].astype(np.int64).tolist() for a, b in zip(split.offsets[:-1], split.offsets[1:])]
    return datasets.Dataset.from_dict({"input_ids": ids, "label": np.asarray(split.labels).tolist(),
                                       "length": split.lengths.astype(np.int64).tolist()})


def hf_strategy_arg() -> str:
    """The TrainingArguments field for length grouping in the installed transformers."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "train_sampling_strategy" if "train_sampling_strategy" in fields else "group_by_length"


def run_hf(wl: Workload, dataset: Any, *, epochs: int = 1, seed: int = 0, strategy: str = "group_by_length",
           score: bool = False, work_dir: Path | None = None) -> dict[str, Any]:
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    module = build_module(wl, seed)
    model = HFClassifier(module)
    s = wl.stage
    out_dir = Path(tempfile.mkdtemp(prefix="itt-bench-hf-", dir=str(work_dir) if work_dir else None))
    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = dict(
        output_dir=str(out_dir), per_device_train_batch_size=int(s["batch_size"]), num_train_epochs=epochs,
        learning_rate=float(s["lr"]), weight_decay=float(s.get("weight_decay", 0.0)), lr_scheduler_type="linear",
        warmup_steps=float(s.get("warmup_ratio", 0.0)), max_grad_norm=float(s.get("grad_clip") or 0.0),
        length_column_name="length", report_to="none", save_strategy="no", eval_strategy="no",
        logging_strategy="no", disable_tqdm=True, seed=int(seed), data_seed=int(seed), use_cpu=not cuda,
        bf16=cuda and "bf16" in str(wl.cfg["trainer"].get("precision", "")), dataloader_num_workers=0)
    if hf_strategy_arg() == "train_sampling_strategy":
        kwargs["train_sampling_strategy"] = strategy
    else:  # transformers < 5
        kwargs["group_by_length"] = strategy == "group_by_length"
    args = TrainingArguments(**kwargs)
    epoch_times: list[float] = []

    class _Epochs(TrainerCallback):
        def on_epoch_begin(self, *a: Any, **k: Any) -> None:
            _sync()
            self.t0 = time.perf_counter()

        def on_epoch_end(self, *a: Any, **k: Any) -> None:
            _sync()
            epoch_times.append(time.perf_counter() - self.t0)

    trainer = Trainer(model=model, args=args, train_dataset=dataset,
                      data_collator=DataCollatorWithPadding(wl.tokenizer), processing_class=wl.tokenizer,
                      callbacks=[_Epochs()])
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)   # it prints the run's summary dict to stdout
    try:
        _sync()
        start = time.perf_counter()
        trainer.train()
        _sync()
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    extra = {"accuracy": accuracy(wl, module)} if score else {}
    train = sum(epoch_times)
    real = int(wl.tok["train"].lengths.sum()) * epochs
    return {"seconds": train, "fit_seconds": wall, "train_seconds": train, "epoch_seconds": epoch_times,
            "real_tokens": real, "tok_per_s": real / train, **extra}
