"""The XTREME task cards agree with the scorer's task registry; experiment=xtreme_r sweeps them."""
from __future__ import annotations

import copy
import functools

import pytest
from omegaconf import OmegaConf

from itt.config import CONF_DIR, available, compose, to_dict
from itt.data.cards import card_from_config
from itt.data.loading import source_variant, train_card, translate_train
from itt.errors import ConfigError
from itt.metrics.xtreme_tasks import TASKS, VERSIONS
from itt.tasks import get_task_type


@functools.lru_cache(maxsize=1)
def _cards() -> dict[str, dict]:
    out = {}
    for name in available("task"):
        raw = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml"))
        if raw.get("benchmark") in VERSIONS:
            out[name] = to_dict(compose([f"target={name}"]))["target"]
    return out


def test_xtreme_cards_match_the_registry():
    cards = _cards()
    assert set(VERSIONS["xtreme-r"].tasks) | {"pawsx", "bucc2018"} <= set(cards)
    for name, data in cards.items():
        card = card_from_config(copy.deepcopy(data), "target")
        task = card.extra["xtreme_task"]
        spec, version = TASKS[task], VERSIONS[card.benchmark]
        # every language of the task, but those a card names as not in its source
        missing = list(card.extra.get("unavailable_languages") or [])
        assert not set(missing) & set(card.eval_languages), name
        assert [lang for lang in version.languages[task] if lang not in missing] == list(card.eval_languages), name
        assert card.type == spec.task_type and card.setting == "xtreme", name
        assert card.main_metric in spec.metrics and set(card.metrics) <= set(spec.metrics), name
        assert card.field != "unknown" and card.domain != "unknown", name
        assert card.source.get("path"), f"{name}: the hub id (or the source to convert) is named"
        impl = get_task_type(card.type)
        if impl.trainable:
            assert card.extra.get("train_overrides"), f"{name}: per-task hyper-parameters"
            assert train_card(card).source.get("path")
            block = card.extra.get("translate_train") or {}
            if block.get("source"):
                assert source_variant(card, block["source"], "t").source["path"]
            else:
                assert block.get("note"), f"{name}: say why there is no translate-train data"
        assert translate_train(card) == (None, [])   # off unless asked for


def test_translate_train_without_data_names_the_task():
    card = card_from_config(copy.deepcopy(_cards()["udpos"]), "target")
    card.extra["translate_train"]["enabled"] = True
    with pytest.raises(ConfigError, match="'udpos' has no translated training data"):
        translate_train(card)


def test_experiment_sweeps_encoders_intermediates_and_every_xtreme_r_target():
    raw = OmegaConf.load(CONF_DIR / "experiment" / "xtreme_r.yaml")
    params = raw.hydra.sweeper.params
    targets = params.target.split(",")
    assert set(targets) == set(VERSIONS["xtreme-r"].tasks)
    for name in params.intermediate.split(","):
        if name == "none":
            continue
        cfg = to_dict(compose(["experiment=xtreme_r", f"intermediate={name}"]))
        inter = card_from_config(cfg["intermediate"], "intermediate")
        assert inter.setting == "intermediate" and inter.languages == ["en"]
        assert get_task_type(inter.type).trainable, f"{name} cannot be trained as stage 1"
    for model in params.model.split(","):
        assert to_dict(compose(["experiment=xtreme_r", f"model={model}"]))["model"]["pretraining"] == "multilingual"
    cfg = to_dict(compose(["experiment=xtreme_r"]))
    assert cfg["run"]["card_overrides"] is True and cfg["eval"]["export_predictions"] is True


def test_unknown_task_type_lists_the_known_ones():
    with pytest.raises(ConfigError, match="Known types: .*multiple_choice.*retrieval.*span_qa.*token_tagging"):
        get_task_type("sequence_labelling")


# ------------------------------------------------------------------------------ task-type registry
def test_registry_names_every_implementation_and_is_read_by_cards_and_metrics():
    from itt import task_types
    from itt.tasks import known_types
    from itt.tasks.base import TaskType

    assert known_types() == sorted(task_types.TYPES)
    for name, info in task_types.TYPES.items():
        impl = get_task_type(name)
        assert isinstance(impl, TaskType) and type(impl).__module__ == info.module, name
        assert type(impl).__name__ == info.class_name, name
    # The XTREME registry speaks the same type names as the cards.
    assert {t.task_type for t in TASKS.values()} <= set(task_types.TYPES)
    # A card without metrics gets its type's defaults from the registry.
    base = {"name": "t", "source": {"kind": "local"}, "labels": ["a", "b"]}
    for name, info in task_types.TYPES.items():
        if not info.default_metrics:  # the XTREME types: the card names its metrics
            with pytest.raises(ConfigError, match="main_metric 'accuracy' is not in its metrics"):
                card_from_config(dict(base, type=name), "target")
            continue
        card = card_from_config(dict(base, type=name), "target")
        assert card.metrics == list(info.default_metrics) and card.main_metric == info.default_metrics[0], name
        assert card.is_classification == info.classification
    assert [n for n, i in task_types.TYPES.items() if i.default_metrics] == [
        "single_text_classification", "text_pair_classification", "text_pair_regression"]
    with pytest.raises(ConfigError, match="classification task but lists no 'labels'"):
        card_from_config({"name": "t", "type": "single_text_classification", "source": {"kind": "local"}}, "target")


def test_unknown_type_in_a_card_names_the_card_and_the_nearest_type():
    with pytest.raises(ConfigError, match="Task card 't' has unknown task type 'span_q'. Did you mean 'span_qa'"):
        card_from_config({"name": "t", "type": "span_q", "source": {"kind": "local"}}, "target")


def test_registry_cards_and_xtreme_tasks_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, itt.task_types, itt.data.cards, itt.metrics.xtreme_tasks; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'datasets') "
            "or m.startswith('itt.tasks')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
