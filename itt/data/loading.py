"""From a task card to normalised ``datasets`` splits.

Normalised rows hold ``text`` (single text) or ``text_a``/``text_b`` (pairs) and ``label``
(class index or float). The split protocol is the paper's by default: a seeded 70/30
train/test split of each language's data, validation carved from the training part. The
same seed gives the same row indices in every language, so a parallel corpus never leaks a
translation of a training row into a test set.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from itt.data.cards import TaskCard
from itt.errors import DataError, HubUnavailableError

log = logging.getLogger(__name__)

_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet",
            ".txt": "text"}


@dataclass
class TaskData:
    card: TaskCard
    train: Any
    validation: Any
    test: dict[str, Any]
    sizes: dict[str, Any] = field(default_factory=dict)


def _fmt(card: TaskCard, files: list[str]) -> str:
    fmt = card.source.get("format")
    if fmt:
        return {"tsv": "csv", "jsonl": "json"}.get(fmt, fmt)
    ext = Path(files[0]).suffix.lower()
    if ext not in _FORMATS:
        raise DataError(f"Task '{card.name}': cannot tell the format of {files[0]}; set "
                        f"source.format (csv, tsv, json, parquet) in conf/task/{card.name}.yaml.")
    return _FORMATS[ext]


def _resolve_files(card: TaskCard, lang: str, assets_dir: str | None) -> dict[str, list[str]]:
    data_files = card.source.get("data_files")
    if not data_files:
        raise DataError(f"Task '{card.name}' has source.kind=local but no source.data_files.")
    if isinstance(data_files, (str, list)):
        data_files = {"all": data_files}
    out: dict[str, list[str]] = {}
    for split, files in data_files.items():
        files = [files] if isinstance(files, str) else list(files)
        out[split] = [f.replace("{lang}", lang) for f in files]
    missing = [f for fs in out.values() for f in fs if not os.path.exists(f)]
    if missing and card.source.get("generator") == "smoke":
        from itt.data import smoke

        smoke.generate(Path(missing[0]).parent)
        missing = [f for f in missing if not os.path.exists(f)]
    if missing:
        hint = f"Check source.data_files in conf/task/{card.name}.yaml."
        if assets_dir and any(str(Path(m).resolve()).startswith(str(Path(assets_dir).resolve()))
                              for m in missing):
            hint = ("It belongs to the offline asset suite: run `python -m itt.assets fetch` "
                    "(or `make assets`) to build it.")
        raise DataError(f"Task '{card.name}' ({lang}): data file not found: {missing[0]}. {hint}")
    return out


def _load_local(card: TaskCard, lang: str, assets_dir: str | None) -> dict[str, Any]:
    import datasets

    files = _resolve_files(card, lang, assets_dir)
    fmt = _fmt(card, next(iter(files.values())))
    kwargs = dict(card.source.get("read_options") or {})
    if fmt == "csv" and any(f.endswith(".tsv") for fs in files.values() for f in fs):
        kwargs.setdefault("sep", "\t")
    if card.source.get("format") == "tsv":
        kwargs.setdefault("sep", "\t")
    try:
        # datasets reserves the split name "all"; load it as "data" and name it back.
        renamed = {("data" if k == "all" else k): v for k, v in files.items()}
        loaded = datasets.load_dataset(fmt, data_files=renamed, **kwargs)
        loaded = {("all" if k == "data" else k): v for k, v in loaded.items()}
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise DataError(f"Task '{card.name}' ({lang}): could not read {files} as {fmt}: "
                        f"{type(exc).__name__}: {exc}. Fix the file or source.format/read_options "
                        f"in conf/task/{card.name}.yaml.") from exc
    return {split: (loaded[split], ", ".join(files[split])) for split in loaded}


def _load_hub(card: TaskCard, lang: str) -> dict[str, Any]:
    import datasets

    from itt.hub import hub_offline_flag, require_hub

    path = card.source["path"].replace("{lang}", lang)
    config = card.source.get("config")
    config = config.replace("{lang}", lang) if isinstance(config, str) else config
    kwargs: dict[str, Any] = {}
    if card.source.get("revision"):
        kwargs["revision"] = card.source["revision"]
    if card.source.get("trust_remote_code"):
        kwargs["trust_remote_code"] = True
    if card.source.get("data_files"):
        kwargs["data_files"] = card.source["data_files"]
    try:
        loaded = datasets.load_dataset(path, config, **kwargs)
    except (ConnectionError, OSError, FileNotFoundError) as exc:
        if hub_offline_flag() or "offline" in str(exc).lower() or "connect" in str(exc).lower():
            try:
                require_hub("dataset", f"{path}" + (f" ({config})" if config else ""),
                            f"target/intermediate={card.name}")
            except HubUnavailableError as hub_exc:
                raise hub_exc from exc
        raise DataError(f"Task '{card.name}': could not load hub dataset '{path}' config "
                        f"'{config}': {exc}") from exc
    wanted = card.source.get("splits")
    if wanted:
        unknown = [w for w in wanted if w not in loaded]
        if unknown:
            raise DataError(f"Task '{card.name}': hub dataset '{path}' ({config}) has no split(s) {unknown}; "
                            f"it has {list(loaded)}. Fix source.splits in conf/task/{card.name}.yaml.")
    names = wanted or list(loaded)
    return {split: (loaded[split], f"{path}/{config or ''}:{split}") for split in names}


def _load_source(card: TaskCard, lang: str, assets_dir: str | None) -> dict[str, Any]:
    raw = _load_raw(card, lang, assets_dir)
    if card.drop_labels:
        drop = {str(v) for v in card.drop_labels}
        raw = {k: (ds.filter(lambda v: str(v) not in drop, input_columns=card.label_column), where)
               if card.label_column in ds.column_names else (ds, where) for k, (ds, where) in raw.items()}
    return raw


def _load_raw(card: TaskCard, lang: str, assets_dir: str | None) -> dict[str, Any]:
    kind = card.source.get("kind", "local")
    if kind == "local":
        return _load_local(card, lang, assets_dir)
    if kind == "hub":
        if not card.source.get("path"):
            raise DataError(f"Task '{card.name}' has source.kind=hub but no source.path.")
        from itt.hub import hub_offline_flag, hub_reachable, require_hub

        if hub_offline_flag() is False and not hub_reachable():
            require_hub("dataset", card.source["path"], f"task {card.name}")
        return _load_hub(card, lang)
    raise DataError(f"Task '{card.name}': unknown source.kind '{kind}' (expected local or hub).")


def _ratio_split(ds: Any, card: TaskCard, seed: int) -> tuple[Any, Any, Any]:
    n = len(ds)
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(n * float(card.split.get("train_fraction", 0.7))))
    train_idx, test_idx = perm[:n_train], perm[n_train:]
    n_val = int(round(len(train_idx) * float(card.split.get("validation_fraction", 0.1))))
    val_idx, train_idx = train_idx[:n_val], train_idx[n_val:]
    return ds.select(train_idx), ds.select(val_idx), ds.select(test_idx)


def _check_nonempty(card: TaskCard, split: str, lang: str, ds: Any, where: str) -> None:
    if ds is None or len(ds) == 0:
        raise DataError(f"Task '{card.name}': the {split} split for language '{lang}' is empty "
                        f"(from {where}). Check the data file and the split settings "
                        f"(split.train_fraction / validation_fraction / max_examples) in "
                        f"conf/task/{card.name}.yaml.")


def load_task(card: TaskCard, split_seed: int = 1234, assets_dir: str | None = None,
              max_train_examples: int | None = None, need_test: bool = True) -> TaskData:
    """Load, normalise and split a task for training on its train language(s) and testing
    on each of its eval languages."""
    import datasets

    from itt.tasks import get_task_type

    impl = get_task_type(card.type)
    _normalise = impl.normalise
    langs = list(dict.fromkeys(card.train_languages + (list(card.eval_languages) if need_test else [])))
    per_lang: dict[str, tuple[Any, Any, Any]] = {}
    for lang in langs:
        raw = _load_source(card, lang, assets_dir)
        protocol = card.split.get("protocol", "ratio")
        if protocol == "ratio" or "all" in raw:
            parts = [_normalise(card, ds, where) for ds, where in raw.values()]
            where = "; ".join(w for _, w in raw.values())
            ds = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
            _check_nonempty(card, "whole", lang, ds, where)
            if card.max_examples and len(ds) > card.max_examples:
                idx = np.random.default_rng(split_seed + 1).permutation(len(ds))[: card.max_examples]
                ds = ds.select(np.sort(idx))
            tr, va, te = _ratio_split(ds, card, split_seed)
            wheres = (where, where, where)
        else:
            names = {"train": "train", "validation": "validation", "test": "test"}
            names.update(card.split.get("splits") or {})
            got = {}
            wheres_d = {}
            for role, split_name in names.items():
                if split_name in raw:
                    got[role] = _normalise(card, raw[split_name][0], raw[split_name][1])
                    wheres_d[role] = raw[split_name][1]
            if "train" in got and "validation" not in got:
                n_val = int(round(len(got["train"]) * float(card.split.get("validation_fraction", 0.1))))
                perm = np.random.default_rng(split_seed).permutation(len(got["train"]))
                got["validation"] = got["train"].select(perm[:n_val])
                got["train"] = got["train"].select(perm[n_val:])
                wheres_d["validation"] = wheres_d["train"]
            tr, va, te = got.get("train"), got.get("validation"), got.get("test")
            wheres = (wheres_d.get("train", "?"), wheres_d.get("validation", "?"), wheres_d.get("test", "?"))
        per_lang[lang] = (tr, va, te)
        if lang in card.train_languages:
            _check_nonempty(card, "train", lang, tr, wheres[0])
            _check_nonempty(card, "validation", lang, va, wheres[1])
        if need_test and lang in card.eval_languages:
            _check_nonempty(card, "test", lang, te, wheres[2])
    trains = [per_lang[lang][0] for lang in card.train_languages]
    vals = [per_lang[lang][1] for lang in card.train_languages]
    train = trains[0] if len(trains) == 1 else datasets.concatenate_datasets(trains)
    validation = vals[0] if len(vals) == 1 else datasets.concatenate_datasets(vals)
    if max_train_examples and len(train) > max_train_examples:
        idx = np.random.default_rng(split_seed + 2).permutation(len(train))[:max_train_examples]
        train = train.select(np.sort(idx))
    test = {lang: per_lang[lang][2] for lang in card.eval_languages} if need_test else {}
    sizes = {"train": len(train), "validation": len(validation),
             "test": {lang: len(ds) for lang, ds in test.items()}}
    log.info("Task %s: %s", card.name, sizes)
    return TaskData(card=card, train=train, validation=validation, test=test, sizes=sizes)
