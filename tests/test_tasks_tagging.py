"""Token tagging: sub-word label alignment, truncation, bad tags, seqeval scoring."""
from __future__ import annotations

import datasets
import pytest

from itt.data.cards import card_from_config
from itt.errors import DataError
from itt.tasks import get_task_type
from itt.tasks.tagging import IGNORE, align_labels, default_tag, words_from_predictions

NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from itt.config import compose, to_dict
    from itt.models.tiny import build_tiny

    cfg = to_dict(compose(["model=tiny_bert"]))
    return AutoTokenizer.from_pretrained(str(build_tiny(cfg["model"], cfg["paths"]["cache_dir"])))


def _card(**kw):
    data = {"name": "ner_unit", "type": "token_tagging", "source": {"kind": "local"}, "labels": NER,
            "columns": {"tokens": "tokens", "tags": "tags"}, "metrics": ["f1", "precision", "recall"],
            "main_metric": "f1"}
    data.update(kw)
    return card_from_config(data, "target")


def test_label_sits_on_the_first_sub_token(tokenizer):
    words = ["the", "filmmaker", "was", "good"]
    enc = tokenizer(words, is_split_into_words=True)
    assert enc.tokens() == ["[CLS]", "the", "film", "##m", "##a", "##k", "##er", "was", "good", "[SEP]"]
    labels, first = align_labels(enc.word_ids(), [10, 11, 12, 13])
    # "filmmaker" has five pieces: only the first carries its label; specials get -100 too.
    assert labels == [IGNORE, 10, 11, IGNORE, IGNORE, IGNORE, IGNORE, 12, 13, IGNORE]
    assert first == [0, 1, 2, 3]


def test_encode_truncates_words_and_predicts_them_as_default(tokenizer):
    impl = get_task_type("token_tagging")
    card = _card()
    ds = impl.normalise(card, datasets.Dataset.from_dict({
        "tokens": [["Anna", "lives", "in", "Berlin"], ["the", "film"] * 12 + ["Berlin"]],
        "tags": [["B-PER", "O", "O", "B-LOC"], ["O"] * 24 + ["B-LOC"]]}), "unit")
    split = impl.encode(ds, tokenizer, card, 12, None, "unit/test-en")
    assert split.truncated == 1 and list(split.n_words) == [4, 25]
    ids, _, labels = split.item(1)
    assert len(ids) == 12 and (labels != IGNORE).sum() == len(split.word_index(1)) < 25
    # Perfect predictions on the kept words: the cut-off B-LOC is predicted as O and missed.
    preds = [[int(split.gold(i)[w]) for w in split.word_index(i)] for i in range(len(split))]
    scores = impl.score(preds, split, card)
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(2 / 3)
    gold, pred = impl.sentences(preds, split, card)
    assert len(pred[1]) == 25 and pred[1][-1] == "O" and gold[1][-1] == "B-LOC"


def test_classlabel_ids_are_read_by_name_and_bad_tags_name_row_and_value():
    impl = get_task_type("token_tagging")
    card = _card()
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-LOC", "B-PER"]))})
    ds = datasets.Dataset.from_dict({"tokens": [["Oslo"], ["Anna"]], "tags": [[1], [2]]}, features=features)
    out = impl.normalise(card, ds, "hub:split")
    assert out["tags"] == [[NER.index("B-LOC")], [NER.index("B-PER")]]   # by name, not by id
    bad = datasets.Dataset.from_dict({"tokens": [["a"], ["b", "c"]], "tags": [["O"], ["O", "B-MISC"]]})
    with pytest.raises(DataError, match=r"file\.jsonl row 1 has tag 'B-MISC' \(word 1, 'c'\)"):
        impl.normalise(card, bad, "file.jsonl")
    with pytest.raises(DataError, match="row 0 has 1 tokens but 2 tags"):
        impl.normalise(card, datasets.Dataset.from_dict({"tokens": [["a"]], "tags": [["O", "O"]]}), "f")


def test_default_tag_and_word_mapping():
    assert default_tag(_card()) == 0
    assert default_tag(_card(labels=["NOUN", "VERB"])) == 0
    assert default_tag(_card(labels=["NOUN", "VERB"], default_tag="VERB")) == 1
    assert words_from_predictions([5, 6], [0, 2], 4, 0) == [5, 0, 6, 0]
    with pytest.raises(RuntimeError):
        words_from_predictions([1], [0, 1], 2, 0)
