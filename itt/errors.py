"""Errors that name the thing that is wrong and the fix.

Every user-facing failure raises an :class:`ITTError` subclass; the command-line entry
points print its message without a traceback and exit non-zero.
"""
from __future__ import annotations


class ITTError(RuntimeError):
    """Base class of errors caused by input or environment rather than a bug."""


class ConfigError(ITTError):
    """A config, model card or task card is invalid or unknown."""


class DataError(ITTError):
    """A data file is missing, malformed, empty, or holds a label outside the label set."""


class HubUnavailableError(ITTError):
    """A model or dataset needs the Hugging Face hub, which cannot be reached."""


class ModelError(ITTError):
    """An encoder cannot be loaded."""


class SweepFailed(ITTError):
    """A sweep ran to its end, but some of its cells failed (each has an error.json)."""
