"""Task cards: the YAML description of a dataset that selects one implementation per type.

See docs/schemas.md for the schema. A card is validated once, when a cell starts, so that a
typo in a card fails before any training.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from itt import task_types
from itt.errors import ConfigError
from itt.task_types import CLASSIFICATION_TYPES, TEXT_PAIR_REGRESSION

SETTINGS = ("intermediate", "domain", "cross_lingual", "xtreme")


@dataclass
class TaskCard:
    name: str
    type: str
    source: dict[str, Any]
    columns: dict[str, Any]
    labels: list[str] | None
    languages: list[str]
    train_language: str | list[str]
    eval_languages: list[str]
    split: dict[str, Any]
    metrics: list[str]
    main_metric: str
    field: str = "unknown"
    domain: str = "unknown"
    setting: str = "domain"
    benchmark: str | None = None
    description: str = ""
    label_map: dict[Any, str] | None = None
    drop_labels: list[Any] | None = None     # raw label values whose rows are left out
    label_range: list[float] | None = None
    max_examples: int | None = None
    license: str | None = None
    citation: str | None = None
    url: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def text_columns(self) -> list[str]:
        cols = self.columns.get("text", ["text"])
        return [cols] if isinstance(cols, str) else list(cols)

    @property
    def label_column(self) -> str:
        return self.columns.get("label", "label")

    @property
    def is_classification(self) -> bool:
        return self.type in CLASSIFICATION_TYPES

    @property
    def is_regression(self) -> bool:
        return self.type == TEXT_PAIR_REGRESSION

    @property
    def num_labels(self) -> int:
        return len(self.labels) if self.labels else 1

    @property
    def train_languages(self) -> list[str]:
        tl = self.train_language
        return [tl] if isinstance(tl, str) else list(tl)

    def split_summary(self) -> dict[str, Any]:
        """The split protocol as result.json records it (:func:`itt.data.splits.summary`)."""
        from itt.data import splits

        return splits.summary(self.name, self.split)

    def summary(self) -> dict[str, Any]:
        """The part of the card that result.json records."""
        return {"name": self.name, "field": self.field, "domain": self.domain, "type": self.type,
                "setting": self.setting, "benchmark": self.benchmark,
                "main_metric": self.main_metric, "train_language": self.train_language,
                "eval_languages": list(self.eval_languages)}


_KNOWN = {f for f in TaskCard.__dataclass_fields__ if f != "extra"}


def card_from_config(cfg: DictConfig | dict, role: str) -> TaskCard | None:
    """Build and validate a card; returns None for the ``none`` card."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    # The schema (itt/schema.py) gives every card key, null where a card leaves it out; the
    # type-dependent defaults below fill those.
    data = {k: v for k, v in data.items() if v is not None}
    for block in ("columns", "split"):
        if isinstance(data.get(block), dict):
            data[block] = {k: v for k, v in data[block].items() if v is not None}
    name = data.get("name")
    if not name:
        raise ConfigError(f"The {role} task card has no 'name'.")
    if data.get("type") == "none":
        if role == "target":
            raise ConfigError("target=none is not a task: pick a target card from conf/task/.")
        return None
    missing = [k for k in ("type", "source") if k not in data]
    if missing:
        raise ConfigError(f"Task card '{name}' lacks {missing}; see docs/schemas.md.")
    info = task_types.get(data["type"], f"Task card '{name}'")
    data.setdefault("columns", {"text": ["text"], "label": "label"})
    data.setdefault("labels", None)
    data.setdefault("languages", ["en"])
    data.setdefault("train_language", data["languages"][0])
    data.setdefault("eval_languages", data["languages"])
    data.setdefault("split", {"protocol": "ratio", "train_fraction": 0.7, "validation_fraction": 0.1})
    data.setdefault("metrics", list(info.default_metrics))
    # The type's own main metric where it has one, else the card's first metric.
    main = info.default_metrics or data["metrics"] or ["accuracy"]
    data.setdefault("main_metric", main[0])
    if info.classification:
        if not data["labels"]:
            raise ConfigError(f"Task card '{name}' is a classification task but lists no 'labels'.")
        data["labels"] = [str(x) for x in data["labels"]]
    if data["main_metric"] not in data["metrics"]:
        raise ConfigError(f"Task card '{name}': main_metric '{data['main_metric']}' is not in "
                          f"its metrics {data['metrics']}.")
    from itt.data import splits

    splits.resolve(name, data["split"])  # checks the protocol, fractions and validation_from
    extra = {k: v for k, v in data.items() if k not in _KNOWN}
    known = {k: v for k, v in data.items() if k in _KNOWN}
    if known.get("label_map"):
        known["label_map"] = {str(k): str(v) for k, v in known["label_map"].items()}
    return TaskCard(**known, extra=extra)
