"""Number formatting shared by the display tables (markdown, LaTeX, notebook)."""
from __future__ import annotations

import math

from itt.reporting.stats import HELPS, HURTS

MISSING = "–"
MARKS: dict[str, str] = {HELPS: "▲", HURTS: "▼"}


def _isnan(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_value(x: float | None, digits: int = 3, signed: bool = False) -> str:
    if _isnan(x):
        return MISSING
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    # "-0.000" and "+0.000" both read as a sign that is not there.
    if float(text) == 0:
        text = f"{0:.{digits}f}"
    return text


def fmt_mean_std(mean: float, std: float, n: int, digits: int = 3, n_expected: int | None = None,
                 signed: bool = False) -> str:
    """``0.720 ± 0.020``; a single seed shows no std; fewer seeds than expected adds ``(n=k)``."""
    if _isnan(mean) or n == 0:
        return MISSING
    text = fmt_value(mean, digits, signed)
    if not _isnan(std):
        text += f" ± {std:.{digits}f}"
    if n_expected is not None and n < n_expected:
        text += f" (n={n})"
    return text


def fmt_p(p: float) -> str:
    if _isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def mark(sig: str) -> str:
    return MARKS.get(sig, "")
