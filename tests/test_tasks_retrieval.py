"""Retrieval: cosine ranking with the scorer's tie rule, metrics, layers, row formats."""
from __future__ import annotations

import datasets
import numpy as np
import pytest

from itt.data.cards import card_from_config
from itt.errors import ConfigError, DataError
from itt.metrics.xtreme_metrics import rank_by_score
from itt.tasks import get_task_type
from itt.tasks.retrieval import RetrievalHead, cosine_scores, rank, retrieval_metrics, top_k_stable


def test_cosine_ranking_breaks_ties_by_input_order_like_the_scorer():
    queries = np.array([[1.0, 0.0], [0.0, 2.0]])
    # c0 and c2 point the same way (scaled): equal cosine, so c0 ranks first; c1 is orthogonal.
    cands = np.array([[2.0, 0.0], [0.0, 1.0], [5.0, 0.0], [1.0, 1.0]])
    r = rank(queries, cands, ["q0", "q1"], ["c0", "c1", "c2", "c3"], [["c2"], ["c1"]], k=3)
    assert r.ranked == [["c0", "c2", "c3"], ["c1", "c3", "c0"]]
    scores = cosine_scores(queries, cands)
    for row, ranked in zip(scores, r.ranked):
        assert rank_by_score([(f"c{i}", float(s)) for i, s in enumerate(row)])[:3] == ranked
    assert r.top_score == pytest.approx([1.0, 1.0])
    chunked = rank(queries, cands, ["q0", "q1"], ["c0", "c1", "c2", "c3"], [["c2"], ["c1"]], k=3, max_cells=4)
    assert chunked.ranked == r.ranked      # one query per chunk: same rankings


def test_top_k_stable_equals_a_full_stable_sort_with_many_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=500).astype(np.float32)   # heavy ties
    full = rank_by_score([(str(i), float(s)) for i, s in enumerate(scores)])
    assert [str(i) for i in top_k_stable(scores, 20)] == full[:20]
    assert [str(i) for i in top_k_stable(scores[:7], 20)] == rank_by_score(
        [(str(i), float(s)) for i, s in enumerate(scores[:7])])


def test_metrics_accuracy_map_and_mined_pairs():
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    c = np.array([[1.0, 0.0], [0.0, 1.0]])
    r = rank(q, c, ["a", "b", "c"], ["x", "y"], [["x"], ["x"], ["x", "y"]])
    m = retrieval_metrics(r, ["accuracy", "map@20", "f1", "precision", "recall"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    # AP: a = 1; b: x at rank 2 -> 1/2; c: x, y tie -> x first: (1 + 1) / 2 = 1.
    assert m["map@20"] == pytest.approx((1 + 0.5 + 1) / 3)
    # Mined: (a,x) (b,y) (c,x); gold: (a,x) (b,x) (c,x) (c,y) -> 2 right of 3 mined, of 4 gold.
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(0.5)
    strict = retrieval_metrics(r, ["f1", "precision"], threshold=0.99)   # (c,x) has cosine 0.707
    assert strict["precision"] == pytest.approx(1 / 2)


def test_layer_choice():
    assert RetrievalHead("middle").resolve(12) == 7       # XTREME's layer for 12-layer encoders
    assert RetrievalHead("middle").resolve(2) == 2
    assert RetrievalHead(-1).resolve(12) == 12 and RetrievalHead(0).resolve(12) == 0
    assert RetrievalHead("last").resolve(24) == 24
    with pytest.raises(ConfigError, match="retrieval_layer=13"):
        RetrievalHead(13).resolve(12)


def test_row_formats_and_bad_rows():
    impl = get_task_type("retrieval")
    assert impl.trainable is False and impl.encoder_kwargs == {"output_hidden_states": True}
    pairs = card_from_config({"name": "t", "type": "retrieval", "source": {"kind": "local"},
                              "columns": {"query": "s", "candidate": "t"}, "metrics": ["accuracy"]}, "target")
    out = impl.normalise(pairs, datasets.Dataset.from_dict({"s": ["a", "b"], "t": ["A", "B"]}), "f")
    assert out["role"] == ["query", "candidate", "query", "candidate"]
    assert out["id"] == ["0", "0", "1", "1"] and out["relevant"] == [["0"], [], ["1"], []]
    rows = card_from_config({"name": "r", "type": "retrieval", "source": {"kind": "local"},
                             "metrics": ["map@20"]}, "target")
    bad = datasets.Dataset.from_dict({"role": ["query"], "id": ["q"], "text": ["x"], "relevant": [[]]})
    with pytest.raises(DataError, match="pool.jsonl row 0 is a query with no relevant candidate"):
        impl.normalise(rows, bad, "pool.jsonl")
    with pytest.raises(ConfigError, match="no training loss"):
        impl.loss(None, {})
