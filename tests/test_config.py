"""Every file in conf/ composes, and unknown names list the known ones."""
from __future__ import annotations

import pytest
from hydra.errors import MissingConfigException

from itt.config import available, compose, to_dict
from itt.data.cards import card_from_config

GROUPS = ["model", "trainer", "logger", "experiment", "paths"]


def _all(group: str) -> list[str]:
    names = available(group)
    assert names, f"conf/{group} is empty"
    return names


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_option_composes(group):
    for name in _all(group):
        cfg = to_dict(compose([f"{group}={name}"]))
        assert cfg["model"]["name"]
        assert cfg["experiment_name"]


def test_every_task_card_composes_as_target_and_intermediate():
    for name in _all("task"):
        cfg = compose([f"intermediate={name}"] + ([f"target={name}"] if name != "none" else []))
        data = to_dict(cfg)
        inter = card_from_config(data["intermediate"], "intermediate")
        assert (inter is None) == (name == "none")
        if name != "none":
            card = card_from_config(data["target"], "target")
            assert card.name == name, f"conf/task/{name}.yaml must have name: {name}"
            assert card.main_metric in card.metrics


def test_model_cards_have_what_the_code_reads():
    for name in _all("model"):
        m = to_dict(compose([f"model={name}"]))["model"]
        assert m["name"] == name
        assert m["pooling"] in ("first", "last", "mean")
        assert m["pretraining"] in ("text", "code", "multilingual", "none")
        assert m["trust_remote_code"] is False, "remote code must stay off unless a user asks"
        assert m.get("pretrained") or m.get("tiny") or m.get("pretrain")  # pretrain: built on first use


def test_paper_encoders_and_offline_encoders_present():
    models = set(_all("model"))
    assert {"bert", "roberta", "xlnet", "mbert", "xlmr_base", "xlmr_large",
            "tiny_bert", "tiny_roberta", "tiny_xlnet", "minilm"} <= models
    assert to_dict(compose(["model=bert"]))["model"]["pretrained"] == "bert-base-cased"
    assert to_dict(compose(["model=roberta"]))["model"]["pretrained"] == "roberta-base"
    assert to_dict(compose(["model=xlnet"]))["model"]["pretrained"] == "xlnet-base-cased"
    assert to_dict(compose(["model=xlnet"]))["model"]["pooling"] == "last"


@pytest.mark.parametrize("override,group", [("model=no_such_model", "model"),
                                            ("target=no_such_task", "target"),
                                            ("intermediate=no_such_task", "intermediate"),
                                            ("experiment=no_such_experiment", "experiment")])
def test_unknown_name_lists_available(override, group):
    with pytest.raises(MissingConfigException) as info:
        compose([override])
    msg = str(info.value)
    assert "Available options" in msg
    known = available("task" if group in ("target", "intermediate") else group)
    assert all(name in msg for name in known[:3])


def test_target_none_is_rejected():
    from itt.errors import ConfigError

    with pytest.raises(ConfigError, match="target=none"):
        card_from_config(to_dict(compose(["target=none"]))["target"], "target")


def test_per_stage_settings_override_from_command_line():
    cfg = to_dict(compose(["stage1.epochs=100", "stage2.lr=2e-5", "stage1.freeze_layers=1",
                           "stage2.max_length=64"]))
    assert cfg["stage1"]["epochs"] == 100 and cfg["stage2"]["lr"] == 2e-5
    assert cfg["stage1"]["freeze_layers"] == 1 and cfg["stage2"]["max_length"] == 64
    assert cfg["stage1"]["freeze_embeddings"] is False and cfg["stage1"]["freeze_layers"] == 1
