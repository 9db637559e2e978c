"""XTREME-R / XTREME scorer: reads prediction and label folders, writes one JSON report.

Command line::

    python -m itt.metrics.xtreme_r --predictions DIR --labels DIR \\
        --version xtreme-r|xtreme [--tasks xnli,panx] [--languages de,en] [--percent] \\
        [--seqeval 0.0.12|1.2] [--output FILE]

prints the report as JSON on stdout and exits 0; bad input prints ``error: <message>`` on
stderr and exits 2. The Python API is :func:`score`. The layers under it are separate
modules: :mod:`itt.metrics.xtreme_metrics` (the metric functions on in-memory lists, what
training imports), :mod:`itt.metrics.xtreme_files` (the folder layout, the file formats,
their readers and writers) and :mod:`itt.metrics.xtreme_tasks` (tasks, languages, groups).

``--seqeval`` picks the chunking of UD-POS and PAN-X tags: ``0.0.12`` (default) reproduces
the averages of google-research/xtreme's evaluate_test.py, UD-POS included; ``1.2`` gives
seqeval 1.2.x's (see :mod:`itt.metrics.xtreme_metrics`). The report says which
(``"seqeval"``).

Report
======

::

    {"version": "xtreme-r", "scale": "fraction", "seqeval": "0.0.12",
     "tasks": {"xnli": {"status": "scored", "group": "classification",
                        "main_metric": "accuracy", "languages": [...],
                        "accuracy": {"ar": 0.71, ...}, "avg_accuracy": 0.74,
                        "avg_metric": 0.74, "n": {"ar": 5010, ...}},
               "mlqa": {"status": "scored", ..., "f1": {..}, "exact_match": {..},
                        "avg_f1": .., "avg_exact_match": .., "avg_metric": ..},
               "lareqa": {"status": "missing", "group": "retrieval", "reason": "..."}},
     "groups": {"classification": {"name": "Classification", "tasks": [..], "score": ..,
                                   "scored": [..], "missing": [..], "complete": true}},
     "overall": 0.61, "complete": false, "scored_tasks": [..], "missing_tasks": ["lareqa"],
     "warnings": ["..."]}

Values are fractions in [0, 1] (the project's convention); ``--percent`` / ``percent=True``
gives the official 0-100 scale. A task whose folder is absent from the predictions is
reported as ``missing``, left out of its group and of the overall score, and the report is
flagged ``"complete": false`` with a warning; only tasks of the chosen version count.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from itt.metrics.xtreme_files import READERS, PathLike, task_file
from itt.metrics.xtreme_metrics import (
    MAP_K, SEQEVAL_0_0_12, SEQEVAL_SCHEMES, XtremeScoringError, accuracy, bucc_f1,
    check_seqeval_scheme, map_at_k, mlqa_f1_em, seqeval_prf, squad_f1_em,
)
from itt.metrics.xtreme_tasks import (
    SCORER_ACCURACY, SCORER_BUCC, SCORER_MAP_AT_20, SCORER_MLQA, SCORER_SEQEVAL, SCORER_SQUAD,
    TASKS, VERSIONS, BenchmarkVersion, XtremeTask,
)
from itt.utils import atomic_write_text

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# Scoring folders
# --------------------------------------------------------------------------------------

def _count_mismatch(task: str, pred_path: Path, gold_path: Path, n_pred: int, n_gold: int,
                    unit: str) -> XtremeScoringError:
    return XtremeScoringError(f"{task}: {pred_path} has {n_pred} {unit} but {gold_path} has "
                              f"{n_gold}; predictions must cover every test example in order")


def _check_same_ids(task: str, pred_path: Path, gold_path: Path, pred: Mapping[str, Any],
                    gold: Mapping[str, Any], unit: str) -> None:
    if len(pred) != len(gold):
        raise _count_mismatch(task, pred_path, gold_path, len(pred), len(gold), unit)
    missing = [qid for qid in gold if qid not in pred]
    if missing:
        shown = ", ".join(repr(q) for q in missing[:5])
        raise XtremeScoringError(f"{task}: {pred_path} and {gold_path} both have {len(gold)} "
                                 f"{unit}, but {len(missing)} gold ids have no prediction "
                                 f"(e.g. {shown})")


def _scaled(values: Mapping[str, float], scale: float) -> Dict[str, float]:
    return {metric: value * scale for metric, value in values.items()}


def _score_language(spec: XtremeTask, lang: str, pred_path: Path, gold_path: Path,
                    seqeval: str = SEQEVAL_0_0_12,
                    scale: float = 1.0) -> Tuple[Dict[str, float], int]:
    """Metrics and the number of gold examples of one language file pair.

    Values are fractions times ``scale``, computed in the official script's order (the
    fraction times 100; QA: 100 times the total over the count), so that ``scale=100``
    gives the official numbers to the last bit.
    """
    gold = READERS[spec.label_format](gold_path)
    pred = READERS[spec.prediction_format](pred_path)
    name = spec.name
    if spec.scorer == SCORER_BUCC:
        if not gold:
            raise XtremeScoringError(f"{name}: {gold_path} holds no gold pairs")
        return _scaled(bucc_f1(gold, pred), scale), len(gold)
    if spec.scorer in (SCORER_SQUAD, SCORER_MLQA, SCORER_MAP_AT_20):
        unit = "questions" if spec.scorer != SCORER_MAP_AT_20 else "queries"
        if not gold:
            raise XtremeScoringError(f"{name}: {gold_path} holds no {unit}")
        _check_same_ids(name, pred_path, gold_path, pred, gold, unit)
        if spec.scorer == SCORER_SQUAD:
            return squad_f1_em(gold, pred, scale), len(gold)
        if spec.scorer == SCORER_MLQA:
            return mlqa_f1_em(gold, pred, lang, scale), len(gold)
        for qid, rel in gold.items():
            if not rel:
                raise XtremeScoringError(f"{name}: {gold_path}: query {qid!r} has no relevant "
                                         f"candidate")
            if name == "mewslix" and len(rel) != 1:
                raise XtremeScoringError(f"{name}: {gold_path}: mention {qid!r} must have "
                                         f"exactly one gold entity, has {len(rel)}")
        ids = list(gold)
        value = map_at_k([gold[q] for q in ids], [pred[q] for q in ids], MAP_K)
        return {f"map@{MAP_K}": value * scale}, len(gold)
    unit = "sentences" if spec.scorer == SCORER_SEQEVAL else "examples"
    if len(pred) != len(gold):
        raise _count_mismatch(name, pred_path, gold_path, len(pred), len(gold), unit)
    if not gold:
        raise XtremeScoringError(f"{name}: {gold_path} holds no {unit}")
    if spec.scorer == SCORER_SEQEVAL:
        for i, (gold_sent, pred_sent) in enumerate(zip(gold, pred), start=1):
            if len(gold_sent) != len(pred_sent):
                raise XtremeScoringError(
                    f"{name}: sentence {i} has {len(pred_sent)} tags in {pred_path} but "
                    f"{len(gold_sent)} in {gold_path}")
        return _scaled(seqeval_prf(gold, pred, seqeval), scale), len(gold)
    assert spec.scorer == SCORER_ACCURACY, spec.scorer
    return {"accuracy": accuracy(gold, pred) * scale}, len(gold)


def _score_task(version: BenchmarkVersion, spec: XtremeTask, pred_root: Path,
                label_root: Path, only: Optional[Collection[str]] = None,
                seqeval: str = SEQEVAL_0_0_12, scale: float = 1.0) -> Dict[str, Any]:
    languages = version.languages[spec.name]
    if only is not None:
        languages = tuple(lang for lang in languages if lang in only)
        if not languages:
            raise XtremeScoringError(f"{spec.name}: none of the requested languages "
                                     f"{', '.join(sorted(only))} is a language of the task; its "
                                     f"languages: {', '.join(version.languages[spec.name])}")
    label_task_dir = label_root / spec.name
    if not label_task_dir.is_dir():
        raise XtremeScoringError(f"{spec.name}: predictions are present but the labels are "
                                 f"not: no folder {label_task_dir}")
    per_metric: Dict[str, Dict[str, float]] = {m: {} for m in spec.metrics}
    counts: Dict[str, int] = {}
    for lang in languages:
        pred_path = task_file(pred_root, spec.name, lang)
        gold_path = task_file(label_root, spec.name, lang)
        for path, kind in ((pred_path, "prediction"), (gold_path, "label")):
            if not path.is_file():
                raise XtremeScoringError(f"{spec.name}: missing {kind} file for language "
                                         f"{lang!r}: {path}")
        values, n = _score_language(spec, lang, pred_path, gold_path, seqeval, scale)
        for metric in spec.metrics:
            per_metric[metric][lang] = values[metric]
        counts[lang] = n
    result: Dict[str, Any] = {
        "status": "scored",
        "display_name": spec.display_name,
        "group": version.group_of(spec.name).key,
        "type": spec.task_type,
        "main_metric": spec.main_metric,
        "languages": list(languages),
    }
    for metric in spec.metrics:
        result[metric] = per_metric[metric]
    for metric in spec.metrics:
        values = list(per_metric[metric].values())
        result[f"avg_{metric}"] = sum(values) / len(values)
    if spec.main_metric == "f1_em_mean":
        result["avg_metric"] = (result["avg_f1"] + result["avg_exact_match"]) / 2
    else:
        result["avg_metric"] = result[f"avg_{spec.main_metric}"]
    result["n"] = counts
    return result


def _resolve_tasks(version: BenchmarkVersion, tasks: Optional[Iterable[str]]) -> List[str]:
    if tasks is None:
        return list(version.tasks)
    if isinstance(tasks, str):
        tasks = tasks.split(",")
    requested = [t.strip() for t in tasks if t.strip()]
    if not requested:
        raise XtremeScoringError(f"no task given; tasks of {version.name}: "
                                 f"{', '.join(version.tasks)}")
    for task in requested:
        if task not in version.languages:
            owners = [v for v in VERSIONS if task in VERSIONS[v].languages]
            where = f" (it belongs to {', '.join(owners)})" if owners else ""
            raise XtremeScoringError(f"unknown task {task!r} for {version.name}{where}; tasks "
                                     f"of {version.name}: {', '.join(version.tasks)}")
    # Official order, duplicates dropped.
    return [t for t in version.tasks if t in set(requested)]


def _resolve_languages(languages: Optional[Iterable[str]]) -> Optional[frozenset]:
    """``None`` (every official language) or the set of languages to score."""
    if languages is None:
        return None
    if isinstance(languages, str):
        languages = languages.split(",")
    chosen = frozenset(lang.strip() for lang in languages if lang.strip())
    if not chosen:
        raise XtremeScoringError("--languages is empty; give a comma-separated list or leave it out")
    return chosen


def _mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def score(pred_dir: PathLike, label_dir: PathLike, version: str = "xtreme-r",
          tasks: Optional[Iterable[str]] = None, percent: bool = False,
          languages: Optional[Iterable[str]] = None,
          seqeval: str = SEQEVAL_0_0_12) -> Dict[str, Any]:
    """Score a predictions folder against a labels folder; returns the report dict.

    ``tasks`` (names, or one comma-separated string) limits scoring to those tasks of
    ``version``; the default is all of them. A requested task without a folder under
    ``pred_dir`` is reported as missing and the report is flagged incomplete; a missing
    language file, a count mismatch or a malformed file raises
    :class:`XtremeScoringError`. Values are fractions unless ``percent``. ``seqeval``
    picks the chunking of UD-POS and PAN-X tags: ``"0.0.12"`` (the official scores,
    default) or ``"1.2"`` (seqeval 1.2.x); the report records it under ``"seqeval"``.
    """
    if version not in VERSIONS:
        raise XtremeScoringError(f"unknown XTREME version {version!r}; known versions: "
                                 f"{', '.join(VERSIONS)}")
    spec_version = VERSIONS[version]
    check_seqeval_scheme(seqeval)
    pred_root, label_root = Path(pred_dir), Path(label_dir)
    for root, kind in ((pred_root, "predictions"), (label_root, "labels")):
        if not root.is_dir():
            raise XtremeScoringError(f"{kind} folder does not exist: {root}")
    requested = _resolve_tasks(spec_version, tasks)
    only = _resolve_languages(languages)

    ignored = sorted(p.name for p in pred_root.iterdir()
                     if p.is_dir() and p.name not in requested and not p.name.startswith("."))
    if ignored:
        log.info("ignoring prediction folders not scored for %s: %s", version, ", ".join(ignored))

    warnings: List[str] = []
    task_results: Dict[str, Dict[str, Any]] = {}
    for name in requested:
        spec = TASKS[name]
        if not (pred_root / name).is_dir():
            reason = f"no predictions folder {pred_root / name}"
            task_results[name] = {"status": "missing", "display_name": spec.display_name,
                                  "group": spec_version.group_of(name).key, "reason": reason}
            warnings.append(f"task {name} is missing ({reason}); it is excluded from its group "
                            f"and from the overall score")
            continue
        task_results[name] = _score_task(spec_version, spec, pred_root, label_root, only,
                                         seqeval, 100.0 if percent else 1.0)
        if only is not None and len(task_results[name]["languages"]) < len(spec_version.languages[name]):
            task_results[name]["languages_restricted"] = True
            warnings.append(f"task {name} is scored on {len(task_results[name]['languages'])} of its "
                            f"{len(spec_version.languages[name])} languages (--languages); its averages "
                            f"are not comparable with official scores")

    scored = [t for t in requested if task_results[t]["status"] == "scored"]
    missing = [t for t in requested if task_results[t]["status"] == "missing"]
    if not scored:
        raise XtremeScoringError(
            f"no task of {version} found under {pred_root}; expected sub-folders named "
            f"{', '.join(requested)}")

    groups: Dict[str, Dict[str, Any]] = {}
    for group in spec_version.groups:
        group_scored = [t for t in group.tasks if t in scored]
        groups[group.key] = {
            "name": group.display_name,
            "tasks": list(group.tasks),
            "score": _mean([task_results[t]["avg_metric"] for t in group_scored]),
            "scored": group_scored,
            "missing": [t for t in group.tasks if t not in scored],
            "complete": len(group_scored) == len(group.tasks),
        }

    complete = len(scored) == len(spec_version.tasks) and \
        not any(task_results[t].get("languages_restricted") for t in scored)
    if not complete:
        absent = [t for t in spec_version.tasks if t not in scored]
        warnings.append(f"the overall score averages {len(scored)} of "
                        f"{len(spec_version.tasks)} {version} tasks (not scored: "
                        f"{', '.join(absent)}); it is not comparable with a full "
                        f"{spec_version.display_name} score")
    for message in warnings:
        log.warning(message)

    return {
        "version": version,
        "scale": "percent" if percent else "fraction",
        "seqeval": seqeval,
        "tasks": task_results,
        "groups": groups,
        "overall": _mean([task_results[t]["avg_metric"] for t in scored]),
        "complete": complete,
        "scored_tasks": scored,
        "missing_tasks": missing,
        "warnings": warnings,
    }


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m itt.metrics.xtreme_r",
        description="Score XTREME-R / XTREME predictions in the official folder layout "
                    "(DIR/<task>/test-<lang>.<tsv|json|jsonl>) and print a JSON report.")
    parser.add_argument("--predictions", required=True, help="folder of predictions")
    parser.add_argument("--labels", required=True, help="folder of gold labels")
    parser.add_argument("--version", default="xtreme-r",
                        help=f"benchmark version: {' | '.join(VERSIONS)} (default xtreme-r)")
    parser.add_argument("--languages", default=None,
                        help="comma-separated languages to score (default: every official "
                             "language of each task; a subset marks the report incomplete)")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated tasks to score (default: all of the version)")
    parser.add_argument("--percent", action="store_true",
                        help="report 0-100 like the official scorer instead of fractions")
    parser.add_argument("--seqeval", default=SEQEVAL_0_0_12, choices=list(SEQEVAL_SCHEMES),
                        help="chunking of UD-POS / PAN-X tags: the seqeval release the "
                             "official scores used (0.0.12, default) or seqeval 1.2.x (1.2)")
    parser.add_argument("--output", default=None, help="also write the JSON report here")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="verbosity of the messages on stderr")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(levelname)s: %(message)s")
    try:
        report = score(args.predictions, args.labels, version=args.version,
                       tasks=args.tasks, percent=args.percent, languages=args.languages,
                       seqeval=args.seqeval)
        text = json.dumps(report, indent=2, ensure_ascii=False)
        if args.output:
            try:
                atomic_write_text(Path(args.output), text + "\n")
            except OSError as exc:
                raise XtremeScoringError(f"cannot write {args.output}: {exc}") from None
    except XtremeScoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); silence the interpreter's final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
