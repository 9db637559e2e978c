"""Registry of the XTREME and XTREME-R tasks: type, languages, metrics, groups, file formats.

Plain data, no heavy imports, so anything (the scorer, task cards, reports) can read it; the
task type of each task is a name of the task-type registry (:mod:`itt.task_types`).

Sources of the facts below:

* languages per task and version, the official metric per task, the file extension per
  task and the task groups: ``evaluate.py`` of github.com/google-research/xtreme (the
  version that takes ``--xtreme_version xtreme|xtreme-r``), its ``mock_test_data/`` folder
  and ``third_party/utils_mewslix.py`` / ``third_party/utils_lareqa.py``;
* the XTREME-R task list, the 50 languages and the four task categories: Ruder et al.
  (2021), "XTREME-R: Towards More Challenging and Nuanced Multilingual Evaluation".

Two places where this registry fills a gap of the official ``evaluate.py``:

* LAReQA: the official scorer lists it with no languages (``'lareqa': []``) and scores it
  with a separate script; here it has the 11 XQuAD-R languages and a file format of the
  same shape as Mewsli-X (see :mod:`itt.metrics.xtreme_files`).
* Groups: the official XTREME-R ``GROUP2TASK`` leaves LAReQA out of ``retrieval`` (it
  scores only Tatoeba and Mewsli-X there) and adds a one-task ``multi_choice`` group for
  XCOPA, which is also under ``classification``; here the groups are the paper's four
  categories, each task in exactly one, with Tatoeba, Mewsli-X and LAReQA under
  retrieval. The group keys are the official ones (classification, tagging, qa,
  retrieval).

Structure::

    TASKS:    name -> XtremeTask       (version-independent: type, metrics, files)
    VERSIONS: name -> BenchmarkVersion (languages per task, ordered groups)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Tuple

# Task types are the names of the task-type registry, which task cards use too.
from itt.task_types import MULTIPLE_CHOICE, RETRIEVAL, SPAN_QA, TEXT_PAIR_CLASSIFICATION, TOKEN_TAGGING

# File formats, one constant per layout; xtreme_r.py implements a reader and a writer
# for each and its module docstring gives examples.
FORMAT_LABEL_LINES = "label_lines"        # .tsv: one label per line
FORMAT_TAG_LINES = "tag_lines"            # .tsv: one tag per line, blank line between sentences
FORMAT_XCOPA_JSONL = "label_jsonl"        # .jsonl: one {"label": int} object per line
FORMAT_QA_PREDICTIONS = "qa_predictions"  # .json: {question_id: answer_text}
FORMAT_SQUAD = "squad"                    # .json: SQuAD v1.1 dataset (answers give the gold)
FORMAT_RANKED_IDS = "ranked_ids"          # .json: {query_id: [candidate ids, best first]}
FORMAT_RELEVANT_IDS = "relevant_ids"      # .json: {query_id: [relevant candidate ids]}
FORMAT_INDEX_LINES = "index_lines"        # .tsv: one retrieved target index per line
FORMAT_PAIR_LINES = "pair_lines"          # .tsv: "<source id>\t<target id>" per line

# Scorers: which metric function of xtreme_r.py a task uses.
SCORER_ACCURACY = "accuracy"
SCORER_SEQEVAL = "seqeval"
SCORER_SQUAD = "squad"
SCORER_MLQA = "mlqa"
SCORER_MAP_AT_20 = "map@20"
SCORER_BUCC = "bucc"


@dataclass(frozen=True)
class XtremeTask:
    """One task as the official scorer sees it, independent of the benchmark version.

    ``metrics`` are the per-language metrics reported (official names); ``avg_metric``
    of the task is ``avg_<main_metric>``, except for QA where it is the mean of
    ``avg_f1`` and ``avg_exact_match`` (``main_metric == "f1_em_mean"``).
    """

    name: str
    display_name: str
    dataset: str
    task_type: str
    scorer: str
    metrics: Tuple[str, ...]
    main_metric: str
    extension: str
    prediction_format: str
    label_format: str
    description: str


@dataclass(frozen=True)
class TaskGroup:
    """A task category; its score is the mean of its tasks' ``avg_metric``."""

    key: str
    display_name: str
    tasks: Tuple[str, ...]


