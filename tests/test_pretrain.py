"""Masked-LM pretraining of the tiny code / text encoders, their cards and experiments.

Everything trains at toy sizes (hidden 32, a few thousand tokens) so the file stays within
seconds on a CPU; the real sizes are in conf/model/tiny_code.yaml and tiny_text.yaml.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from itt.config import available, compose, to_dict
from itt.errors import DataError
from itt.pretraining import code_corpus, get_corpus, in_memory, pretrain, text_corpus, tokenize_budget
from itt.pretraining.build import model_dir, settings, shared_tokenizer, tokenizer_key
from itt.pretraining.corpora import english_files

TOY_MODEL = {"architecture": "roberta", "hidden_size": 32, "num_layers": 2, "num_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 64}
# Card overrides that shrink tiny_code / tiny_text to seconds (the tokenizer still sees both
# corpora when the offline assets are there; see _toy_card).
TOY_PRETRAIN = ["model.pretrain.tokens=4000", "model.pretrain.held_out_tokens=1000", "model.pretrain.epochs=1",
                "model.pretrain.batch_size=16", "model.pretrain.max_length=32",
                "model.pretrain.model.hidden_size=32", "model.pretrain.model.num_heads=2",
                "model.pretrain.model.intermediate_size=64", "model.pretrain.tokenizer.vocab_size=500",
                "model.pretrain.tokenizer.chars_per_corpus=40000"]


def _text_available() -> bool:
    try:
        text_corpus()
    except DataError:
        return False
    return True


needs_text = pytest.mark.skipif(not _text_available(),
                                reason="offline English text not built (python -m itt.assets fetch)")


# ------------------------------------------------------------------------------ corpora
def test_code_corpus_is_the_stdlib_read_deterministically():
    corpus = code_corpus()
    parts = {part for f in corpus.files for part in f.relative_to(corpus.root).parts[:-1]}
    assert not parts & {"site-packages", "dist-packages", "test", "tests", "idle_test"}
    assert corpus.files == code_corpus().files and len(corpus.files) > 100
    assert any(f.name == "textwrap.py" for f in corpus.files)
    assert corpus.documents(0)[:5] == code_corpus().documents(0)[:5]
    assert corpus.documents(0)[:5] != corpus.documents(1)[:5]
    assert corpus.fingerprint == code_corpus().fingerprint


def test_text_corpus_reads_english_files_only(tmp_path):
    for name, text in [("a", "plain English"), ("b-en", "English part"), ("b-de", "deutscher Teil"),
                       ("c-fr", "partie française")]:
        (tmp_path / f"{name}.jsonl").write_text(json.dumps({"text": text, "label": "x"}) + "\n")
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"text_a": "one", "text_b": "two", "label": 1.0}) + "\n")
    assert [p.name for p in english_files(str(tmp_path / "*.jsonl"))] == ["a.jsonl", "b-en.jsonl", "pairs.jsonl"]
    corpus = text_corpus(tmp_path / "*.jsonl", exclude=["a"])
    assert sorted(corpus.documents(0)) == ["English part", "one\ntwo"]


def test_missing_text_corpus_points_to_the_asset_fetch(tmp_path):
    with pytest.raises(DataError, match="python -m itt.assets fetch"):
        text_corpus(tmp_path / "nothing" / "*.jsonl")


# ------------------------------------------------------------------------------ MLM
def test_pretraining_lowers_held_out_mlm_loss_and_saves_an_automodel(tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from itt.data import smoke

    # A tiny corpus with learnable context: the smoke set's template sentences.
    out = tmp_path / "model"
    summary = pretrain(TOY_MODEL, in_memory("smoke", smoke.corpus_lines()), out, token_budget=8_000,
                       held_out_tokens=1_500, epochs=3, batch_size=16, max_length=32, lr=3e-3, vocab_size=300,
                       tokenizer_chars=50_000, seed=0)
    assert summary["tokens"]["train"] == 8_000 and summary["tokens"]["held_out"] == 1_500
    loss = summary["held_out_loss"]
    assert loss["after"] < loss["before"] - 1.0, loss   # from about ln(300) = 5.7
    encoder = AutoModel.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    batch = tok(["def f(x):\n    return x", "plain words"], return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    assert hidden.shape[-1] == 32 and torch.isfinite(hidden).all()
    assert json.loads((out / "itt_pretrain.json").read_text())["corpus"]["name"] == "smoke"


@needs_text
def test_both_corpora_get_the_same_token_budget(tmp_path):
    spec = settings(to_dict(compose(["model=tiny_code"] + TOY_PRETRAIN))["model"])
    corpora = {n: get_corpus(n, code_dir=spec["code_dir"], text_files=spec["text_files"],
                             exclude=spec["text_exclude"]) for n in ("code", "text")}
    tok_dir = shared_tokenizer(spec, corpora, tmp_path)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    counts = {n: tokenize_budget(c, tok, 25_000, 3_000, 64, seed=0) for n, c in corpora.items()}
    assert counts["code"].train_tokens == counts["text"].train_tokens == 25_000
    assert counts["code"].held_out_tokens == counts["text"].held_out_tokens == 3_000
    assert counts["code"].train.shape == counts["text"].train.shape   # same blocks, same steps
    # Different data, not a copy: few shared blocks.
    assert not (counts["code"].train[:50] == counts["text"].train[:50]).all()


def test_code_and_text_cards_differ_only_in_their_corpus():
    code = to_dict(compose(["model=tiny_code"]))["model"]
    text = to_dict(compose(["model=tiny_text"]))["model"]
    assert (code["pretraining"], text["pretraining"]) == ("code", "text")
    assert {k: v for k, v in code["pretrain"].items() if k != "corpus"} == \
        {k: v for k, v in text["pretrain"].items() if k != "corpus"}
    assert (code["pretrain"]["corpus"], text["pretrain"]["corpus"]) == ("code", "text")
    assert {k: v for k, v in code.items() if k not in ("name", "pretraining", "pretrain")} == \
        {k: v for k, v in text.items() if k not in ("name", "pretraining", "pretrain")}


@needs_text
def test_cards_share_one_tokenizer_and_cache_by_content(tmp_path):
    code = to_dict(compose(["model=tiny_code"]))["model"]
    text = to_dict(compose(["model=tiny_text"]))["model"]
    (code_dir, code_spec, code_corpora), (text_dir, text_spec, text_corpora) = \
        model_dir(code, tmp_path), model_dir(text, tmp_path)
    assert tokenizer_key(code_spec, code_corpora) == tokenizer_key(text_spec, text_corpora)
    assert code_dir != text_dir
    assert model_dir(code, tmp_path)[0] == code_dir            # same settings, same corpora: same key
    moved = dict(code, pretrain=dict(code["pretrain"], tokens=code["pretrain"]["tokens"] + 1))
    assert model_dir(moved, tmp_path)[0] != code_dir


def test_pretrained_card_builds_on_first_use_and_runs_in_a_cell(make_cfg, tmp_path):
    from itt.builders import model_path
    from itt.cell import run_cell

    overrides = ["model=tiny_code", "intermediate=none", "target=smoke_products", "stage2.epochs=2"] + TOY_PRETRAIN
    if not _text_available():   # the shared tokenizer needs both corpora; code alone still tests the hook
        overrides.append("model.pretrain.tokenizer.corpora=[code]")
    cfg = make_cfg(*overrides)
    result = run_cell(cfg, tmp_path / "cell")
    assert result["status"] == "ok"
    assert result["model"]["pretraining"] == "code"
    path = Path(result["model"]["pretrained"])
    assert json.loads((path / "itt_pretrain.json").read_text())["tokens"]["train"] == 4000
    t0 = time.perf_counter()
    again, local = model_path(cfg["model"], cfg["paths"]["cache_dir"])
    assert (Path(again), local) == (path, True) and time.perf_counter() - t0 < 5   # cached, not retrained


# ------------------------------------------------------------------------------ cards, experiments
def test_code_model_cards_and_their_text_counterpart():
    cards = {n: to_dict(compose([f"model={n}"]))["model"] for n in
             ("roberta", "codebert", "graphcodebert", "unixcoder")}
    assert cards["roberta"]["pretraining"] == "text"
    for name, hub in [("codebert", "microsoft/codebert-base"), ("graphcodebert", "microsoft/graphcodebert-base"),
                      ("unixcoder", "microsoft/unixcoder-base")]:
        assert cards[name]["pretrained"] == hub
        assert cards[name]["architecture"] == "roberta" and cards[name]["pretraining"] == "code"
        assert cards[name]["trust_remote_code"] is False
    assert cards["unixcoder"]["pooling"] == "mean"


CONF = Path(__file__).resolve().parents[1] / "conf"


def _card(group: str, name: str) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(CONF / group / f"{name}.yaml"))   # no paths needed


def _sweep(experiment: str) -> dict[str, list[str]]:
    from omegaconf import OmegaConf

    raw = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml")
    return {k: [v.strip() for v in str(val).split(",")] for k, val in raw.hydra.sweeper.params.items()}


@pytest.mark.parametrize("experiment", ["code_vs_text", "code_vs_text_mini"])
def test_code_vs_text_experiments_compose_and_pair_fields(experiment):
    sweep = _sweep(experiment)
    missing = sorted(set(sweep["intermediate"] + sweep["target"]) - set(available("task")))
    if missing:
        pytest.skip(f"experiment={experiment} names task cards not in conf/task yet: {', '.join(missing)}")
    cfg = to_dict(compose([f"experiment={experiment}"]))
    assert cfg["experiment_name"] == experiment
    assert {_card("model", m)["pretraining"] for m in sweep["model"]} == {"code", "text"}
    targets = {t: _card("task", t) for t in sweep["target"]}
    fields = {card["field"] for card in targets.values()}
    for inter in sweep["intermediate"]:
        if inter != "none":   # the sweeper pairs an intermediate task with targets of its field only
            assert _card("task", inter)["field"] in fields, inter
    if experiment == "code_vs_text":
        assert all(card["benchmark"] == "xtreme-r" for card in targets.values())
