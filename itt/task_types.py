"""The task-type registry: every type a task card may name, and where its implementation is.

Plain data, no torch: task cards (:mod:`itt.data.cards`) check a card's ``type`` and fill
its default metrics from here, :func:`itt.tasks.get_task_type` imports the implementation
named here on first use, and the XTREME registry (:mod:`itt.metrics.xtreme_tasks`) names the
type of each benchmark task with these constants.

Adding a task type is adding one :class:`TaskTypeInfo` to :data:`TYPES` and its module under
``itt/tasks/`` (a subclass of :class:`itt.tasks.base.TaskType`); adding a dataset of an
existing type is adding a card in ``conf/task/``, with no code.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from itt.errors import ConfigError

SINGLE_TEXT_CLASSIFICATION = "single_text_classification"
TEXT_PAIR_CLASSIFICATION = "text_pair_classification"
TEXT_PAIR_REGRESSION = "text_pair_regression"
MULTIPLE_CHOICE = "multiple_choice"
TOKEN_TAGGING = "token_tagging"
SPAN_QA = "span_qa"
RETRIEVAL = "retrieval"


@dataclass(frozen=True)
class TaskTypeInfo:
    """One task type.

    ``implementation`` is ``"<module>:<class>"``, imported only when a task of the type is
    built. ``classification``: the card must list its ``labels`` (class names). A card that
    leaves out ``metrics`` gets ``default_metrics`` (the first is its ``main_metric``)."""

    name: str
    implementation: str
    classification: bool = False
    default_metrics: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return self.implementation.partition(":")[0]

    @property
    def class_name(self) -> str:
        return self.implementation.partition(":")[2]


TYPES: dict[str, TaskTypeInfo] = {t.name: t for t in (
    TaskTypeInfo(SINGLE_TEXT_CLASSIFICATION, "itt.tasks.sequence:SequenceClassification",
                 classification=True, default_metrics=("accuracy", "macro_f1")),
    TaskTypeInfo(TEXT_PAIR_CLASSIFICATION, "itt.tasks.sequence:SequenceClassification",
                 classification=True, default_metrics=("accuracy", "macro_f1")),
    TaskTypeInfo(TEXT_PAIR_REGRESSION, "itt.tasks.sequence:SequenceRegression",
                 default_metrics=("pearson", "spearman")),
    TaskTypeInfo(MULTIPLE_CHOICE, "itt.tasks.multiple_choice:MultipleChoice"),
    TaskTypeInfo(TOKEN_TAGGING, "itt.tasks.tagging:TokenTagging"),
    TaskTypeInfo(SPAN_QA, "itt.tasks.span_qa:SpanQA"),
    TaskTypeInfo(RETRIEVAL, "itt.tasks.retrieval:Retrieval"),
)}

#: Every type name, in registry order.
TASK_TYPES: tuple[str, ...] = tuple(TYPES)
#: The types whose cards list class labels.
CLASSIFICATION_TYPES: tuple[str, ...] = tuple(n for n, t in TYPES.items() if t.classification)


def get(name: str, where: str = "") -> TaskTypeInfo:
    """The registry entry of type ``name``; a ConfigError naming the known types (and the
    nearest one) otherwise. ``where`` says who names the type (e.g. ``Task card 'x'``)."""
    try:
        return TYPES[name]
    except (KeyError, TypeError):
        near = difflib.get_close_matches(str(name), TASK_TYPES, n=1)
        hint = f" Did you mean '{near[0]}'?" if near else ""
        said = f"{where} has unknown task type" if where else "Unknown task type"
        raise ConfigError(f"{said} '{name}'.{hint} Known types: {', '.join(sorted(TASK_TYPES))}.") from None