@dataclass(frozen=True)
class BenchmarkVersion:
    """One benchmark version: its tasks (with languages, in official order) and groups."""

    name: str
    display_name: str
    citation: str
    languages: Mapping[str, Tuple[str, ...]]
    groups: Tuple[TaskGroup, ...]
    notes: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def tasks(self) -> Tuple[str, ...]:
        """The version's tasks, in the official order."""
        return tuple(self.languages)

    @property
    def all_languages(self) -> Tuple[str, ...]:
        """Every language any task of the version covers, sorted."""
        return tuple(sorted({lang for langs in self.languages.values() for lang in langs}))

    def group_of(self, task: str) -> TaskGroup:
        """The group that holds ``task`` (each task is in exactly one group)."""
        for group in self.groups:
            if task in group.tasks:
                return group
        raise KeyError(f"task {task!r} is in no group of {self.name}")


def _langs(spec: str) -> Tuple[str, ...]:
    return tuple(spec.split(","))


TASKS: Dict[str, XtremeTask] = {
    "xnli": XtremeTask(
        name="xnli", display_name="XNLI", dataset="XNLI (Conneau et al., 2018)",
        task_type=TEXT_PAIR_CLASSIFICATION, scorer=SCORER_ACCURACY,
        metrics=("accuracy",), main_metric="accuracy", extension="tsv",
        prediction_format=FORMAT_LABEL_LINES, label_format=FORMAT_LABEL_LINES,
        description="natural language inference (entailment / neutral / contradiction)",
    ),
    "pawsx": XtremeTask(
        name="pawsx", display_name="PAWS-X", dataset="PAWS-X (Yang et al., 2019)",
        task_type=TEXT_PAIR_CLASSIFICATION, scorer=SCORER_ACCURACY,
        metrics=("accuracy",), main_metric="accuracy", extension="tsv",
        prediction_format=FORMAT_LABEL_LINES, label_format=FORMAT_LABEL_LINES,
        description="paraphrase identification (0 / 1)",
    ),
    "xcopa": XtremeTask(
        name="xcopa", display_name="XCOPA", dataset="XCOPA (Ponti et al., 2020)",
        task_type=MULTIPLE_CHOICE, scorer=SCORER_ACCURACY,
        metrics=("accuracy",), main_metric="accuracy", extension="jsonl",
        prediction_format=FORMAT_XCOPA_JSONL, label_format=FORMAT_XCOPA_JSONL,
        description="causal commonsense reasoning, choice between two alternatives (0 / 1)",
    ),
    "udpos": XtremeTask(
        name="udpos", display_name="UD-POS", dataset="Universal Dependencies v2.5 / v2.7",
        task_type=TOKEN_TAGGING, scorer=SCORER_SEQEVAL,
        metrics=("f1", "precision", "recall"), main_metric="f1", extension="tsv",
        prediction_format=FORMAT_TAG_LINES, label_format=FORMAT_TAG_LINES,
        description="part-of-speech tagging (UPOS tags), scored with seqeval like NER",
    ),
    "panx": XtremeTask(
        name="panx", display_name="WikiANN-NER", dataset="WikiANN / PAN-X (Pan et al., 2017)",
        task_type=TOKEN_TAGGING, scorer=SCORER_SEQEVAL,
        metrics=("f1", "precision", "recall"), main_metric="f1", extension="tsv",
        prediction_format=FORMAT_TAG_LINES, label_format=FORMAT_TAG_LINES,
        description="named entity recognition (IOB2: PER, ORG, LOC)",
    ),
    "xquad": XtremeTask(
        name="xquad", display_name="XQuAD", dataset="XQuAD (Artetxe et al., 2020)",
        task_type=SPAN_QA, scorer=SCORER_SQUAD,
        metrics=("f1", "exact_match"), main_metric="f1_em_mean", extension="json",
        prediction_format=FORMAT_QA_PREDICTIONS, label_format=FORMAT_SQUAD,
        description="extractive QA, SQuAD v1.1 normalisation for every language",
    ),
    "mlqa": XtremeTask(
        name="mlqa", display_name="MLQA", dataset="MLQA (Lewis et al., 2020)",
        task_type=SPAN_QA, scorer=SCORER_MLQA,
        metrics=("f1", "exact_match"), main_metric="f1_em_mean", extension="json",
        prediction_format=FORMAT_QA_PREDICTIONS, label_format=FORMAT_SQUAD,
        description="extractive QA, MLQA per-language normalisation",
    ),
    "tydiqa": XtremeTask(
        name="tydiqa", display_name="TyDiQA-GoldP",
        dataset="TyDi QA gold passage (Clark et al., 2020)",
        task_type=SPAN_QA, scorer=SCORER_SQUAD,
        metrics=("f1", "exact_match"), main_metric="f1_em_mean", extension="json",
        prediction_format=FORMAT_QA_PREDICTIONS, label_format=FORMAT_SQUAD,
        description="extractive QA, SQuAD v1.1 normalisation for every language",
    ),
    "bucc2018": XtremeTask(
        name="bucc2018", display_name="BUCC", dataset="BUCC 2018 (Zweigenbaum et al., 2018)",
        task_type=RETRIEVAL, scorer=SCORER_BUCC,
        metrics=("f1", "precision", "recall"), main_metric="f1", extension="tsv",
        prediction_format=FORMAT_PAIR_LINES, label_format=FORMAT_PAIR_LINES,
        description="parallel sentence mining; F1 over the set of (source, target) pairs",
    ),
    "tatoeba": XtremeTask(
        name="tatoeba", display_name="Tatoeba", dataset="Tatoeba (Artetxe & Schwenk, 2019)",
        task_type=RETRIEVAL, scorer=SCORER_ACCURACY,
        metrics=("accuracy",), main_metric="accuracy", extension="tsv",
        prediction_format=FORMAT_INDEX_LINES, label_format=FORMAT_INDEX_LINES,
        description="sentence retrieval <lang> -> en; accuracy of the top-1 target index",
    ),
    "mewslix": XtremeTask(
        name="mewslix", display_name="Mewsli-X",
        dataset="Mewsli-X (Botha et al., 2020; Ruder et al., 2021)",
        task_type=RETRIEVAL, scorer=SCORER_MAP_AT_20,
        metrics=("map@20",), main_metric="map@20", extension="json",
        prediction_format=FORMAT_RANKED_IDS, label_format=FORMAT_RELEVANT_IDS,
        description="entity linking as retrieval over a 1M-entity pool; one gold entity "
                    "per mention, so mAP@20 equals MRR@20",
    ),
    "lareqa": XtremeTask(
        name="lareqa", display_name="LAReQA", dataset="LAReQA XQuAD-R (Roy et al., 2020)",
        task_type=RETRIEVAL, scorer=SCORER_MAP_AT_20,
        metrics=("map@20",), main_metric="map@20", extension="json",
        prediction_format=FORMAT_RANKED_IDS, label_format=FORMAT_RELEVANT_IDS,
        description="language-agnostic answer-sentence retrieval from a multilingual pool; "
                    "each question has one relevant answer per language",
    ),
}


