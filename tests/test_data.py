"""Split protocol, batching and the tokenization cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from itt.data.batching import Collator, LengthGroupedBatchSampler
from itt.data.cards import card_from_config
from itt.data.loading import load_task
from itt.tasks import get_task_type


def _load(card, **kw):
    """load_task with the card's own task type, as the cell calls it."""
    return load_task(card, get_task_type(card.type), **kw)


def test_split_is_seeded_70_30_and_parallel_across_languages(make_cfg):
    cfg = make_cfg("target=smoke_xling")
    card = card_from_config(cfg["target"], "target")
    a = _load(card, split_seed=7)
    b = _load(card, split_seed=7)
    c = _load(card, split_seed=8)
    n = 400
    assert len(a.test["en"]) == n - round(n * 0.7)
    assert len(a.train) + len(a.validation) == round(n * 0.7)
    assert list(a.train["text"]) == list(b.train["text"])
    assert list(a.train["text"]) != list(c.train["text"])
    # The German test rows are the translations of the English test rows (same indices).
    assert list(a.test["en"]["label"]) == list(a.test["de"]["label"])
    en_words = [t.split()[-1] for t in a.test["en"]["text"]]
    de_words = [t.split()[-1] for t in a.test["de"]["text"]]
    from itt.data.smoke import _DE
    assert [_DE[w] for w in en_words] == de_words


def test_given_splits_protocol(make_cfg, tmp_path):
    import json

    for split, n in (("train", 50), ("test", 20)):
        (tmp_path / f"{split}.jsonl").write_text("".join(
            json.dumps({"text": f"{split} {i}", "label": i % 2}) + "\n" for i in range(n)))
    cfg = make_cfg()
    cfg["target"]["source"] = {"kind": "local", "data_files": {"train": str(tmp_path / "train.jsonl"),
                                                               "test": str(tmp_path / "test.jsonl")}}
    cfg["target"]["split"] = {"protocol": "given", "validation_fraction": 0.2}
    data = _load(card_from_config(cfg["target"], "target"))
    assert len(data.test["en"]) == 20 and len(data.train) == 40 and len(data.validation) == 10


def test_eval_caps_are_seeded_parallel_and_validation_can_be_capped_apart(make_cfg):
    cfg = make_cfg("target=smoke_xling")
    card = card_from_config(cfg["target"], "target")
    full = _load(card, split_seed=7)
    capped = _load(card, split_seed=7, max_eval_examples=20)
    apart = _load(card, split_seed=7, max_eval_examples=20, max_val_examples=10)
    assert len(full.validation) > 20 and all(len(ds) > 20 for ds in full.test.values())
    assert len(capped.validation) == 20 and {len(ds) for ds in capped.test.values()} == {20}
    assert len(apart.validation) == 10 and {len(ds) for ds in apart.test.values()} == {20}
    # the test caps keep the same rows in every language (parallel sets stay parallel)
    assert list(apart.test["en"]["label"]) == list(apart.test["de"]["label"])
    assert list(apart.test["en"]["text"]) == list(capped.test["en"]["text"])
    assert set(apart.validation["text"]) <= set(full.validation["text"])


@pytest.mark.parametrize("mode", ["length_grouped", "random", "sorted"])
def test_sampler_yields_every_index_once(mode):
    lengths = np.random.default_rng(0).integers(5, 200, size=1003)
    sampler = LengthGroupedBatchSampler(lengths, 32, mode=mode, mega_batch_factor=8, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1003))


def test_length_grouping_cuts_padding_and_stays_random():
    lengths = np.random.default_rng(0).lognormal(3.3, 0.6, size=4096).astype(int) + 3

    def pad_fraction(batches):
        total = sum(len(b) * lengths[b].max() for b in map(np.array, batches))
        return 1 - lengths.sum() / total

    grouped = LengthGroupedBatchSampler(lengths, 32, mode="length_grouped", seed=0)
    rand = LengthGroupedBatchSampler(lengths, 32, mode="random", seed=0)
    g1, g2 = list(grouped), list(grouped)
    assert pad_fraction(g1) < 0.5 * pad_fraction(list(rand))
    assert g1 != g2, "a new order every epoch"
    # Batches mix examples from across the data set, not a fixed sorted order.
    assert len({b[0] // 512 for b in g1[:20]}) > 3


def test_collator_pads_per_batch_on_the_tokenizers_side():
    items = [(0, (np.array([5, 6, 7]), None, 1)), (1, (np.array([8]), None, 0))]
    right = Collator(pad_id=0, padding_side="right")(items)
    left = Collator(pad_id=0, padding_side="left")(items)
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert right["index"].tolist() == [0, 1]


def test_pooling_first_last_mean_with_left_padding():
    from itt.models.heads import pool

    hidden = torch.arange(2 * 4 * 1, dtype=torch.float).view(2, 4, 1)
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1]])
    assert pool(hidden, mask, "first").flatten().tolist() == [0.0, 6.0]
    assert pool(hidden, mask, "last").flatten().tolist() == [2.0, 7.0]
    assert pool(hidden, mask, "mean").flatten().tolist() == [1.0, 6.5]


