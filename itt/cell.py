"""One cell of the study, orchestrated: stage 1 (from the stage-1 cache or trained into it),
stage 2 on the target, evaluation, and the cell's records.

The pieces live beside it: :mod:`itt.builders` (config to data, loaders, module, logger),
:mod:`itt.stage1_cache` (key, lock, publish, validation), :mod:`itt.stages` (the training
loop and its checkpoints), :mod:`itt.evaluation` (scores and per-example rows) and
:mod:`itt.records` (result.json, error.json, examples.json).
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from itt import records, stage1_cache
from itt.builders import build_module, build_stage, finish_logger, global_rank
from itt.config import apply_card_settings
from itt.data.cards import TaskCard, card_from_config
from itt.errors import ITTError
from itt.evaluation import evaluate, majority_baseline
from itt.records import CellKey, config_hash
from itt.schema import check_ranges
from itt.utils import git_info, package_versions, redact, utc_now

log = logging.getLogger(__name__)


def run_cell(cfg: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Run (or skip, when already done) one cell and return its result dict.

    On failure error.json is written in ``run_dir`` and the exception is re-raised.
    """
    run_dir = Path(run_dir)
    try:
        check_ranges(cfg)
        cfg = apply_card_settings(cfg)
        target = card_from_config(cfg["target"], "target")
        inter = card_from_config(cfg["intermediate"], "intermediate")
    except ITTError as exc:  # a cell of a sweep with a bad card or setting shows as failed
        if not cfg.get("run", {}).get("dry_run") and global_rank() == 0:
            records.write_error(run_dir, cfg, exc, None)
        raise
    if cfg["run"]["dry_run"]:
        print(f"[dry-run] {cfg['experiment_name']}: {CellKey.of_config(cfg)} -> {run_dir}")
        return {"status": "dry_run", "cell": CellKey.of_config(cfg).as_dict()}
    try:
        chash = config_hash(cfg)
        if cfg["run"]["skip_existing"]:
            old = records.finished_result(run_dir, chash)
            if old is not None:
                log.info("Cell already finished with this config: %s (skipping)", run_dir / records.RESULT)
                return old
        run_dir.mkdir(parents=True, exist_ok=True)
        result = _run(cfg, run_dir, target, inter, chash)
    except BaseException as exc:
        if global_rank() == 0 and not isinstance(exc, KeyboardInterrupt):
            records.write_error(run_dir, cfg, exc, locals().get("chash"))
        raise
    return result


