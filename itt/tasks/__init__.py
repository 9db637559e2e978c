"""One implementation per task *type*; a task card selects it by its ``type``.

The type names and the module and class of each implementation are listed in the torch-free
registry :mod:`itt.task_types`; :func:`get_task_type` imports the implementation on first
use. Adding a dataset is adding a card in conf/task/; adding a task type is adding its entry
there and a module here that subclasses :class:`itt.tasks.base.TaskType`.
"""
from __future__ import annotations

from importlib import import_module

from itt import task_types
from itt.tasks.base import TaskType


def known_types() -> list[str]:
    """Every registered type name, sorted."""
    return sorted(task_types.TASK_TYPES)


def get_task_type(type_name: str) -> TaskType:
    """A new instance of the implementation of ``type_name`` (ConfigError for an unknown type)."""
    info = task_types.get(type_name)
    return getattr(import_module(info.module), info.class_name)()
