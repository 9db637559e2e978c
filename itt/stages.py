"""Training one stage with Lightning: resume checkpoints (with every RNG state), the
best-validation weights, and the outcome a cell records.

Both stages train through :func:`fit`; the stage-1 cache (:mod:`itt.stage1_cache`) keeps
what stage 1 produced, and only the encoder moves on to stage 2, where the target task gets
a freshly initialised head.
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.callbacks import Callback


log = logging.getLogger(__name__)


@dataclass
class StageOutcome:
    wall_time_s: float
    epochs: int
    steps: int
    best_val: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None
    resumed_from: dict[str, int] | None = None   # {"epoch", "step"} of the checkpoint resumed


def _rng_state() -> dict[str, Any]:
    """Every RNG a training step draws from, in types ``torch.load(weights_only=True)`` reads."""
    import random

    import numpy as np

    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype("int64")), int(np_state[2]),
                       int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class TrainingState(Callback):
    """Keeps the batch sampler on the trainer's epoch, and carries in every checkpoint what
    a Lightning checkpoint lacks for a resumed stage to continue exactly where the
    interrupted one stopped.

    Lightning calls ``set_epoch`` on a loader's sampler, never on its batch sampler, so the
    batch order would otherwise follow how often the loader was iterated in this process
    and a resumed run would replay epoch 0's order. The checkpoint gets the validation
    history (the best epoch may predate the interruption), the RNG states (dropout draws)
    and the position in the epoch; ``load_state_dict`` runs when ``fit`` restores a
    checkpoint, before the training iterator exists.
    """

    def __init__(self, module: Any, train_loader: Any) -> None:
        self.module = module
        self.sampler = getattr(train_loader, "batch_sampler", None)
        self.trainer: Any = None
        self.resumed_from: dict[str, int] | None = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.trainer = trainer

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(int(trainer.current_epoch))

    def state_dict(self) -> dict[str, Any]:
        trainer = self.trainer
        # processed, not completed: a save from on_train_batch_end comes before the batch counts
        # as completed, though its optimiser step is in the checkpoint.
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer else 0
        return {"val_history": list(getattr(self.module, "val_history", [])), "rng": _rng_state(),
                "epoch": int(trainer.current_epoch) if trainer else 0,
                "step": int(trainer.global_step) if trainer else 0, "batches_done": int(done)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.module.val_history = list(state_dict.get("val_history", []))
        epoch, done = int(state_dict.get("epoch", 0)), int(state_dict.get("batches_done", 0))
        if self.sampler is not None and hasattr(self.sampler, "resume"):
            self.sampler.resume(epoch, done)
        if state_dict.get("rng"):
            _set_rng_state(state_dict["rng"])
        self.resumed_from = {"epoch": epoch, "step": int(state_dict.get("step", 0))}


class BestWeights(Callback):
    """Keeps a CPU copy of the weights of the best validation epoch (by ``monitor``, max).

    Cheaper than writing a checkpoint file at every improvement; the copy travels inside
    every resume checkpoint, so a resumed stage still ends on its best epoch."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.best_score: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        if score != score or score == float("-inf"):
            return
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_state": self.best_state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict.get("best_score")
        self.best_state = state_dict.get("best_state")