def stage1(cfg: dict[str, Any], inter: TaskCard, run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The stage-1 entry of a cell config: from the cache, or trained into it (under its lock)."""
    return stage1_cache.get_or_train(
        cfg, lambda key, tmp, partial: _train_stage1(cfg, inter, run_dir, key, tmp, partial))


def _train_stage1(cfg: dict[str, Any], inter: TaskCard, run_dir: Path, key: str, tmp: Path,
                  partial: Path) -> dict[str, Any]:
    """Train stage 1 (resuming from ``partial``'s checkpoints when an earlier attempt was
    interrupted); rank 0 writes the entry into ``tmp`` for the cache to publish."""
    from itt import stages

    log.info("Stage 1 %s: training %s on %s", key, cfg["model"]["name"], inter.name)
    t0 = time.perf_counter()
    st = build_stage(cfg, "stage1", inter, run_dir, need_test=False)
    try:
        outcome = stages.fit(st.module, st.train, st.val, stage_cfg=cfg["stage1"], trainer_cfg=cfg["trainer"],
                             logger=st.logger, ckpt_dir=partial / "checkpoints", main_metric=inter.main_metric,
                             checkpoint_minutes=float(cfg["run"]["checkpoint_minutes"]))
    finally:
        finish_logger(st.logger)
    module, data_info = st.module, st.data_info
    wall = time.perf_counter() - t0
    if global_rank() == 0:
        stage1_cache.save(module, tmp, stage1_cache.entry_meta(cfg, key, inter.summary(), inter.labels, outcome,
                                                               wall, data_info))
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
    from itt import stages
    from itt.builders import supersede_killed_runs
    from itt.builders import check_max_lengths, load_encoder

    t_start = time.perf_counter()
    ckpt_dir = run_dir / "checkpoints"
    if global_rank() == 0:  # before any training starts the other DDP ranks
        _fresh_checkpoints(ckpt_dir, chash)
        supersede_killed_runs(run_dir)
    check_max_lengths(cfg["model"], cfg["paths"]["cache_dir"],
                      {"stage2": int(cfg["stage2"]["max_length"]),
                       **({"stage1": int(cfg["stage1"]["max_length"])} if inter is not None else {})})
    stage1_path, stage1_info = (None, None)
    if inter is not None:
        stage1_path, stage1_info = stage1(cfg, inter, run_dir)

    # Stage 2: the pretrained encoder, then the stage-1 weights on top, then a fresh head.
    t0 = time.perf_counter()
    st = build_stage(cfg, "stage2", target, run_dir, need_test=True, encoder_state=stage1_path)
    module, tok, collator, logger, data_info = st.module, st.tok, st.collator, st.logger, st.data_info
    summary: dict[str, Any] = {}
    try:
        if module.impl.trainable:
            outcome = stages.fit(module, st.train, st.val, stage_cfg=cfg["stage2"], trainer_cfg=cfg["trainer"],
                                 logger=logger, ckpt_dir=ckpt_dir, main_metric=target.main_metric,
                                 checkpoint_minutes=float(cfg["run"]["checkpoint_minutes"]))
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
        if cfg["eval"]["majority_baseline"]:
            baselines["majority"] = majority_baseline(tok["train"], tok["test"], target)
        if inter is not None and cfg["eval"]["zero_shot"] and \
                module.impl.zero_shot_compatible(inter, target):
            enc0, _, _ = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
            stage1_cache.load_encoder_state(enc0, stage1_path)
            zs = build_module(enc0, target, cfg, "stage2")
            stage1_cache.load_head_state(zs.head, stage1_path)
            baselines["zero_shot"] = evaluate(zs, tok["test"], collator, target, cfg, run_dir, "zero_shot",
                                              examples=examples["zero_shot"])
        t_eval = time.perf_counter() - t1
        summary = {f"test/{target.main_metric}": metrics["main"]}
        summary.update({f"test/{lang}/{k}": v for lang, m in metrics["per_language"].items() for k, v in m.items()})
    finally:
        finish_logger(logger, summary or None)

    result = {
        "status": "ok",
        "experiment": cfg["experiment_name"],
        "cell": CellKey.of_config(cfg).as_dict(),
        "model": {"name": cfg["model"]["name"], "pretrained": st.model_path,
                  "architecture": cfg["model"]["architecture"], "pretraining": cfg["model"]["pretraining"]},
        "intermediate": None if inter is None else {k: v for k, v in inter.summary().items()
                                                    if k in ("name", "field", "domain", "type")},
        "target": dict(target.summary(), split=target.split_summary()),
        "metrics": metrics,
        "baselines": baselines,
        "stage1": stage1_info,
        "stage2": {"wall_time_s": round(t_stage2, 3), "epochs": outcome.epochs, "steps": outcome.steps,
                   "best_val": outcome.best_val, "resumed_from": outcome.resumed_from,
                   "checkpoint": outcome.best_checkpoint if cfg["run"]["keep_checkpoints"] else None,
                   "data": data_info},
        "wall_time_s": {"stage1": (stage1_info or {}).get("wall_time_s", 0.0), "stage2": round(t_stage2, 3),
                        "eval": round(t_eval, 3), "total": round(time.perf_counter() - t_start, 3)},
        "config": redact(cfg),
        "config_hash": chash,
        "versions": package_versions(),
        "git": git_info(),
        "finished_at": utc_now(),
    }
    ex = dict(examples, main_metric=target.main_metric) if examples["target"] else None
    result = records.write_result(run_dir, result, ex)
    if not cfg["run"]["keep_checkpoints"]:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        _checkpoints_marker(ckpt_dir).unlink(missing_ok=True)
    log.info("%s: %s = %.4f (majority %s)", target.name, target.main_metric, metrics["main"],
             (baselines.get("majority") or {}).get("main"))
    return result
