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

log = logging.getLogger("itt")


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from itt.cell import run_cell
    from itt.config import to_dict

    run_dir = HydraConfig.get().runtime.output_dir
    data = to_dict(cfg)
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
    return metrics.get("main")


if __name__ == "__main__":
    main()
