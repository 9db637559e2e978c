"""One implementation per task *type*; a task card selects it by its ``type``.

Adding a dataset is adding a card in conf/task/. Adding a task type is adding a module here
that subclasses :class:`itt.tasks.base.TaskType` and registering it in ``_REGISTRY``.
"""
from __future__ import annotations

from importlib import import_module

from itt.errors import ConfigError
from itt.tasks.base import TaskType

_REGISTRY = {
    "single_text_classification": ("itt.tasks.sequence", "SequenceClassification"),
    "text_pair_classification": ("itt.tasks.sequence", "SequenceClassification"),
    "text_pair_regression": ("itt.tasks.sequence", "SequenceRegression"),
    "multiple_choice": ("itt.tasks.multiple_choice", "MultipleChoice"),
    "token_tagging": ("itt.tasks.tagging", "TokenTagging"),
    "span_qa": ("itt.tasks.span_qa", "SpanQA"),
    "retrieval": ("itt.tasks.retrieval", "Retrieval"),
}


def register(type_name: str, module: str, cls: str) -> None:
    _REGISTRY[type_name] = (module, cls)


def known_types() -> list[str]:
    return sorted(_REGISTRY)


def get_task_type(type_name: str) -> TaskType:
    if type_name not in _REGISTRY:
        raise ConfigError(f"Unknown task type '{type_name}'. Known types: {', '.join(known_types())}.")
    module, cls = _REGISTRY[type_name]
    return getattr(import_module(module), cls)()
