"""Figures: gain heatmap and per-language bar charts.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never
through pyplot, so the report renders headless and does not switch the backend of a
notebook that imports it.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from itt.reporting.load import NONE
from itt.reporting.stats import HELPS, HURTS
from itt.reporting.tables import (
    SETTING_ORDER,
    gain_table,
    has_multiple_experiments,
    languages,
    model_label,
    per_language_table,
)

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with the module
    from matplotlib.figure import Figure

PathLike = str | os.PathLike
SIG_MARK = {HELPS: "*", HURTS: "*"}


def _new_figure(width: float, height: float) -> "Figure":
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: "Figure", path: PathLike | None) -> None:
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def gain_matrix(df: pd.DataFrame, test: str = "hierarchical", alpha: float = 0.05,
                gains: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean gain as encoder × (target ← intermediate), and the matching significance labels
    (the corrected verdicts of :func:`gain_table`; ``gains`` passes that table when it exists)."""
    gains = gain_table(df, test, alpha) if gains is None else gains[
        gains["intermediate"].map(lambda i: isinstance(i, str))]
    if gains.empty:
        return pd.DataFrame(), pd.DataFrame()
    multi = has_multiple_experiments(gains)
    gains = gains.assign(
        row=[model_label(e, m, multi) for e, m in zip(gains["experiment"], gains["model"])],
        column=[f"{t}\n← {i}" for t, i in zip(gains["target"], gains["intermediate"])],
    )
    order = gains.assign(_setting=gains["setting"].map(
        lambda s: SETTING_ORDER.get(s, len(SETTING_ORDER)))).sort_values(
        ["_setting", "field", "target", "intermediate"])
    columns = list(dict.fromkeys(order["column"]))
    rows = sorted(gains["row"].unique())
    value = gains.pivot_table(index="row", columns="column", values="gain", aggfunc="first",
                              dropna=False).reindex(index=rows, columns=columns)
    sig = gains.pivot_table(index="row", columns="column", values="significance",
                            aggfunc="first", dropna=False).reindex(index=rows, columns=columns)
    return value, sig


def plot_gain_heatmap(df: pd.DataFrame, path: PathLike | None = None, test: str = "hierarchical",
                      alpha: float = 0.05, gains: pd.DataFrame | None = None) -> "Figure":
    """Heatmap of the mean ITT gain (rows encoders, columns target ← intermediate).

    Diverging colormap centred at 0 (blue = ITT helps, red = hurts), the gain written in
    each cell, ``*`` where the corrected test says helps / hurts at alpha, grey where no
    gain exists.
    Saved to ``path`` (PNG) when given; the figure is returned either way.
    """
    value, sig = gain_matrix(df, test, alpha, gains)
    n_rows, n_cols = (value.shape if not value.empty else (1, 1))
    fig = _new_figure(max(4.0, 1.3 * n_cols + 2.5), max(2.5, 0.6 * n_rows + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    if value.empty:
        ax.text(0.5, 0.5, "no cells with intermediate training", ha="center", va="center")
        ax.set_axis_off()
        _save(fig, path)
        return fig
    data = value.to_numpy(dtype=float)
    finite = np.abs(data[np.isfinite(data)])
    half_range = float(finite.max()) if finite.size and finite.max() > 0 else 0.01
    from matplotlib.colors import CenteredNorm

    cmap = _cmap()
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap,
                      norm=CenteredNorm(vcenter=0.0, halfrange=half_range), aspect="auto")
    ax.set_xticks(range(n_cols), labels=list(value.columns), fontsize=8)
    ax.set_yticks(range(n_rows), labels=list(value.index), fontsize=9)
    for i in range(n_rows):
        for j in range(n_cols):
            x = data[i, j]
            if math.isnan(x):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="0.3")
                continue
            label = f"{x:+.3f}" + SIG_MARK.get(str(sig.iat[i, j]), "")
            dark = abs(x) > 0.6 * half_range
            ax.text(j, i, label, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_title("Mean gain from intermediate-task training (* corrected p < %.2g)" % alpha, fontsize=10)
    fig.colorbar(image, ax=ax, label="gain (with − without ITT)")
    _save(fig, path)
    return fig


def _cmap():
    import matplotlib

    return matplotlib.colormaps["RdBu"].with_extremes(bad="0.85")


def plot_per_language(df: pd.DataFrame, target: str, path: PathLike | None = None) -> "Figure":
    """Grouped bars of one target's per-language score, per model with and without ITT.

    Bars are means over seeds with the sample std as error bars; hatched bars are ITT.
    """
    tidy = per_language_table(df, target)
    frame = df[df["target"] == target]
    fig = _new_figure(7.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    if tidy.empty:
        ax.text(0.5, 0.5, f"no per-language scores for {target}", ha="center", va="center")
        ax.set_axis_off()
        _save(fig, path)
        return fig
    multi = has_multiple_experiments(frame)
    langs = languages(frame)
    series = sorted({(model_label(e, m, multi), i) for e, m, i in
                     zip(tidy["experiment"], tidy["model"], tidy["intermediate"])},
                    key=lambda s: (s[0], s[1] != NONE, s[1]))
    models = sorted({s[0] for s in series})
    colours = {m: f"C{k % 10}" for k, m in enumerate(models)}
    width = 0.8 / max(1, len(series))
    x = np.arange(len(langs))
    for k, (label, inter) in enumerate(series):
        rows = tidy[[model_label(e, m, multi) == label and i == inter for e, m, i in
                     zip(tidy["experiment"], tidy["model"], tidy["intermediate"])]]
        by_lang = rows.set_index("language")
        means = [by_lang["mean"].get(lang, np.nan) for lang in langs]
        stds = [by_lang["std"].get(lang, np.nan) for lang in langs]
        stds = [0.0 if s is None or math.isnan(s) else s for s in stds]
        ax.bar(x - 0.4 + width * (k + 0.5), means, width, yerr=stds, capsize=2,
               color=colours[label], alpha=0.55 if inter == NONE else 0.95,
               hatch=None if inter == NONE else "//", edgecolor="black", linewidth=0.4,
               label=f"{label} · {'no ITT' if inter == NONE else 'ITT ' + inter}")
    metric = str(tidy["metric"].iloc[0])
    ax.set_xticks(x, labels=langs)
    ax.set_xlabel("language")
    ax.set_ylabel(metric)
    ax.set_title(f"{target}: {metric} per language (mean ± std over seeds)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    return fig
