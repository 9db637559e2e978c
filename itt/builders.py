"""Config to objects: the data, loaders, LightningModule, logger and device of one stage.

Everything here turns a resolved cell config (a plain dict, see itt/schema.py) into the
objects a stage runs with; the cell (itt/cell.py) orchestrates them, the benchmarks and
itt.select build the same objects through the same functions.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from itt.data.cards import TaskCard
from itt.errors import ConfigError
from itt.records import CellKey
from itt.utils import redact

log = logging.getLogger(__name__)


def global_rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)


def prepare_data(card: TaskCard, tokenizer: Any, cfg: dict[str, Any], stage: str, need_test: bool):
    from itt.data.loading import load_task
    from itt.tasks import get_task_type

    impl = get_task_type(card.type)
    s = cfg[stage]
    data = load_task(card, impl, split_seed=int(cfg["data"]["split_seed"]), assets_dir=cfg["paths"]["assets_dir"],
                     max_train_examples=s["max_train_examples"], need_test=need_test,
                     max_eval_examples=s["max_eval_examples"], max_val_examples=s["max_val_examples"])
    cache = cfg["paths"]["cache_dir"] if cfg["data"]["cache"] else None
    t0 = time.perf_counter()

    def enc(ds: Any, name: str) -> Any:
        return impl.encode(ds, tokenizer, card, int(s["max_length"]), cache, f"{card.name}/{name}")

    tok = {"train": enc(data.train, "train"), "validation": enc(data.validation, "validation"),
           "test": {lang: enc(ds, f"test-{lang}") for lang, ds in data.test.items()}}
    prep = time.perf_counter() - t0
    truncated = {"train": tok["train"].truncated, "validation": tok["validation"].truncated,
                 "test": {k: v.truncated for k, v in tok["test"].items()}}
    return data, tok, {"sizes": data.sizes, "truncated": truncated, "tokenize_s": round(prep, 3)}


def make_loaders(tok: dict[str, Any], tokenizer: Any, card: TaskCard, cfg: dict[str, Any], stage: str):
    from itt.data.batching import make_loader
    from itt.tasks import get_task_type

    s, d = cfg[stage], cfg["data"]
    collator = get_task_type(card.type).collator(tokenizer, card)
    pin = d["pin_memory"]
    pin = torch.cuda.is_available() if pin == "auto" else bool(pin)
    common = dict(mega_batch_factor=int(d["mega_batch_factor"]), seed=int(cfg["seed"]),
                  num_workers=int(d["num_workers"]), pin_memory=pin)
    train = make_loader(tok["train"], int(s["batch_size"]), collator, train=True,
                        mode=d["batching"], **common)
    val = make_loader(tok["validation"], int(s["eval_batch_size"]), collator, train=False, **common)
    return train, val, collator


def build_module(encoder: Any, card: TaskCard, cfg: dict[str, Any], stage: str, head: Any = None):
    from itt.models.module import ITTModule, freeze
    from itt.tasks import get_task_type

    s = cfg[stage]
    frozen = freeze(encoder, bool(s["freeze_embeddings"]), int(s["freeze_layers"] or 0))
    if frozen:
        log.info("%s: froze %d encoder parameters", stage, frozen)
    if cfg["trainer"]["compile"]:
        encoder = torch.compile(encoder)
    return ITTModule(encoder, impl=get_task_type(card.type), card=card,
                     pooling=cfg["model"]["pooling"], optim=s,
                     dropout=float(cfg["head"]["dropout"]), head=head)


def make_logger(cfg: dict[str, Any], stage: str, run_dir: Path):
    lcfg = cfg["logger"]
    kind = lcfg["type"]
    if kind == "none" or global_rank() != 0:
        return None
    if kind == "csv":
        from pytorch_lightning.loggers import CSVLogger

        return CSVLogger(save_dir=str(run_dir), name="csv", version=stage)
    if kind != "wandb":
        raise ConfigError(f"logger.type must be wandb, csv or none, not '{kind}'.")
    mode = {"dryrun": "offline", "run": "online"}.get(lcfg["mode"], lcfg["mode"])
    if mode == "disabled":
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    from pytorch_lightning.loggers import WandbLogger

    c = CellKey.of_config(cfg).as_dict()
    tags = [f"model:{c['model']}", f"intermediate:{c['intermediate']}", f"target:{c['target']}",
            f"seed:{c['seed']}", f"stage:{stage}"] + list(lcfg["tags"] or [])
    return WandbLogger(project=lcfg["project"], entity=lcfg["entity"],
                       group=lcfg["group"] or cfg["experiment_name"], job_type=stage, tags=tags,
                       name=f"{c['model']}|{c['intermediate']}->{c['target']}|seed{c['seed']}|{stage}",
                       save_dir=str(run_dir), offline=(mode != "online"), config=redact(cfg))


#: Beside a cell's offline W&B runs: the runs whose stage finished (one name a line).
FINISHED_RUNS = "finished-runs.txt"
SUPERSEDED = "superseded"


def supersede_killed_runs(run_dir: Path) -> list[Path]:
    """Move the offline W&B runs of an attempt that was killed before its stage finished to
    ``wandb/superseded/``, so that ``wandb sync <cell>/wandb/offline-run-*`` uploads one run
    per stage (the rerun logs the stage again, from its resume checkpoint)."""
    folder = run_dir / "wandb"
    if not folder.is_dir():
        return []
    try:
        finished = set((folder / FINISHED_RUNS).read_text().split())
    except OSError:
        finished = set()
    moved = []
    for run in sorted(folder.glob("offline-run-*")):
        if run.name not in finished:
            (folder / SUPERSEDED).mkdir(exist_ok=True)
            target = folder / SUPERSEDED / run.name
            os.replace(run, target)
            moved.append(target)
            log.info("W&B run %s of an interrupted attempt moved to %s (not synced)", run.name, target.parent)
    return moved


def finish_logger(logger: Any, summary: dict[str, Any] | None = None) -> None:
    if logger is None:
        return
    try:
        from pytorch_lightning.loggers import WandbLogger

        if isinstance(logger, WandbLogger):
            if summary:
                logger.experiment.summary.update(summary)
            run_folder = Path(logger.experiment.dir).parent   # <save_dir>/wandb/offline-run-*/
            logger.experiment.finish()
            with open(run_folder.parent / FINISHED_RUNS, "a", encoding="utf-8") as f:
                f.write(run_folder.name + "\n")
        elif summary:
            logger.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
            logger.save()
    except Exception as exc:  # noqa: BLE001 - logging must never lose a result
        log.warning("Logger could not be closed cleanly: %s", exc)


def device_for(cfg: dict[str, Any]) -> torch.device:
    acc = cfg["trainer"]["accelerator"]
    if acc in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


@dataclass
class Stage:
    """Everything one stage trains with (see :func:`build_stage`)."""

    module: Any
    tok: dict[str, Any]
    train: Any
    val: Any
    collator: Any
    logger: Any
    data_info: dict[str, Any]
    model_path: str


def build_stage(cfg: dict[str, Any], stage: str, card: TaskCard, run_dir: Path, *, need_test: bool,
                encoder_state: Path | None = None) -> Stage:
    """The encoder (with ``encoder_state``'s stage-1 weights on top when given), the card's
    data encoded and batched, a fresh head, the seeded module and the stage's logger."""
    import pytorch_lightning as pl

    from itt.stage1_cache import load_encoder_state

    encoder, tokenizer, model_path = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
    if encoder_state is not None:
        load_encoder_state(encoder, encoder_state)
    _, tok, data_info = prepare_data(card, tokenizer, cfg, stage, need_test=need_test)
    train, val, collator = make_loaders(tok, tokenizer, card, cfg, stage)
    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    module = build_module(encoder, card, cfg, stage)
    module.val_split = tok["validation"]
    return Stage(module, tok, train, val, collator, make_logger(cfg, stage, run_dir), data_info, model_path)


def model_path(model_cfg: dict[str, Any], cache_dir: str | Path) -> tuple[str, bool]:
    """(path or hub id, is_local) of a model card's encoder. A card with ``pretrain:`` is
    pretrained on first use and cached (:mod:`itt.pretraining`); the others are resolved by
    :func:`itt.models.encoder.resolve_model_path` (hub id, local path, offline asset, tiny)."""
    if model_cfg.get("pretrain"):
        from itt.pretraining.build import build_pretrained

        return str(build_pretrained(model_cfg, cache_dir)), True
    from itt.models.encoder import resolve_model_path

    return resolve_model_path(model_cfg, cache_dir)


def load_encoder(model_cfg: dict[str, Any], cache_dir: str | Path):
    """(encoder, tokenizer, path) of any model card (:func:`model_path`, then
    :func:`itt.models.encoder.load_encoder`)."""
    from itt.models import encoder

    return encoder.load_encoder(model_cfg, cache_dir, model_path(model_cfg, cache_dir))


def check_max_lengths(model_cfg: dict[str, Any], cache_dir: str | Path, lengths: dict[str, int]) -> None:
    """:func:`itt.models.encoder.check_max_lengths` for any model card."""
    from itt.models import encoder

    encoder.check_max_lengths(model_cfg, cache_dir, lengths, model_path(model_cfg, cache_dir))
