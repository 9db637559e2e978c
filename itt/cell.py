"""One cell of the study: stage 1 (cached), stage 2, evaluation, result.json."""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from itt.data.cards import TaskCard, card_from_config
from itt.errors import ConfigError, ITTError
from itt.utils import atomic_write_json, git_info, package_versions, redact, stable_hash, utc_now

log = logging.getLogger(__name__)

# Keys that do not change what a cell computes (where files go, how progress is shown).
_NON_SEMANTIC = ("paths", "run", "logger", "hydra")
RESULT = "result.json"
ERROR = "error.json"
EXAMPLES = "examples.json"   # per-example predictions and gold labels of the test sets


def config_hash(cfg: dict[str, Any]) -> str:
    semantic = {k: v for k, v in cfg.items() if k not in _NON_SEMANTIC}
    semantic["trainer"] = {k: v for k, v in cfg.get("trainer", {}).items() if k != "enable_progress_bar"}
    return stable_hash(semantic, 20)


def cell_id(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"model": cfg["model"]["name"], "intermediate": cfg["intermediate"]["name"],
            "target": cfg["target"]["name"], "seed": cfg["seed"]}


def global_rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


def _check_stage(cfg: dict[str, Any], stage: str) -> None:
    s = cfg[stage]
    for key in ("epochs", "batch_size", "max_length"):
        if not isinstance(s.get(key), int) or s[key] <= 0:
            raise ConfigError(f"{stage}.{key} must be a positive integer, got {s.get(key)!r}.")
    if not float(s["lr"]) > 0:
        raise ConfigError(f"{stage}.lr must be positive, got {s['lr']!r}.")


def apply_card_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """Settings that task cards carry for the stages (returns a new config dict).

    * ``run.card_overrides: true`` (the xtreme_r experiment sets it): a card's
      ``train_overrides`` (per-task hyper-parameters, e.g. XTREME's lr / epochs /
      max_length per target) replace ``stage2`` keys for the target card and ``stage1``
      keys for the intermediate card; a model card's ``train_overrides`` apply to both stages.
      Change them with ``target.train_overrides.<key>=`` (``model.``, ``intermediate.``).
    * ``data.translate_train: true`` switches on the target card's ``translate_train``.
    """
    import copy

    cfg = copy.deepcopy(cfg)
    if cfg.get("run", {}).get("card_overrides"):
        for role, stage in (("model", "stage1"), ("model", "stage2"), ("target", "stage2"),
                            ("intermediate", "stage1")):
            over = (cfg.get(role) or {}).get("train_overrides") or {}
            unknown = sorted(k for k in over if k not in cfg[stage])
            if unknown:
                raise ConfigError(f"Task card '{cfg[role].get('name')}': train_overrides {unknown} are not "
                                  f"{stage} settings; known: {', '.join(sorted(cfg[stage]))}.")
            for key, value in over.items():
                if cfg[stage][key] != value:
                    log.info("%s.%s: %r -> %r (train_overrides of %s)", stage, key, cfg[stage][key], value,
                             cfg[role].get("name"))
                cfg[stage][key] = value
    if cfg.get("data", {}).get("translate_train"):
        block = cfg["target"].get("translate_train")
        if not isinstance(block, dict) or not block.get("source"):
            note = f" ({block['note']})" if isinstance(block, dict) and block.get("note") else ""
            raise ConfigError(f"data.translate_train=true, but target '{cfg['target'].get('name')}' has no "
                              f"translated training data{note} (no translate_train.source in its card).")
        block["enabled"] = True
    return cfg


def existing_result(run_dir: Path, chash: str) -> dict[str, Any] | None:
    path = run_dir / RESULT
    if not path.exists():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return old if old.get("config_hash") == chash and old.get("status") == "ok" else None


def _keep_previous(run_dir: Path) -> None:
    """A result of a different config in the same directory is kept, renamed."""
    path = run_dir / RESULT
    if path.exists():
        try:
            old_hash = json.loads(path.read_text()).get("config_hash", "unknown")
        except (OSError, json.JSONDecodeError):
            old_hash = "unreadable"
        os.replace(path, run_dir / f"result.{old_hash}.json")


