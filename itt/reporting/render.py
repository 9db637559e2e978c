"""Render tables as GitHub markdown and booktabs LaTeX (no tabulate/jinja2 needed)."""
from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from itt.reporting.formatting import MISSING

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_UNICODE = {
    "±": r"$\pm$", "▲": r"\textsuperscript{$\blacktriangle$}",
    "▼": r"\textsuperscript{$\blacktriangledown$}", "–": "--", "→": r"$\rightarrow$",
    "←": r"$\leftarrow$", "<": r"$<$", ">": r"$>$", "·": r"$\cdot$", "−": "-",
}


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.{digits}f}"
    text = str(value)
    return MISSING if text in {"nan", "<NA>", "None"} else text


def _flat(label: Any) -> str:
    if isinstance(label, tuple):
        return ": ".join(str(p) for p in label if str(p))
    return str(label)


def _rows(df: pd.DataFrame, index: bool, digits: int) -> tuple[list[str], list[list[str]]]:
    header = ([_flat(n) if n is not None else "" for n in df.index.names] if index else [])
    header += [_flat(c) for c in df.columns]
    body = []
    for idx, row in zip(df.index, df.itertuples(index=False)):
        cells = []
        if index:
            cells += [_cell(v, digits) for v in (idx if isinstance(idx, tuple) else (idx,))]
        cells += [_cell(v, digits) for v in row]
        body.append(cells)
    return header, body


def to_markdown(df: pd.DataFrame, index: bool = True, digits: int = 3) -> str:
    """A GitHub-flavoured markdown table (floats to ``digits`` places, NaN as –)."""
    if df is None or df.empty:
        return "_(none)_"
    header, body = _rows(df, index, digits)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    out = [line(header), "|" + "|".join("---" for _ in header) + "|"]
    out += [line(r) for r in body]
    return "\n".join(out)


def paper_markdown(table: pd.DataFrame) -> str:
    """The paper table as one markdown table per (field, setting) group."""
    if table is None or table.empty:
        return "_(no results)_"
    parts = []
    groups = list(dict.fromkeys((f, s) for f, s, _, _ in table.columns))
    for field, setting in groups:
        cols = [c for c in table.columns if (c[0], c[1]) == (field, setting)]
        sub = table[cols].copy()
        sub.columns = [f"{t}: {c}" for _, _, t, c in cols]
        sub = sub[(sub != MISSING).any(axis=1)]  # encoders without cells in this group
        parts.append(f"### {field} · {setting}\n\n{to_markdown(sub)}")
    return "\n\n".join(parts)


def latex_escape(text: Any) -> str:
    """Escape LaTeX specials, then spell out the few unicode symbols the tables use."""
    out = "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))
    for symbol, latex in _LATEX_UNICODE.items():
        out = out.replace(symbol, latex)
    return re.sub(r"(?<![\w.])-(?=\d)", r"$-$", out)


def _tabular(header_rows: list[str], colspec: str, body: list[list[str]]) -> str:
    lines = [rf"\begin{{tabular}}{{{colspec}}}", r"\toprule", *header_rows, r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_latex(df: pd.DataFrame, index: bool = True, digits: int = 3) -> str:
    """A booktabs tabular of ``df`` (first column(s) left-aligned, the rest right-aligned)."""
    if df is None or df.empty:
        return r"\emph{(none)}"
    header, body = _rows(df, index, digits)
    n_index = df.index.nlevels if index else 0
    colspec = "l" * n_index + "r" * len(df.columns) if n_index else "l" + "r" * (len(header) - 1)
    head = " & ".join(latex_escape(h) for h in header) + r" \\"
    return _tabular([head], colspec, body)


def paper_latex(table: pd.DataFrame) -> str:
    """The paper table with three header rows: field/setting, target, column (booktabs)."""
    if table is None or table.empty:
        return r"\emph{(no results)}"
    cols = list(table.columns)
    first = 2  # column 1 holds the model

    def spans(level: int) -> list[tuple[tuple, int, int]]:
        out: list[tuple[tuple, int, int]] = []
        for k, col in enumerate(cols):
            key = col[: level + 1]
            if out and out[-1][0] == key:
                out[-1] = (key, out[-1][1], k + first)
            else:
                out.append((key, k + first, k + first))
        return out

    header_rows = []
    for level, text in ((1, lambda key: f"{key[0]} / {key[1]}"), (2, lambda key: key[2])):
        blocks = spans(level)
        cells = [""] + [rf"\multicolumn{{{b - a + 1}}}{{c}}{{{latex_escape(text(key))}}}"
                        for key, a, b in blocks]
        rules = " ".join(rf"\cmidrule(lr){{{a}-{b}}}" for _, a, b in blocks)
        header_rows += [" & ".join(cells) + r" \\", rules]
    header_rows.append(" & ".join([latex_escape(table.index.name or "model")]
                                  + [latex_escape(c[3]) for c in cols]) + r" \\")
    body = [[str(idx)] + [str(v) for v in row]
            for idx, row in zip(table.index, table.itertuples(index=False))]
    return _tabular(header_rows, "l" + "r" * len(cols), body)


def latex_document(sections: list[tuple[str, str]], title: str = "Intermediate-task training report") -> str:
    """A standalone LaTeX document: one ``\\section*`` + resized table per section."""
    lines = [
        r"\documentclass{article}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\usepackage{booktabs}",
        r"\usepackage{amssymb}",
        r"\usepackage{graphicx}",
        r"\begin{document}",
        rf"\section*{{{latex_escape(title)}}}",
    ]
    for heading, body in sections:
        lines += [rf"\subsection*{{{latex_escape(heading)}}}", r"\begin{center}",
                  r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%", body, r"}", r"\end{center}"]
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"
