"""From a task card to normalised ``datasets`` splits.

Normalised rows are the task type's normal form (for the sequence types ``text`` or
``text_a``/``text_b`` and ``label``, a class index or a float): the caller passes the task
type (:func:`itt.tasks.get_task_type`), whose ``normalise`` turns raw rows into it, so that
data never imports the task implementations. The split protocol is the card's ``split`` block
(:mod:`itt.data.splits`); by default the paper's seeded 70/30 train/test split of each
language's data, validation carved from the training part (63/7/30).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from itt.data import splits
from itt.data.cards import TaskCard
from itt.errors import DataError, HubUnavailableError

log = logging.getLogger(__name__)

_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet",
            ".txt": "text"}


class RowNormaliser(Protocol):
    """What loading needs of a task type (:class:`itt.tasks.base.TaskType` has it)."""

    #: False for a type scored without training: only its test languages are loaded.
    trainable: bool

    def normalise(self, card: TaskCard, ds: Any, where: str) -> Any:
        """Raw rows of ``card`` read from ``where`` in the type's normal form."""
        ...


@dataclass
class TaskData:
    card: TaskCard
    train: Any
    validation: Any
    test: dict[str, Any]
    sizes: dict[str, Any] = field(default_factory=dict)


def _lang_code(card: TaskCard, lang: str) -> str:
    """What ``{lang}`` stands for in a source: the language code, or the source's own name
    for it (``source.lang_codes``, e.g. ``{de: deu}`` for Tatoeba, ``{de: German}`` for UD)."""
    codes = card.source.get("lang_codes") or {}
    return str(codes.get(lang, lang))


