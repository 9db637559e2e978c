"""Test setup: no network, W&B offline, every output under one temporary directory.

Configs are composed with Hydra's compose API from the real conf/ tree, exactly as the
``python -m itt.train`` app composes them.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("WANDB_API_KEY", None)
# One output tree for the whole session: tiny models and tokenized data are built once.
_SESSION_OUT = Path(tempfile.mkdtemp(prefix="itt-tests-"))
os.environ.setdefault("ITT_OUTPUT_DIR", str(_SESSION_OUT))
# Real offline assets, when `python -m itt.assets fetch` has built them, are shared.
_REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("ITT_ASSETS_DIR", str(_REPO / "outputs" / "assets"))

import pytest  # noqa: E402

# Settings that keep a cell to a few seconds on a CPU.
FAST = ["experiment=smoke", "logger=none", "trainer.enable_progress_bar=false",
        "stage1.max_train_examples=640"]


@pytest.fixture(scope="session")
def output_root() -> Path:
    return Path(os.environ["ITT_OUTPUT_DIR"])


@pytest.fixture
def make_cfg():
    """Compose the app config (as a plain dict) from overrides."""
    from itt.config import compose, to_dict

    def _make(*overrides: str, fast: bool = True) -> dict:
        return to_dict(compose((FAST if fast else []) + list(overrides)))

    return _make


@pytest.fixture(autouse=True)
def _restore_logger_levels():
    """Entry points run in-process (benchmarks, itt.select, the report) set logger levels for
    their console; later tests must still see the warnings they assert on."""
    import logging

    manager = logging.root.manager
    before = {name: lg.level for name, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    root = logging.root.level
    yield
    for name, lg in list(manager.loggerDict.items()):
        if isinstance(lg, logging.Logger):
            lg.setLevel(before.get(name, logging.NOTSET))
            lg.disabled = False
    logging.root.setLevel(root)
