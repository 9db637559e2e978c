"""Hydra entry point: one cell, or a sweep of cells with ``-m``.

    python -m itt.train model=tiny_bert intermediate=smoke_movies target=smoke_products seed=1
    python -m itt.train -m experiment=mini
"""
from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from itt import config as _config  # noqa: E402,F401 - registers resolvers
from itt.errors import ITTError  # noqa: E402
from itt.warnings_filter import install as _filter_warnings  # noqa: E402

_filter_warnings()  # repeated third-party notices, once at start-up (itt/warnings_filter.py)

log = logging.getLogger("itt")


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def spans_processes(trainer_cfg: dict) -> bool:
    """Whether Lightning runs this trainer config as several processes (DDP and kin)."""
    strategy = str(trainer_cfg.get("strategy", "auto"))
    if strategy.startswith(("ddp_spawn", "ddp_fork", "ddp_notebook")):
        return False
    devices = trainer_cfg.get("devices", 1)
    one_device = devices in (1, "1") or (isinstance(devices, (list, tuple)) and len(devices) == 1)
    return (strategy.startswith(("ddp", "fsdp", "deepspeed")) or not one_device
            or int(trainer_cfg.get("num_nodes", 1) or 1) > 1)


def _run_in_own_process(data: dict, run_dir: str) -> float | None:
    """Run a multi-process (DDP) cell of a sweep as a plain run of its own.

    Lightning starts the other DDP ranks by re-running the command line of the process and
    sets their placement in its environment: from inside a sweep that command is the whole
    sweep, and the environment would leak into the next cell. A cell of its own gives every
    rank exactly this cell's config and leaves the sweep's process as it was.
    """
    import subprocess
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    from itt.records import config_hash, finished_result
    from itt.plan import single_cell_command, single_process_env

    chash = config_hash(data)
    done = finished_result(Path(run_dir), chash) if data["run"].get("skip_existing", True) else None
    if done is None:
        hc = HydraConfig.get()
        dirs = [str(s.path).removeprefix("file://") for s in hc.runtime.config_sources
                if s.provider == "command-line"]
        cmd = single_cell_command(list(hc.overrides.task), run_dir, hydra_overrides=list(hc.overrides.hydra),
                                  config_name=hc.job.config_name, config_dirs=dirs)
        cmd.append("hydra.output_subdir=null")  # keep the sweep's .hydra/ record of this cell
        log.info("Multi-process cell: running it in a process of its own: %s", " ".join(cmd[1:]))
        rc = subprocess.call(cmd, env=single_process_env(), cwd=get_original_cwd())
        done = finished_result(Path(run_dir), chash)
        if rc != 0 or done is None:
            log.error("Cell failed (exit status %d; error.json in %s); the sweep goes on", rc, run_dir)
            return None
    return (done.get("metrics") or {}).get("main")


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from itt.cell import run_cell
    from itt.config import to_dict
    from itt.schema import check_ranges

    hc = HydraConfig.get()
    run_dir = hc.runtime.output_dir
    data = to_dict(cfg)
    try:
        check_ranges(data, dict(hc.runtime.choices))
    except ITTError as exc:
        if _is_multirun():
            raise  # the sweeper checked every cell before launching; this is not reached
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if _is_multirun() and not data["run"].get("dry_run") and spans_processes(data["trainer"]):
        return _run_in_own_process(data, run_dir)
    try:
        result = run_cell(data, run_dir)
    except ITTError as exc:
        log.error("%s", exc)
        if _is_multirun():
            return None  # error.json is written; the sweep goes on
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception:
        if _is_multirun():
            log.exception("Cell failed (error.json written in %s); the sweep goes on", run_dir)
            return None
        raise
    metrics = result.get("metrics") or {}
    if not _is_multirun() and result.get("status") == "ok":
        log.info("Result: %s", os.path.join(run_dir, "result.json"))
    return metrics.get("main")


def main() -> None:
    """``python -m itt.train`` / ``itt-train``: a mistake in a config, card or data file ends
    with one line and exit code 2; a sweep whose cells failed exits 1 after the rest ran."""
    from itt.cli_errors import run_app

    run_app(app)


if __name__ == "__main__":
    main()