def run_cell(cfg: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Run (or skip, when already done) one cell and return its result dict.

    On failure error.json is written in ``run_dir`` and the exception is re-raised.
    """
    run_dir = Path(run_dir)
    try:
        cfg = apply_card_settings(cfg)
        target = card_from_config(cfg["target"], "target")
        inter = card_from_config(cfg["intermediate"], "intermediate")
        _check_stage(cfg, "stage2")
        if inter is not None:
            _check_stage(cfg, "stage1")
    except ITTError as exc:  # a cell of a sweep with a bad card or setting shows as failed
        if not cfg.get("run", {}).get("dry_run") and global_rank() == 0:
            _write_error(run_dir, cfg, exc, None)
        raise
    chash = config_hash(cfg)
    if cfg["run"].get("dry_run"):
        line = " ".join(f"{k}={v}" for k, v in cell_id(cfg).items())
        print(f"[dry-run] {cfg['experiment_name']}: {line} -> {run_dir}")
        return {"status": "dry_run", "cell": cell_id(cfg)}
    if cfg["run"].get("skip_existing", True):
        old = existing_result(run_dir, chash)
        if old is not None:
            log.info("Cell already finished with this config: %s (skipping)", run_dir / RESULT)
            return old
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = _run(cfg, run_dir, target, inter, chash)
    except BaseException as exc:
        if global_rank() == 0 and not isinstance(exc, KeyboardInterrupt):
            _write_error(run_dir, cfg, exc, chash)
        raise
    return result


def _write_error(run_dir: Path, cfg: dict[str, Any], exc: BaseException, chash: str | None) -> None:
    atomic_write_json(run_dir / ERROR, {
        "schema": "itt.error/1", "status": "failed", "experiment": cfg["experiment_name"],
        "cell": cell_id(cfg), "exception": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc(), "config": redact(cfg), "config_hash": chash,
        "failed_at": utc_now()})


# --------------------------------------------------------------------------------------
def _prepare(card: TaskCard, tokenizer: Any, cfg: dict[str, Any], stage: str, need_test: bool):
    from itt.data.loading import load_task
    from itt.tasks import get_task_type

    impl = get_task_type(card.type)
    s = cfg[stage]
    data = load_task(card, split_seed=int(cfg["data"]["split_seed"]), assets_dir=cfg["paths"]["assets_dir"],
                     max_train_examples=s.get("max_train_examples"), need_test=need_test,
                     max_eval_examples=s.get("max_eval_examples"), max_val_examples=s.get("max_val_examples"))
    cache = cfg["paths"]["cache_dir"] if cfg["data"].get("cache", True) else None
    t0 = time.perf_counter()

    def enc(ds: Any, name: str) -> Any:
        return impl.encode(ds, tokenizer, card, int(s["max_length"]), cache, f"{card.name}/{name}")

    tok = {"train": enc(data.train, "train"), "validation": enc(data.validation, "validation"),
           "test": {lang: enc(ds, f"test-{lang}") for lang, ds in data.test.items()}}
    prep = time.perf_counter() - t0
    truncated = {"train": tok["train"].truncated, "validation": tok["validation"].truncated,
                 "test": {k: v.truncated for k, v in tok["test"].items()}}
    return data, tok, {"sizes": data.sizes, "truncated": truncated, "tokenize_s": round(prep, 3)}


def _loaders(tok: dict[str, Any], tokenizer: Any, card: TaskCard, cfg: dict[str, Any], stage: str):
    from itt.data.batching import make_loader
    from itt.tasks import get_task_type

    s, d = cfg[stage], cfg["data"]
    collator = get_task_type(card.type).collator(tokenizer, card)
    pin = d.get("pin_memory", "auto")
    pin = torch.cuda.is_available() if pin == "auto" else bool(pin)
    common = dict(mega_batch_factor=int(d.get("mega_batch_factor", 50)), seed=int(cfg["seed"]),
                  num_workers=int(d.get("num_workers", 0)), pin_memory=pin)
    train = make_loader(tok["train"], int(s["batch_size"]), collator, train=True,
                        mode=d.get("batching", "length_grouped"), **common)
    val = make_loader(tok["validation"], int(s["eval_batch_size"]), collator, train=False, **common)
    return train, val, collator


def _module(encoder: Any, card: TaskCard, cfg: dict[str, Any], stage: str, head: Any = None):
    from itt.models.module import ITTModule, freeze
    from itt.tasks import get_task_type

    s = cfg[stage]
    frozen = freeze(encoder, bool(s.get("freeze_embeddings")), int(s.get("freeze_layers") or 0))
    if frozen:
        log.info("%s: froze %d encoder parameters", stage, frozen)
    if cfg["trainer"].get("compile"):
        encoder = torch.compile(encoder)
    return ITTModule(encoder, impl=get_task_type(card.type), card=card,
                     pooling=cfg["model"].get("pooling", "first"), optim=s,
                     dropout=float(cfg["head"].get("dropout", 0.1)), head=head)


def _logger(cfg: dict[str, Any], stage: str, run_dir: Path):
    lcfg = cfg["logger"]
    kind = lcfg.get("type", "none")
    if kind == "none" or global_rank() != 0:
        return None
    if kind == "csv":
        from pytorch_lightning.loggers import CSVLogger

        return CSVLogger(save_dir=str(run_dir), name="csv", version=stage)
    if kind != "wandb":
        raise ConfigError(f"logger.type must be wandb, csv or none, not '{kind}'.")
    mode = lcfg.get("mode", "offline")
    if mode == "disabled":
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    from pytorch_lightning.loggers import WandbLogger

    c = cell_id(cfg)
    tags = [f"model:{c['model']}", f"intermediate:{c['intermediate']}", f"target:{c['target']}",
            f"seed:{c['seed']}", f"stage:{stage}"] + list(lcfg.get("tags") or [])
    return WandbLogger(project=lcfg.get("project", "itt"), entity=lcfg.get("entity"),
                       group=lcfg.get("group") or cfg["experiment_name"], job_type=stage, tags=tags,
                       name=f"{c['model']}|{c['intermediate']}->{c['target']}|seed{c['seed']}|{stage}",
                       save_dir=str(run_dir), offline=(mode != "online"), config=redact(cfg))


def _finish_logger(logger: Any, summary: dict[str, Any] | None = None) -> None:
    if logger is None:
        return
    try:
        from pytorch_lightning.loggers import WandbLogger

        if isinstance(logger, WandbLogger):
            if summary:
                logger.experiment.summary.update(summary)
            logger.experiment.finish()
        elif summary:
            logger.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
            logger.save()
    except Exception as exc:  # noqa: BLE001 - logging must never lose a result
        log.warning("Logger could not be closed cleanly: %s", exc)


def _device(cfg: dict[str, Any]) -> torch.device:
    acc = cfg["trainer"].get("accelerator", "auto")
    if acc in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


@torch.no_grad()
def predict(module: Any, split: Any, collator: Any, batch_size: int, device: torch.device,
            precision: str = "32-true") -> list[Any]:
    """Predictions for an encoded split, in the split's order (batches sorted by length)."""
    from itt.data.batching import make_loader
    from itt.models.module import gather_predictions

    module.eval().to(device)
    loader = make_loader(split, batch_size, collator, train=False, shard=False)  # all of it, here
    chunks = []
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if "bf16" in str(precision) and \
        device.type == "cuda" else torch.autocast(device.type, enabled=False)
    with autocast:
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            chunks.append((batch["index"].tolist(), module.impl.predict_batch(module(batch), batch)))
    return gather_predictions(chunks, len(split))


def _aggregate(per_language: dict[str, dict[str, float]], card: TaskCard) -> dict[str, Any]:
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
    device = _device(cfg)
    per_language = {}
    for lang, split in tests.items():
        preds = predict(module, split, collator, int(cfg["stage2"]["eval_batch_size"]), device,
                        cfg["trainer"].get("precision", "32-true"))
        m = dict(module.impl.score(preds, split, card))
        m["n"] = int(getattr(split, "n_examples", len(split)))   # QA: questions, not windows
        per_language[lang] = m
        if examples is not None:
            rows = per_example(preds, split)
            if rows is not None:
                examples[lang] = rows
        if run_dir is not None and cfg["eval"].get("export_predictions"):
            module.impl.export(preds, split, card, lang, run_dir / "predictions" / (tag or "target"))
    return _aggregate(per_language, card)


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
    return _aggregate(per_language, card)


# --------------------------------------------------------------------------------------
# Set by rank 0 while it trains a stage-1 key: the other DDP ranks, started by Lightning
# from inside that training, inherit it and join the training instead of the file lock.
STAGE1_TRAINING_ENV = "ITT_STAGE1_TRAINING"


def _reused(key: str, final: Path) -> dict[str, Any]:
    from itt import stages

    meta = stages.read_meta(final)
    return {"key": key, "reused": True, "wall_time_s": 0.0, "trained_wall_time_s": meta.get("wall_time_s"),
            "epochs": meta.get("epochs"), "val": meta.get("val")}


def _wait_published(final: Path, timeout_s: float = 24 * 3600.0) -> None:
    """A rank other than 0 waits for rank 0 to publish the stage-1 model it trained."""
    from itt import stages

    parent, start = os.getppid(), time.monotonic()
    while not stages.stage1_ready(final):
        if os.getppid() != parent:
            raise RuntimeError(f"rank 0 exited before publishing {final}")
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"stage-1 model {final} not published after {timeout_s:.0f}s")
        time.sleep(0.2)


