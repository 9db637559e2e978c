"""Collect result.json / error.json / plan.json files into tables, figures and a report.

Command line::

    python -m itt.report [RUN_DIRS ...] [--out DIR] [--metric main]
                         [--test hierarchical|ttest] [--correction holm|bh|none]
                         [--alpha 0.05] [--wandb]

RUN_DIRS default to ``outputs/multirun`` and ``outputs/runs`` (those that exist). The
report directory (default ``outputs/report/<name>``: the experiment when the results hold
one, else the one RUN_DIR's name, else ``all``) receives ``report.md``, ``report.tex``,
``cells.csv`` (tidy, one row per cell × language × metric), ``summary.csv`` (the main
table, numeric), further CSVs and ``figures/*.png``; figures of an earlier report there
that this one does not draw are removed. Exit status 0 when at least one result was read
(failed and missing cells are listed, not fatal), 2 when there is nothing to report on.

Statistics (:mod:`itt.reporting.stats`): the gain's 95% CI and p-value come from a
hierarchical paired bootstrap over seeds and test examples where every paired cell wrote
examples.json, else from a paired t-test over seeds; p-values are corrected over the main
table (Holm by default), and a gain is ``helps`` / ``hurts`` when the corrected p < alpha,
``undecided`` otherwise.

Library API (pure functions on the one-row-per-cell frame, used by the notebook):
:func:`load_results`, :func:`load_failures`, :func:`paper_table`, :func:`gain_table`,
:func:`per_language_table`, :func:`xtreme_table`, :func:`domain_comparison`,
:func:`pretraining_comparison`, :func:`missing_cells`, :func:`plot_gain_heatmap`,
:func:`plot_per_language`, :func:`write_report`.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from itt.records import default_result_dirs, output_root
from itt.reporting.load import (
    ReportInputError,
    Scan,
    scan,
)
from itt.reporting.plots import plot_gain_heatmap, plot_per_language
from itt.reporting.selection import selection_section
from itt.reporting.render import latex_document, paper_latex, paper_markdown, to_latex, to_markdown
from itt.reporting.stats import BOOTSTRAP_TEST, CORRECTIONS, RESAMPLES, SEED_TEST
from itt.reporting.xling import xling_section
from itt.reporting.tables import (
    REPORT_TESTS,
    cells_long,
    compact_table,
    design_table,
    cross_lingual_targets,
    domain_comparison,
    failure_lines,
    gain_table,
    is_xtreme,
    missing_cells,
    missing_lines,
    paper_table,
    per_language_table,
    per_language_view,
    pretraining_comparison,
    xtreme_table,
)

__all__ = [
    "ReportInputError", "load_results", "load_failures", "load_plans", "paper_table",
    "gain_table", "per_language_table", "per_language_view", "cross_lingual_targets",
    "xtreme_table", "domain_comparison", "pretraining_comparison", "missing_cells",
    "plot_gain_heatmap", "plot_per_language", "write_report", "build_report", "main",
]

logger = logging.getLogger(__name__)

DEFAULT_OUT = "outputs/report"   # shown in help; the report goes to <output root>/report/<name>
PathLike = str | os.PathLike
Dirs = PathLike | Iterable[PathLike] | None

CORRECTION_NAMES = {"holm": "Holm's step-down correction", "bh": "Benjamini–Hochberg correction",
                    "none": "no correction"}
FIGURE_PATTERNS = ("gain_heatmap.png", "per_language_*.png")   # what build_report draws


# --------------------------------------------------------------------------- library API


def load_results(dirs: Dirs = None, metric: str = "main") -> pd.DataFrame:
    """One row per finished cell found (recursively) under ``dirs``.

    Columns: experiment, model, pretraining, architecture, intermediate ("none" without
    ITT), intermediate_field, intermediate_domain, target, field, setting, benchmark,
    target_domain, train_language, same_domain, seed, value (the chosen metric: ``main`` or
    a metric name looked up in metrics.average / per_language), metric (its name),
    main_metric, per_language (dict), average (dict), majority, zero_shot, status,
    finished_at, path. Malformed files are skipped with a logged warning.
    """
    return scan(dirs, metric).results


def load_failures(dirs: Dirs = None) -> pd.DataFrame:
    """One row per failed cell (error.json without a later result.json for the same cell).

    Columns: experiment, model, intermediate, target, seed, exception (its first line),
    failed_at, path.
    """
    return scan(dirs).failures


def load_plans(dirs: Dirs = None) -> pd.DataFrame:
    """The cells listed in every plan.json under ``dirs``."""
    return scan(dirs).plans


@dataclass
class Report:
    """What :func:`build_report` produced: the written files and the texts to print."""

    paths: dict[str, Path] = field(default_factory=dict)
    main_markdown: str = ""
    failures: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    n_results: int = 0


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "target"


def _check_inputs(result: Scan, roots: list[Path]) -> None:
    if len(result.results):
        return
    where = ", ".join(str(r) for r in roots)
    if result.malformed and any(p.name == "result.json" for p, _ in result.malformed):
        bad = "; ".join(f"{p}: {why}" for p, why in result.malformed if p.name == "result.json")
        raise ReportInputError(f"no readable result.json under {where}; malformed: {bad}")
    if not result.searched:
        raise ReportInputError(f"no results directory found: none of {where} exists")
    raise ReportInputError(f"no result.json found under {where} (searched recursively)")


def default_out_dir(results: pd.DataFrame, roots: Sequence[PathLike],
                    parent: PathLike | None = None) -> Path:
    """``<parent>/<experiment>`` when the results hold one experiment, else
    ``<parent>/<name of the one input directory>``, else ``<parent>/all``; ``parent``
    defaults to ``report`` under the output root (``ITT_OUTPUT_DIR`` or ./outputs)."""
    parent = output_root() / "report" if parent is None else parent
    experiments = sorted(set(results["experiment"])) if len(results) else []
    if len(experiments) == 1:
        name = experiments[0]
    elif len(roots) == 1:
        name = Path(roots[0]).resolve().name
    else:
        name = "all"
    return Path(parent) / _safe_name(name)


def _clear_stale_figures(fig_dir: Path, keep: Iterable[Path]) -> list[Path]:
    """Remove figures this report draws (by name pattern) that the current run did not."""
    keep = {Path(p).resolve() for p in keep}
    removed = []
    for pattern in FIGURE_PATTERNS:
        for path in fig_dir.glob(pattern):
            if path.resolve() not in keep:
                path.unlink()
                removed.append(path)
    return removed


def _statistics_text(df: pd.DataFrame, summary: pd.DataFrame, test: str, correction: str,
                     alpha: float) -> str:
    tested = summary[summary["intermediate"].map(lambda i: isinstance(i, str))]
    n_tests = int(tested["p_value"].notna().sum())
    paired = tested["n_pairs"] > 0
    by_examples = int(((tested["test"] == BOOTSTRAP_TEST) & paired).sum())
    by_seeds = int(((tested["test"] == SEED_TEST) & paired).sum())
    unpaired = int((~paired).sum())
    seeds = ", ".join(str(int(s)) for s in sorted(df["seed"].unique()))
    method = []
    if by_examples:
        method.append(f"{by_examples} by a hierarchical paired bootstrap ({RESAMPLES:,} resamples: "
                      "seeds drawn with replacement, then each seed's test examples, the same "
                      "rows with and without ITT; the main metric recomputed on each resample)")
    if by_seeds:
        method.append(f"{by_seeds} by a paired t-test over seeds"
                      + (" (their cells have no examples.json)" if test == "hierarchical" else ""))
    if unpaired:
        method.append(f"{unpaired} not at all (no seed has both the cell with and the cell without ITT)")
    one_seed = int((tested["n_pairs"] == 1).sum())
    if one_seed:
        method.append(f"{one_seed} with one paired seed only: no test, and a CI over test examples alone")
    counts = {v: int((tested["verdict"] == v).sum()) for v in ("helps", "hurts", "undecided")}
    return (f"Gain = with − without ITT in the target's main metric, paired by seed: mean over "
            f"seeds [95% CI]. Gains tested: {'; '.join(method) or 'none'}. Two-sided p, "
            f"corrected over the {n_tests} comparison(s) that have one ({CORRECTION_NAMES[correction]}); "
            f"α = {alpha:g}: helps ▲ / hurts ▼ when the corrected p < α, else undecided "
            f"(the test could not tell; not the same as no effect). Seeds: {seeds}. "
            f"Verdicts: {counts['helps']} helps, {counts['hurts']} hurts, "
            f"{counts['undecided']} undecided. Test examples per language: see Design below.")


def build_report(dirs: Dirs = None, out_dir: PathLike | None = None, metric: str = "main",
                 test: str = "hierarchical", alpha: float = 0.05, wandb: bool = False,
                 correction: str = "holm") -> Report:
    """Read every result under ``dirs`` and write the report files into ``out_dir``
    (default: :func:`default_out_dir`).

    Raises :class:`ReportInputError` when no result.json can be read at all.
    """
    if test not in REPORT_TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {', '.join(REPORT_TESTS)}")
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; choose one of {', '.join(CORRECTIONS)}")
    roots = (default_result_dirs() if dirs is None else
             [Path(dirs)] if isinstance(dirs, (str, os.PathLike)) else [Path(d) for d in dirs])
    found = scan(roots, metric)
    _check_inputs(found, roots)
    df, failures = found.results, found.failures
    missing = missing_cells(df, failures, found.plans)

    out = Path(out_dir) if out_dir is not None else default_out_dir(df, roots)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    selection = selection_section(df, roots, fig_dir)   # selection.json against the grid
    missing = selection.drop_not_run(missing)           # left out by the sweeper's selection
    report = Report(n_results=len(df), failures=failure_lines(failures),
                    missing=missing_lines(missing),
                    skipped=[f"SKIPPED {p}: {why}" for p, why in found.malformed])
    paths = report.paths

    # ---- tables
    paper = paper_table(df, test, alpha, correction=correction)
    summary = gain_table(df, test, alpha, include_baseline_only=True, correction=correction)
    per_lang = per_language_table(df, None, test, alpha, correction=correction)
    design = design_table(df)
    xl_targets = cross_lingual_targets(df)
    has_xtreme = bool(is_xtreme(df).any())
    xtreme = xtreme_table(df) if has_xtreme else pd.DataFrame()
    domain_all = domain_comparison(df, test, alpha, gains=summary)
    domain_xtreme = (domain_comparison(df, test, alpha, xtreme_only=True, gains=summary)
                     if has_xtreme else None)
    pretraining = pretraining_comparison(df, test, alpha, gains=summary)
    xling = xling_section(df, alpha, correction, use_examples=test == "hierarchical")
    per_lang_views = {t: per_language_view(df, t, test, alpha, tidy=per_lang, main=summary)
                      for t in xl_targets}

    # ---- figures
    paths["heatmap"] = fig_dir / "gain_heatmap.png"
    plot_gain_heatmap(df, paths["heatmap"], test, alpha, gains=summary)
    per_lang_png: dict[str, Path] = {}
    for target in xl_targets:
        path = fig_dir / f"per_language_{_safe_name(target)}.png"
        plot_per_language(df, target, path)
        per_lang_png[target] = path
        paths[f"per_language_png:{target}"] = path
    for stale in _clear_stale_figures(fig_dir, [paths["heatmap"], *per_lang_png.values()]):
        logger.info("removed %s (not part of this report)", stale)

    # ---- CSV
    def csv(name: str, frame: pd.DataFrame, index: bool = False) -> None:
        path = out / f"{name}.csv"
        frame.to_csv(path, index=index, float_format="%.12g")
        paths[f"{name}_csv"] = path

    csv("cells", cells_long(df))
    csv("summary", summary)
    csv("per_language", per_lang)
    csv("design", design)
    if has_xtreme:
        csv("xtreme", xtreme, index=True)
    domain_frames = [domain_all.assign(scope="all")]
    if domain_xtreme is not None:
        domain_frames.append(domain_xtreme.assign(scope="xtreme"))
    csv("domain_comparison", pd.concat(domain_frames, ignore_index=True))
    csv("pretraining", pretraining)
    if not xling.empty:
        for name, frame in xling.csv_frames().items():
            csv(name, frame)
    csv("failures", failures)
    csv("missing", missing)
    if not selection.per_group.empty:
        csv("selection", selection.per_group.drop(columns="top"))

    # ---- markdown
    searched = ", ".join(str(p) for p in found.searched)
    what = "each target's main metric" if metric == "main" else f"`{metric}`"
    legend = (f"no ITT / ITT: mean ± std over seeds of {what}; (n=k): fewer seeds than "
              "the fullest cell. " + _statistics_text(df, summary, test, correction, alpha))
    compact = compact_table(summary)
    report.main_markdown = (to_markdown(compact, index=False) + "\n\n" + legend + "\n\n"
                            + to_markdown(design, index=False))
    md = [
        "# Intermediate-task training report", "",
        f"{len(df)} finished cells from {searched}. Failed: {len(report.failures)}. "
        f"Missing: {len(report.missing)}. Skipped files: {len(report.skipped)}.", "",
        "## Gains", "", to_markdown(compact, index=False), "", legend, "",
        "## Main table", "", paper_markdown(paper), "",
        "## Design", "", to_markdown(design, index=False), "",
        "## Gain heatmap", "", "![mean gain](figures/gain_heatmap.png)", "",
    ]
    if xl_targets:
        md += ["## Per-language results", ""]
        for target in xl_targets:
            md += [f"### {target}", "", to_markdown(per_lang_views[target]),
                   "", f"![{target} per language](figures/{per_lang_png[target].name})", ""]
    if has_xtreme:
        md += ["## XTREME-R", "",
               "Main metric per task (mean over seeds); category averages; overall = mean of "
               "the category averages present.", "", to_markdown(xtreme), "",
               "### Same vs different domain (XTREME-R cells)", "",
               to_markdown(domain_xtreme, index=False), ""]
    md += xling.markdown(to_markdown)
    md += selection.markdown
    md += ["## Same vs different domain (all targets)", "",
           "Mean gain over the no-ITT baseline by whether intermediate.domain == target.domain.",
           "", to_markdown(domain_all, index=False), "",
           "## Gain by pretraining", "", to_markdown(pretraining, index=False), "",
           "## Failed cells", ""]
    md += [f"- {line}" for line in report.failures] or ["none"]
    md += ["", "## Missing cells", ""]
    md += [f"- {line}" for line in report.missing] or ["none"]
    if report.skipped:
        md += ["", "## Skipped files", ""] + [f"- {line}" for line in report.skipped]
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text("\n".join(md) + "\n", encoding="utf-8")

    # ---- LaTeX
    sections = [("Main table", paper_latex(paper)), ("Design", to_latex(design, index=False))]
    for target in xl_targets:
        sections.append((f"Per language: {target}",
                         to_latex(per_lang_views[target])))
    if has_xtreme:
        sections += [("XTREME-R", to_latex(xtreme)),
                     ("Same vs different domain (XTREME-R)", to_latex(domain_xtreme, index=False))]
    sections += xling.latex(to_latex)
    if not selection.summary.empty:
        sections.append(("Selection against the grid", to_latex(selection.summary, index=False)))
    sections += [("Same vs different domain (all targets)", to_latex(domain_all, index=False)),
                 ("Gain by pretraining", to_latex(pretraining, index=False))]
    if len(failures):
        sections.append(("Failed cells", to_latex(
            failures[["model", "intermediate", "target", "seed", "exception"]], index=False)))
    if len(missing):
        sections.append(("Missing cells", to_latex(missing.drop(columns="experiment"), index=False)))
    paths["latex"] = out / "report.tex"
    paths["latex"].write_text(latex_document(sections), encoding="utf-8")

    if wandb:
        from itt.reporting.wandb_log import log_report

        images = {"gain_heatmap": paths["heatmap"]}
        images.update({f"per_language/{t}": p for t, p in per_lang_png.items()})
        log_report({"paper_table": paper, "summary": summary, "per_language": per_lang,
                    "xtreme": xtreme, "domain_comparison": domain_all,
                    "pretraining": pretraining, "failures": failures, "missing": missing},
                   images)
    return report


def write_report(dirs: Dirs = None, out_dir: PathLike | None = None, metric: str = "main",
                 test: str = "hierarchical", alpha: float = 0.05, wandb: bool = False,
                 correction: str = "holm") -> dict[str, Path]:
    """Write the report (markdown, LaTeX, CSV, PNG) and return ``{name: path}`` of the files."""
    return build_report(dirs, out_dir, metric, test, alpha, wandb, correction).paths


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m itt.report",
        description="Tables, figures and lists of failed/missing cells from result.json files.")
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                        help="directories searched recursively (default: outputs/multirun and "
                             "outputs/runs, under ITT_OUTPUT_DIR when it is set)")
    parser.add_argument("--out", default=None,
                        help=f"report directory (default: {DEFAULT_OUT}/<experiment, or the one "
                             "RUN_DIR's name, or all>)")
    parser.add_argument("--metric", default="main",
                        help="'main' (each target's main metric) or a metric name, e.g. macro_f1")
    parser.add_argument("--test", default="hierarchical", choices=REPORT_TESTS,
                        help="hierarchical: paired bootstrap over seeds and test examples where "
                             "examples.json exists, else a paired t-test over seeds (default); "
                             "ttest: the t-test over seeds everywhere")
    parser.add_argument("--correction", default="holm", choices=CORRECTIONS,
                        help="multiple-comparison correction over the main table (default: holm)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level")
    parser.add_argument("--wandb", action="store_true",
                        help="also log tables and figures to W&B (only when WANDB_MODE is online)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    if args.run_dirs:
        dirs: list[Path] = [Path(d) for d in args.run_dirs]
    else:
        dirs = [d for d in default_result_dirs() if d.exists()] or default_result_dirs()
    try:
        report = build_report(dirs, args.out, args.metric, args.test, args.alpha, args.wandb,
                              args.correction)
    except ReportInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.main_markdown)
    for line in report.failures + report.missing + report.skipped:
        print(line)
    print(f"\n{report.n_results} cells, {len(report.failures)} failed, "
          f"{len(report.missing)} missing; wrote:")
    for path in report.paths.values():
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