def _with_lang(value: Any, code: str) -> Any:
    if isinstance(value, str):
        return value.replace("{lang}", code)
    if isinstance(value, dict):
        return {k: _with_lang(v, code) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_with_lang(v, code) for v in value]
    return value


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
        out[split] = [f.replace("{lang}", _lang_code(card, lang)) for f in files]
    missing = [f for fs in out.values() for f in fs if not os.path.exists(f)]
    if missing and card.source.get("generator") == "smoke":
        from itt.data import smoke

        smoke.generate(Path(missing[0]).parent)
        missing = [f for f in missing if not os.path.exists(f)]
    if missing:
        hint = f"Check source.data_files in conf/task/{card.name}.yaml."
        if assets_dir and any(str(Path(m).resolve()).startswith(str(Path(assets_dir).resolve()))
                              for m in missing):
            from itt.data.availability import missing_offline_data

            why = missing_offline_data([card.name], assets_dir).get(card.name)
            hint = (f"It belongs to the offline asset suite; {why}." if why else
                    "It belongs to the offline asset suite: run `python -m itt.assets fetch` "
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

    code = _lang_code(card, lang)
    path = card.source["path"].replace("{lang}", code)
    config = card.source.get("config")
    config = config.replace("{lang}", code) if isinstance(config, str) else config
    kwargs: dict[str, Any] = {}
    if card.source.get("revision"):
        kwargs["revision"] = card.source["revision"]
    if card.source.get("trust_remote_code"):
        kwargs["trust_remote_code"] = True
    if card.source.get("data_files"):
        kwargs["data_files"] = _with_lang(card.source["data_files"], code)
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
    except (ValueError, RuntimeError) as exc:
        raise hub_load_error(card.name, path, config, card.source.get("revision"), exc) from exc
    wanted = card.source.get("splits")
    if wanted:
        unknown = [w for w in wanted if w not in loaded]
        if unknown:
            raise DataError(f"Task '{card.name}': hub dataset '{path}' ({config}) has no split(s) {unknown}; "
                            f"it has {list(loaded)}. Fix source.splits in conf/task/{card.name}.yaml.")
    names = wanted or list(loaded)
    return {split: (loaded[split], f"{path}/{config or ''}:{split}") for split in names}


def hub_load_error(name: str, path: str, config: Any, revision: Any, exc: Exception) -> DataError:
    """A one-line error, with the fix, for what ``datasets.load_dataset`` says about a hub
    repository it cannot read: a script-only repository, a config the revision lacks."""
    where = f"hub dataset '{path}' (revision {revision or 'main'})"
    text = str(exc)
    if "scripts are no longer supported" in text:
        script = text.rsplit("found ", 1)[-1] if "found " in text else "a loading script"
        return DataError(f"Task '{name}': {where} holds only a loading script ({script}), which "
                         f"datasets >= 4 does not run. Fix: set source.revision: refs/convert/parquet in "
                         f"conf/task/{name}.yaml where the hub has a parquet conversion, or convert the "
                         f"official files (python -m itt.data.xtreme_convert) and read them with "
                         f"source.kind: local.")
    if "BuilderConfig" in text and "not found" in text:
        available = text.split("Available:", 1)[-1].strip() if "Available:" in text else "?"
        return DataError(f"Task '{name}': {where} has no config '{config}'; it has {available}. A "
                         f"refs/convert/parquet branch without a README has the single config 'default'. "
                         f"Fix: set source.config in conf/task/{name}.yaml to one it has, or read "
                         f"per-language files converted by python -m itt.data.xtreme_convert.")
    return DataError(f"Task '{name}': could not load {where} config '{config}': "
                     f"{type(exc).__name__}: {text}")


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
    train_idx, val_idx, test_idx = splits.ratio_indices(len(ds), card.name, card.split, seed)
    return ds.select(train_idx), ds.select(val_idx), ds.select(test_idx)


def _check_nonempty(card: TaskCard, split: str, lang: str, ds: Any, where: str) -> None:
    if ds is None or len(ds) == 0:
        raise DataError(f"Task '{card.name}': the {split} split for language '{lang}' is empty "
                        f"(from {where}). Check the data file and the split settings "
                        f"(split.train_fraction / validation_fraction / max_examples) in "
                        f"conf/task/{card.name}.yaml.")


# Keys of a ``train_source`` / ``translate_train.source`` block that are card fields, not
# source fields: the other source may name its columns and labels differently.
_CARD_KEYS = ("columns", "label_map", "drop_labels", "split", "max_examples")


def source_variant(card: TaskCard, spec: dict[str, Any], what: str) -> TaskCard:
    """The card reading its rows from another source (``train_source``, the translated
    training data of ``translate_train``): the block holds the source fields and,
    optionally, its own ``columns``/``label_map``/``drop_labels``/``split``/``max_examples``."""
    import dataclasses

    from itt.errors import ConfigError

    if not isinstance(spec, dict) or not (spec.get("path") or spec.get("data_files")):
        raise ConfigError(f"Task card '{card.name}': {what} must be a source block with a hub path "
                          f"or data_files (see docs/schemas.md), got {spec!r}.")
    spec = dict(spec)
    over: dict[str, Any] = {k: spec.pop(k) for k in _CARD_KEYS if k in spec}
    if over.get("label_map"):
        over["label_map"] = {str(k): str(v) for k, v in over["label_map"].items()}
    if "split" in over:
        over["split"] = {**card.split, **over["split"]}
    return dataclasses.replace(card, source=spec, **over)


def train_card(card: TaskCard) -> TaskCard:
    """The card the training (and validation) rows come from: ``train_source`` where the
    card names one (XNLI trains on MultiNLI, XQuAD on SQuAD v1.1), else the card itself."""
    spec = card.extra.get("train_source")
    return card if not spec else source_variant(card, spec, "train_source")


def translate_train(card: TaskCard) -> tuple[TaskCard | None, list[str]]:
    """(card of the translated training data, its languages) when the card's
    ``translate_train.enabled`` is set; (None, []) otherwise. Translate-train here is
    XTREME's translate-train-all: one model on the English data plus every translation."""
    from itt.errors import ConfigError

    block = card.extra.get("translate_train") or {}
    if not isinstance(block, dict):
        raise ConfigError(f"Task card '{card.name}': translate_train must be a mapping with "
                          f"enabled/source/languages, got {block!r}.")
    if not block.get("enabled"):
        return None, []
    if not block.get("source"):
        note = f" ({block['note']})" if block.get("note") else ""
        raise ConfigError(f"Task '{card.name}' has no translated training data{note}: "
                          f"translate_train.source is not set in conf/task/{card.name}.yaml, so "
                          f"translate-train cannot run for it. Leave translate_train off "
                          f"(the zero-shot setting).")
    langs = list(block.get("languages") or card.eval_languages)
    langs = [lang for lang in langs if lang not in card.train_languages]
    return source_variant(card, block["source"], "translate_train.source"), langs


def _load_language(card: TaskCard, lang: str, roles: tuple[str, ...], split_seed: int,
                   assets_dir: str | None, normalise: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The normalised ``roles`` (train / validation / test) of one language of ``card``."""
    import datasets

    raw = _load_source(card, lang, assets_dir)
    protocol = card.split.get("protocol", "ratio")
    if protocol == "ratio" or "all" in raw:
        parts = [normalise(card, ds, where) for ds, where in raw.values()]
        where = "; ".join(w for _, w in raw.values())
        ds = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
        _check_nonempty(card, "whole", lang, ds, where)
        if card.max_examples and len(ds) > card.max_examples:
            idx = np.random.default_rng(split_seed + 1).permutation(len(ds))[: card.max_examples]
            ds = ds.select(np.sort(idx))
        tr, va, te = _ratio_split(ds, card, split_seed)
        return {"train": tr, "validation": va, "test": te}, {r: where for r in ("train", "validation", "test")}
    names = {"train": "train", "validation": "validation", "test": "test"}
    names.update(card.split.get("splits") or {})
    got: dict[str, Any] = {}
    wheres: dict[str, str] = {}
    for role in roles:
        split_name = names.get(role)
        if split_name in raw:
            got[role] = normalise(card, raw[split_name][0], raw[split_name][1])
            wheres[role] = raw[split_name][1]
    carve = "validation" not in got or splits.resolve(card.name, card.split)["validation_from"] == "train"
    if "train" in got and "validation" in roles and carve:
        val_idx, train_idx = splits.carve_validation(len(got["train"]), card.name, card.split, split_seed)
        got["validation"] = got["train"].select(val_idx)
        got["train"] = got["train"].select(train_idx)
        wheres["validation"] = wheres["train"]
    for role in roles:
        if role not in wheres:
            wheres[role] = (f"no split named '{names.get(role)}' (it has {list(raw)}; "
                            f"see split.splits)")
    return got, wheres


def load_task(card: TaskCard, task_type: RowNormaliser, split_seed: int = 1234, assets_dir: str | None = None,
              max_train_examples: int | None = None, need_test: bool = True,
              max_eval_examples: int | None = None, max_val_examples: int | None = None) -> TaskData:
    """Load, normalise and split a task for training on its train language(s) and testing
    on each of its eval languages.

    The training rows come from ``train_source`` where the card names one, plus the
    translated training sets when ``translate_train.enabled``; test rows always come from
    the card's own source. A type that is not trained (representation retrieval) loads
    only its test languages. ``max_eval_examples`` caps each test language and the
    validation split, unless ``max_val_examples`` caps the validation split apart.
    ``task_type`` is the card's type (``itt.tasks.get_task_type(card.type)``)."""
    import datasets

    from itt.errors import ConfigError

    impl = task_type
    if not impl.trainable and not need_test:
        raise ConfigError(f"Task '{card.name}' is of type {card.type}, which is scored without "
                          f"training; it cannot be an intermediate task.")
    tcard = train_card(card)
    tt_card, tt_langs = translate_train(card) if impl.trainable else (None, [])
    train_langs = list(card.train_languages) if impl.trainable else []
    eval_langs = list(card.eval_languages) if need_test else []
    plan: list[tuple[TaskCard, str, tuple[str, ...]]] = []   # (card, lang, roles)
    for lang in dict.fromkeys(train_langs + eval_langs):
        roles_main = ("test",) if lang in eval_langs else ()
        if lang in train_langs:
            if tcard is card:
                roles_main = ("train", "validation") + roles_main
            else:
                plan.append((tcard, lang, ("train", "validation")))
        if roles_main:
            plan.append((card, lang, roles_main))
    plan += [(tt_card, lang, ("train", "validation")) for lang in tt_langs]

    parts: dict[tuple[int, str, str], Any] = {}
    for c, lang, roles in plan:
        got, wheres = _load_language(c, lang, roles, split_seed, assets_dir, impl.normalise)
        for role in roles:
            _check_nonempty(c, role, lang, got.get(role), wheres[role])
            parts[(id(c), lang, role)] = got[role]

    trains = [parts[(id(tcard), lang, "train")] for lang in train_langs]
    vals = [parts[(id(tcard), lang, "validation")] for lang in train_langs]
    trains += [parts[(id(tt_card), lang, "train")] for lang in tt_langs]
    vals += [parts[(id(tt_card), lang, "validation")] for lang in tt_langs]
    test = {lang: parts[(id(card), lang, "test")] for lang in eval_langs}
    if trains:
        train = trains[0] if len(trains) == 1 else datasets.concatenate_datasets(trains)
        validation = vals[0] if len(vals) == 1 else datasets.concatenate_datasets(vals)
    else:  # not trained: empty training/validation splits of the normal form
        train = validation = next(iter(test.values())).select([])
    if max_train_examples and len(train) > max_train_examples:
        idx = np.random.default_rng(split_seed + 2).permutation(len(train))[:max_train_examples]
        train = train.select(np.sort(idx))
    def cap(ds: Any, n: int | None) -> Any:
        # The same seeded rows in every language keep parallel test sets parallel.
        if not n or len(ds) <= n:
            return ds
        idx = np.random.default_rng(split_seed + 3).permutation(len(ds))[:n]
        return ds.select(np.sort(idx))

    if card.type != "retrieval":  # retrieval sets are not cut: their rows are the candidate pool
        validation = cap(validation, max_val_examples or max_eval_examples)
        test = {lang: cap(ds, max_eval_examples) for lang, ds in test.items()}
    sizes = {"train": len(train), "validation": len(validation),
             "test": {lang: len(ds) for lang, ds in test.items()}}
    if tt_langs:
        sizes["translate_train"] = list(tt_langs)
    log.info("Task %s: %s", card.name, sizes)
    return TaskData(card=card, train=train, validation=validation, test=test, sizes=sizes)