def test_tokenization_is_cached_and_truncation_counted(make_cfg, tmp_path):
    from itt.data.encoding import tokenize_split
    from itt.models.encoder import load_encoder

    cfg = make_cfg()
    _, tok, _ = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
    data = _load(card_from_config(cfg["target"], "target"))
    first = tokenize_split(data.train, tok, 8, tmp_path, ["text"], "t")
    assert first.truncated > 0 and first.lengths.max() == 8
    files = list((tmp_path / "tokenized").glob("*.npz"))
    assert len(files) == 1
    again = tokenize_split(data.train, tok, 8, tmp_path, ["text"], "t")
    assert np.array_equal(first.ids, again.ids) and again.truncated == first.truncated
    longer = tokenize_split(data.train, tok, 64, tmp_path, ["text"], "t")
    assert longer.truncated == 0 and len(list((tmp_path / "tokenized").glob("*.npz"))) == 2


def test_content_fingerprint_follows_values_not_storage():
    """The cache key hashes Arrow buffers: the same rows reached through an index mapping, a
    slice or a fresh table hash alike; one changed character, a reorder or a null does not."""
    import datasets

    from itt.data.encoding import content_fingerprint

    rows = {"text": [f"row {i} " + "x" * (i % 7) for i in range(50)], "label": [i % 3 for i in range(50)]}
    base = datasets.Dataset.from_dict(rows)
    fp = content_fingerprint(base, ["text", "label"])
    # the same values through an index mapping, and from a slice's buffers
    picked = datasets.Dataset.from_dict({"text": rows["text"] + ["extra"], "label": rows["label"] + [0]}).select(range(50))
    bigger = datasets.Dataset.from_dict({"text": ["pad"] * 5 + rows["text"], "label": [9] * 5 + rows["label"]})
    assert content_fingerprint(picked, ["text", "label"]) == fp
    assert content_fingerprint(bigger.select(range(5, 55)), ["text", "label"]) == fp
    assert content_fingerprint(datasets.Dataset.from_dict({k: v[5:] for k, v in rows.items()}),
                               ["text", "label"]) == content_fingerprint(base.select(range(5, 50)), ["text", "label"])
    changed = dict(rows, text=rows["text"][:10] + ["row 10 y"] + rows["text"][11:])
    assert content_fingerprint(datasets.Dataset.from_dict(changed), ["text", "label"]) != fp
    assert content_fingerprint(base.select(list(range(49, -1, -1))), ["text", "label"]) != fp
    relabeled = dict(rows, label=[(i + 1) % 3 for i in range(50)])
    assert content_fingerprint(datasets.Dataset.from_dict(relabeled), ["text", "label"]) != fp
    with_null = dict(rows, text=[None] + rows["text"][1:])
    empty_first = dict(rows, text=[""] + rows["text"][1:])
    assert (content_fingerprint(datasets.Dataset.from_dict(with_null), ["text"])
            != content_fingerprint(datasets.Dataset.from_dict(empty_first), ["text"]))
    # boundaries between values count: "ab","c" is not "a","bc"
    assert (content_fingerprint(datasets.Dataset.from_dict({"text": ["ab", "c"]}), ["text"])
            != content_fingerprint(datasets.Dataset.from_dict({"text": ["a", "bc"]}), ["text"]))
    # list columns (tagging, QA) take the value-by-value path
    toks = datasets.Dataset.from_dict({"tokens": [["a", "b"], ["c"]]})
    assert content_fingerprint(toks, ["tokens"]) != content_fingerprint(
        datasets.Dataset.from_dict({"tokens": [["a"], ["b", "c"]]}), ["tokens"])


def test_tokenizer_fingerprint_is_kept_and_follows_added_tokens(make_cfg):
    from itt.data.encoding import tokenizer_fingerprint
    from itt.models.encoder import load_encoder

    cfg = make_cfg()
    _, tok, _ = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
    first = tokenizer_fingerprint(tok)
    assert tokenizer_fingerprint(tok) == first and tok._itt_fingerprint[1] == first
    tok.add_tokens(["zzqqxx_new_token"])
    assert tokenizer_fingerprint(tok) != first
    tok.padding_side = "left" if tok.padding_side == "right" else "right"
    assert tokenizer_fingerprint(tok) not in (first,)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "json"])
def test_local_files_in_every_format(make_cfg, tmp_path, fmt):
    import pandas as pd

    frame = pd.DataFrame({"sentence": [f"text number {i}" for i in range(40)],
                          "polarity": ["pos" if i % 2 else "neg" for i in range(40)]})
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    cfg = make_cfg()
    cfg["target"]["source"] = {"kind": "local", "data_files": {"all": str(path)}}
    cfg["target"]["columns"] = {"text": ["sentence"], "label": "polarity"}
    cfg["target"]["label_map"] = {"neg": "negative", "pos": "positive"}
    data = _load(card_from_config(cfg["target"], "target"))
    assert len(data.train) + len(data.validation) + len(data.test["en"]) == 40
    assert set(data.train["label"]) == {0, 1}
    assert data.train.column_names == ["text", "label"]
