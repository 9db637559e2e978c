"""The settings of ``python -m itt.select`` (conf/select.yaml), typed: the app's schema
(itt.schema) extended by ``candidates`` and the ``select`` block.

conf/select.yaml composes the app's conf/config.yaml, whose first default is the schema node
``itt_schema``; :func:`use_select_schema` stores the extended schema under that name for the
process that runs ``itt.select``, and :func:`use_app_schema` puts the app's back."""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import List, Optional

try:  # the app's typed schema, where the checkout has one
    from itt.schema import ITTConfig as _Base
except ImportError:  # pragma: no cover - an app config without a schema
    @dataclass
    class _Base:  # type: ignore[no-redef]
        pass


@dataclass
class SelectSettings:
    methods: List[str] = dc_field(default_factory=lambda: ["semb", "logme", "probe", "zero_shot"])
    max_examples: int = 256          # rows of each candidate's training split embedded for SEmb
    train_stage1: bool = False       # train missing stage-1 models into the cache
    batch_size: int = 64
    out: Optional[str] = None        # selection.json (null: the experiment's sweep directory)


@dataclass
class SelectAppConfig(_Base):
    candidates: Optional[List[str]] = None
    select: SelectSettings = dc_field(default_factory=SelectSettings)


def use_select_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="itt_schema", node=SelectAppConfig)


def use_app_schema() -> None:
    if _Base.__name__ == "ITTConfig":
        from hydra.core.config_store import ConfigStore

        ConfigStore.instance().store(name="itt_schema", node=_Base)