XTREME = BenchmarkVersion(
    name="xtreme",
    display_name="XTREME",
    citation="Hu et al. (2020), XTREME, ICML",
    languages={
        "pawsx": _langs("de,en,es,fr,ja,ko,zh"),
        "xnli": _langs("ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh"),
        "panx": _langs("ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,"
                       "it,pt,es,bg,ru,ja,ka,ko,th,sw,yo,my,zh,kk,tr,et,fi,hu"),
        "udpos": _langs("af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,"
                        "nl,pt,ru,ta,te,th,tl,tr,ur,vi,yo,zh"),
        "bucc2018": _langs("de,fr,ru,zh"),
        "tatoeba": _langs("ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,"
                          "pt,es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,et,fi,hu"),
        "xquad": _langs("en,es,de,el,ru,tr,ar,vi,th,zh,hi"),
        "mlqa": _langs("en,es,de,ar,hi,vi,zh"),
        "tydiqa": _langs("en,ar,bn,fi,id,ko,ru,sw,te"),
    },
    groups=(
        TaskGroup("classification", "Sentence classification", ("pawsx", "xnli")),
        TaskGroup("tagging", "Structured prediction", ("udpos", "panx")),
        TaskGroup("qa", "Question answering", ("xquad", "mlqa", "tydiqa")),
        TaskGroup("retrieval", "Sentence retrieval", ("bucc2018", "tatoeba")),
    ),
)

