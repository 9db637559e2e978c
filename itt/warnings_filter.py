"""Third-party warnings and notices that repeat in every cell, filtered once at start-up.

:func:`install` runs when :mod:`itt.train` is imported: in the main process and in every
worker of the local launcher (which imports the task's module). Each filter below names
the message it drops and why the message tells an ITT user nothing they can act on.
Anything else still shows; ``ITT_SHOW_ALL_WARNINGS=1`` turns every filter off.
"""
from __future__ import annotations

import logging
import os
import warnings

_installed = False
TRUNCATION_LOGGERS = ("itt.data.encoding", "itt.data.tokenize")   # the encoding stack, before and after its move


class _DropMessages(logging.Filter):
    """Drops log records whose message starts with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


class _PoolerOnlyLoadReport(logging.Filter):
    """Drops transformers' LOAD REPORT when the only keys it lists are the pooler's."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.getMessage())
        if "LOAD REPORT" not in text:
            return True
        keys = [line.split("|")[0].strip() for line in text.splitlines() if line.count("|") >= 2]
        keys = [k for k in keys if k and k != "Key" and not k.startswith("-")]
        return not (keys and all(k.startswith("pooler.") for k in keys))


class _Once(logging.Filter):
    """Lets each distinct message through once per process."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.getMessage())
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


def install() -> None:
    """Install the filters (idempotent)."""
    global _installed
    if os.environ.get("ITT_SHOW_ALL_WARNINGS"):
        return
    # Lightning's SLURM notice: it fires whenever an `srun` binary exists, even for cells run
    # by the local launcher; SLURM runs go through hydra/launcher=slurm, which uses srun itself.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
    # Lightning's own pytree helper calls a torch API that torch 2.13 deprecates; nothing in
    # this project calls it, and a Lightning upgrade removes it.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # (The warnings filters above are re-added on every call: warnings.catch_warnings, as
    # pytest uses around each test, restores the filter list; the logging filters below are
    # added once per process.)
    if _installed:
        return
    _installed = True
    # Lightning's "💡 Tip" lines advertise optional cloud services (litlogger, litmodels)
    # once per Trainer, i.e. twice per cell; the loggers this project uses are configured.
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_DropMessages("💡 Tip:"))
    # transformers reports the pooler weights that multilingual-e5 checkpoints do not ship as
    # newly initialised on every load; the heads read the last hidden state, never the pooler.
    # A report that lists any other key still shows.
    for name in ("transformers.modeling_utils", "transformers.utils.loading_report"):
        logging.getLogger(name).addFilter(_PoolerOnlyLoadReport())
    # The tokenizer's "N of M sequences truncated" line is the same for a task, split and
    # max_length in every cell that reads them: shown once per process.
    for name in TRUNCATION_LOGGERS:
        logging.getLogger(name).addFilter(_Once())