def _stage1(cfg: dict[str, Any], inter: TaskCard, run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Return the stage-1 directory for this cell, training it unless the cache has it.

    Workers take a file lock per key, so each key is trained once however many cells and
    workers need it. Under DDP only rank 0 takes the lock and publishes: the other ranks are
    started by Lightning once rank 0 begins training (or, when rank 0 reuses the key, later,
    when it is published), and follow what rank 0 decided.
    """
    from filelock import FileLock, Timeout

    from itt import stages

    cache = Path(cfg["paths"]["cache_dir"])
    key = stages.stage1_key(cfg)
    final = stages.stage1_dir(cache, key)
    if global_rank() != 0:
        if os.environ.get(STAGE1_TRAINING_ENV) == key:
            _train_stage1(cfg, inter, run_dir, key, final)
        _wait_published(final)
        return final, _reused(key, final)
    if stages.stage1_ready(final):
        log.info("Stage 1 %s: reusing %s", key, final)
        return final, _reused(key, final)
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(final) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("Stage 1 %s: another worker is training it; waiting for it", key)
        lock.acquire()
    try:
        if stages.stage1_ready(final):
            log.info("Stage 1 %s: reusing %s (trained by another worker)", key, final)
            return final, _reused(key, final)
        os.environ[STAGE1_TRAINING_ENV] = key
        try:
            return final, _train_stage1(cfg, inter, run_dir, key, final)
        finally:
            os.environ.pop(STAGE1_TRAINING_ENV, None)
    finally:
        lock.release()


def _train_stage1(cfg: dict[str, Any], inter: TaskCard, run_dir: Path, key: str, final: Path) -> dict[str, Any]:
    """Train stage 1 (resuming from ``<key>.partial/checkpoints/last.ckpt`` when an earlier
    attempt was interrupted); rank 0 publishes the result atomically."""
    import pytorch_lightning as pl

    from itt import stages
    from itt.models.encoder import load_encoder

    log.info("Stage 1 %s: training %s on %s", key, cfg["model"]["name"], inter.name)
    t0 = time.perf_counter()
    encoder, tokenizer, _ = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
    _, tok, data_info = _prepare(inter, tokenizer, cfg, "stage1", need_test=False)
    train, val, _ = _loaders(tok, tokenizer, inter, cfg, "stage1")
    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    module = _module(encoder, inter, cfg, "stage1")
    module.val_split = tok["validation"]
    partial = final.with_name(final.name + ".partial")
    logger = _logger(cfg, "stage1", run_dir)
    try:
        outcome = stages.fit(module, train, val, stage_cfg=cfg["stage1"], trainer_cfg=cfg["trainer"],
                             logger=logger, ckpt_dir=partial / "checkpoints", main_metric=inter.main_metric,
                             checkpoint_minutes=float(cfg["run"].get("checkpoint_minutes", 0)))
    finally:
        _finish_logger(logger)
    wall = time.perf_counter() - t0
    meta = {"key": key, "model": cfg["model"]["name"], "task": inter.summary(), "labels": inter.labels,
            "seed": cfg["seed"], "stage1": cfg["stage1"], "epochs": outcome.epochs, "steps": outcome.steps,
            "val": outcome.best_val, "wall_time_s": round(wall, 3), "fit_time_s": round(outcome.wall_time_s, 3),
            "resumed_from": outcome.resumed_from, "data": data_info, "created": utc_now()}
    if global_rank() == 0:
        tmp = final.with_name(final.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        stages.save_stage1(module, tmp, meta)
        stages.publish(tmp, final)
        shutil.rmtree(partial, ignore_errors=True)
    return {"key": key, "reused": False, "wall_time_s": round(wall, 3), "epochs": outcome.epochs,
            "val": outcome.best_val, "resumed_from": outcome.resumed_from, "data": data_info}


def _checkpoints_marker(ckpt_dir: Path) -> Path:
    return ckpt_dir.with_name(ckpt_dir.name + ".config_hash")


def _fresh_checkpoints(ckpt_dir: Path, chash: str) -> None:
    """Drop stage-2 checkpoints that an interrupted run of a different config left behind:
    a cell resumes only its own training. (The config hash is kept beside the directory:
    Lightning warns about a non-empty checkpoint directory.)"""
    marker = _checkpoints_marker(ckpt_dir)
    if ckpt_dir.exists():
        try:
            ok = marker.read_text().strip() == chash
        except OSError:
            ok = False
        if not ok:
            log.info("Removing checkpoints of another config in %s", ckpt_dir)
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    ckpt_dir.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(chash + "\n")


def _run(cfg: dict[str, Any], run_dir: Path, target: TaskCard, inter: TaskCard | None,
         chash: str) -> dict[str, Any]:
    import pytorch_lightning as pl

    from itt import stages
    from itt.models.encoder import load_encoder

    t_start = time.perf_counter()
    ckpt_dir = run_dir / "checkpoints"
    if global_rank() == 0:  # before any training starts the other DDP ranks
        _fresh_checkpoints(ckpt_dir, chash)
    from itt.models.encoder import check_max_lengths

    check_max_lengths(cfg["model"], cfg["paths"]["cache_dir"],
                      {"stage2": int(cfg["stage2"]["max_length"]),
                       **({"stage1": int(cfg["stage1"]["max_length"])} if inter is not None else {})})
    stage1_path, stage1_info = (None, None)
    if inter is not None:
        stage1_path, stage1_info = _stage1(cfg, inter, run_dir)

    # Stage 2: the pretrained encoder, then the stage-1 weights on top, then a fresh head.
    t0 = time.perf_counter()
    encoder, tokenizer, model_path = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
    if stage1_path is not None:
        stages.load_encoder_state(encoder, stage1_path)
    _, tok, data_info = _prepare(target, tokenizer, cfg, "stage2", need_test=True)
    train, val, collator = _loaders(tok, tokenizer, target, cfg, "stage2")
    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    module = _module(encoder, target, cfg, "stage2")
    module.val_split = tok["validation"]
    logger = _logger(cfg, "stage2", run_dir)
    summary: dict[str, Any] = {}
    try:
        if module.impl.trainable:
            outcome = stages.fit(module, train, val, stage_cfg=cfg["stage2"], trainer_cfg=cfg["trainer"],
                                 logger=logger, ckpt_dir=ckpt_dir, main_metric=target.main_metric,
                                 checkpoint_minutes=float(cfg["run"].get("checkpoint_minutes", 0)))
        else:  # scored straight from the encoder's representations
            outcome = stages.StageOutcome(wall_time_s=0.0, epochs=0, steps=0)
        t_stage2 = time.perf_counter() - t0
        if global_rank() != 0:
            return {"status": "ok", "rank": global_rank()}
        t1 = time.perf_counter()
        examples: dict[str, Any] = {"target": {}, "zero_shot": {}}
        metrics = evaluate(module, tok["test"], collator, target, cfg, run_dir, "target",
                           examples=examples["target"])
        baselines: dict[str, Any] = {"majority": None, "zero_shot": None}
        if cfg["eval"].get("majority_baseline", True):
            baselines["majority"] = majority_baseline(tok["train"], tok["test"], target)
        if inter is not None and cfg["eval"].get("zero_shot", True) and \
                module.impl.zero_shot_compatible(inter, target):
            enc0, _, _ = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
            stages.load_encoder_state(enc0, stage1_path)
            zs = _module(enc0, target, cfg, "stage2")
            stages.load_head_state(zs.head, stage1_path)
            baselines["zero_shot"] = evaluate(zs, tok["test"], collator, target, cfg, run_dir, "zero_shot",
                                              examples=examples["zero_shot"])
        t_eval = time.perf_counter() - t1
        summary = {f"test/{target.main_metric}": metrics["main"]}
        summary.update({f"test/{lang}/{k}": v for lang, m in metrics["per_language"].items() for k, v in m.items()})
    finally:
        _finish_logger(logger, summary or None)

    result = {
        "schema": "itt.result/1",
        "status": "ok",
        "experiment": cfg["experiment_name"],
        "cell": cell_id(cfg),
        "model": {"name": cfg["model"]["name"], "pretrained": model_path,
                  "architecture": cfg["model"].get("architecture"), "pretraining": cfg["model"].get("pretraining")},
        "intermediate": None if inter is None else {k: v for k, v in inter.summary().items()
                                                    if k in ("name", "field", "domain", "type")},
        "target": target.summary(),
        "metrics": metrics,
        "baselines": baselines,
        "stage1": stage1_info,
        "stage2": {"wall_time_s": round(t_stage2, 3), "epochs": outcome.epochs, "steps": outcome.steps,
                   "best_val": outcome.best_val, "resumed_from": outcome.resumed_from,
                   "checkpoint": outcome.best_checkpoint if cfg["run"].get("keep_checkpoints") else None,
                   "data": data_info},
        "wall_time_s": {"stage1": (stage1_info or {}).get("wall_time_s", 0.0), "stage2": round(t_stage2, 3),
                        "eval": round(t_eval, 3), "total": round(time.perf_counter() - t_start, 3)},
        "config": redact(cfg),
        "config_hash": chash,
        "versions": package_versions(),
        "git": git_info(),
        "finished_at": utc_now(),
    }
    result = _nan_to_none(result)
    _keep_previous(run_dir)
    if examples["target"]:
        atomic_write_json(run_dir / EXAMPLES, {"schema": "itt.examples/1", "config_hash": chash,
                                               "main_metric": target.main_metric, **examples})
        result["examples"] = EXAMPLES
    atomic_write_json(run_dir / RESULT, result)
    if (run_dir / ERROR).exists():
        os.replace(run_dir / ERROR, run_dir / "error.resolved.json")
    if not cfg["run"].get("keep_checkpoints"):
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        _checkpoints_marker(ckpt_dir).unlink(missing_ok=True)
    log.info("%s: %s = %.4f (majority %s)", target.name, target.main_metric, metrics["main"],
             (baselines.get("majority") or {}).get("main"))
    return result