XTREME_R = BenchmarkVersion(
    name="xtreme-r",
    display_name="XTREME-R",
    citation="Ruder et al. (2021), XTREME-R, EMNLP",
    languages={
        "xnli": _langs("ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh"),
        "xcopa": _langs("et,ht,id,it,qu,sw,ta,th,tr,vi,zh"),
        "udpos": _langs("af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,"
                        "nl,pt,ru,ta,te,th,tl,tr,ur,vi,yo,zh,lt,pl,uk,wo,ro"),
        "panx": _langs("ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,"
                       "it,pt,es,bg,ru,ja,ka,ko,th,sw,yo,my,zh,kk,tr,et,fi,hu,qu,pl,uk,az,"
                       "lt,pa,gu,ro"),
        "xquad": _langs("en,es,de,el,ru,tr,ar,vi,th,zh,hi,ro"),
        "mlqa": _langs("en,es,de,ar,hi,vi,zh"),
        "tydiqa": _langs("en,ar,bn,fi,id,ko,ru,sw,te"),
        "tatoeba": _langs("ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,"
                          "pt,es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,et,fi,hu,az,lt,pl,uk,ro"),
        "mewslix": _langs("ar,de,en,es,fa,ja,pl,ro,ta,tr,uk"),
        "lareqa": _langs("ar,de,el,en,es,hi,ru,th,tr,vi,zh"),
    },
    groups=(
        TaskGroup("classification", "Classification", ("xnli", "xcopa")),
        TaskGroup("tagging", "Structured prediction", ("udpos", "panx")),
        TaskGroup("qa", "Question answering", ("xquad", "mlqa", "tydiqa")),
        TaskGroup("retrieval", "Lang.-agnostic retrieval", ("tatoeba", "mewslix", "lareqa")),
    ),
    notes=(
        "LAReQA languages are those of XQuAD-R; the official evaluate.py lists none and "
        "scores LAReQA with a separate script.",
    ),
)

VERSIONS: Dict[str, BenchmarkVersion] = {XTREME.name: XTREME, XTREME_R.name: XTREME_R}


def get_version(name: str) -> BenchmarkVersion:
    """The version called ``name``; ``KeyError`` naming the known versions otherwise."""
    try:
        return VERSIONS[name]
    except KeyError:
        raise KeyError(f"unknown XTREME version {name!r}; known versions: "
                       f"{', '.join(VERSIONS)}") from None


def task_languages(version: str, task: str) -> Tuple[str, ...]:
    """The official evaluation languages of ``task`` in ``version``."""
    spec = get_version(version)
    if task not in spec.languages:
        raise KeyError(f"task {task!r} is not part of {spec.name}; its tasks: "
                       f"{', '.join(spec.tasks)}")
    return spec.languages[task]