def fit(module: Any, train_loader: Any, val_loader: Any, *, stage_cfg: dict[str, Any],
        trainer_cfg: dict[str, Any], logger: Any, ckpt_dir: Path, main_metric: str,
        resume: bool = True, checkpoint_minutes: float = 0.0) -> StageOutcome:
    """Train with Lightning and end with the weights of the best validation epoch (by the
    main metric, kept in memory and written once to ``best.safetensors``).

    For resuming, ``last.ckpt`` (weights, optimizer, sampler position, RNG, best weights) is
    written at every validation when ``checkpoint_minutes`` is 0, at most every
    ``checkpoint_minutes`` minutes of training when it is positive, and never when it is
    negative; a run resumes from it. Full checkpoints of a 100M-parameter model with AdamW
    state are over a gigabyte, so writing one per epoch can cost more than a short epoch."""
    import datetime

    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
    from safetensors.torch import save_file

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    monitor = f"val/{main_metric}"
    best_weights = BestWeights(monitor)
    training_state = TrainingState(module, train_loader)
    callbacks: list[Any] = [best_weights, training_state]
    if checkpoint_minutes >= 0:
        every = {} if checkpoint_minutes == 0 else {
            "train_time_interval": datetime.timedelta(minutes=float(checkpoint_minutes))}
        callbacks.append(ModelCheckpoint(dirpath=str(ckpt_dir), filename="last", monitor=None, save_top_k=1,
                                         save_weights_only=False, enable_version_counter=False,
                                         save_on_train_epoch_end=False, **every))
    show_progress = bool(trainer_cfg["enable_progress_bar"])
    if show_progress:
        # Refreshing the bar (and gathering its metrics) every step costs about a millisecond
        # a step on a CPU; every few steps costs a tenth of that.
        from pytorch_lightning.callbacks import TQDMProgressBar

        callbacks.append(TQDMProgressBar(refresh_rate=max(1, int(trainer_cfg["progress_bar_refresh_rate"]))))
    if stage_cfg["early_stopping"]:
        callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=int(stage_cfg["patience"])))
    trainer = pl.Trainer(
        max_epochs=int(stage_cfg["epochs"]), max_steps=int(stage_cfg["max_steps"]),
        accelerator=trainer_cfg["accelerator"], devices=trainer_cfg["devices"],
        num_nodes=int(trainer_cfg["num_nodes"]), strategy=trainer_cfg["strategy"],
        precision=trainer_cfg["precision"], logger=logger if logger is not None else False,
        callbacks=callbacks, gradient_clip_val=stage_cfg["grad_clip"] or None,
        accumulate_grad_batches=int(stage_cfg["grad_accum"]),
        log_every_n_steps=int(trainer_cfg["log_every_n_steps"]),
        val_check_interval=stage_cfg["val_check_interval"],
        deterministic=bool(trainer_cfg["deterministic"]),
        enable_progress_bar=show_progress,
        enable_model_summary=False, use_distributed_sampler=False, default_root_dir=str(ckpt_dir),
        num_sanity_val_steps=0, enable_checkpointing=checkpoint_minutes >= 0,
    )
    module.train()  # from_pretrained returns modules in eval mode (dropout off)
    last = ckpt_dir / "last.ckpt"
    ckpt_path = str(last) if resume and last.exists() else None
    if ckpt_path:
        log.info("Resuming from %s", ckpt_path)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The batch sampler continues a resumed epoch at the right batch (TrainingState).
        warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader, ckpt_path=ckpt_path,
                    weights_only=True if ckpt_path else None)
    wall = time.perf_counter() - start
    best_val: dict[str, float] = {}
    best_path = None
    if best_weights.best_state is not None:
        module.load_state_dict(best_weights.best_state)
        best_val = {main_metric: float(best_weights.best_score)}
        if trainer.is_global_zero:
            best_path = str(ckpt_dir / "best.safetensors")
            save_file({k: v.contiguous() for k, v in untied_state(best_weights.best_state).items()}, best_path)
    history = [h for h in getattr(module, "val_history", []) if h.get(main_metric) == h.get(main_metric)]
    if history:
        best_val = max(history, key=lambda h: h[main_metric])
    return StageOutcome(wall_time_s=wall, epochs=int(trainer.current_epoch), steps=int(trainer.global_step),
                        best_val=best_val, best_checkpoint=best_path, resumed_from=training_state.resumed_from)


def untied_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors stores each storage once: clone tensors that share one."""
    seen: set[int] = set()
    out = {}
    for k, v in state.items():
        ptr = v.data_ptr()
        out[k] = v.clone() if ptr in seen and v.numel() else v
        seen.add(ptr)
    return out
