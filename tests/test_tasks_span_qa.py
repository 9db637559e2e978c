"""Span QA: document-stride windows, max-context, n-best decoding on hand-made logits,
the feature -> example mapping, and MLQA normalisation."""
from __future__ import annotations

import datasets
import numpy as np
import pytest

from itt.data.cards import card_from_config
from itt.tasks import get_task_type
from itt.tasks.span_qa import (FeatureCandidates, best_span, char_to_tokens, decode_answer,
                               max_context_windows, top_candidates, windows)


def _card(**kw):
    data = {"name": "qa_unit", "type": "span_qa", "source": {"kind": "local"},
            "metrics": ["f1", "exact_match"], "main_metric": "f1"}
    data.update(kw)
    return card_from_config(data, "target")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from itt.config import compose, to_dict
    from itt.models.tiny import build_tiny

    cfg = to_dict(compose(["model=tiny_bert"]))
    return AutoTokenizer.from_pretrained(str(build_tiny(cfg["model"], cfg["paths"]["cache_dir"])))


def test_windows_step_by_doc_stride_and_max_context():
    assert windows(10, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert windows(3, 4, 2) == [(0, 3)]
    assert windows(0, 4, 2) == [(0, 0)]
    assert windows(9, 4, 8) == [(0, 4), (4, 8), (8, 9)]     # the step never exceeds a window
    best = max_context_windows(10, windows(10, 4, 2))
    # token 2 is at the edge of window 0 (context 0 right... min(2,1)=1) and inside window 1
    # (min(0,3)=0): window 0; token 3: window 0 min(3,0)=0, window 1 min(1,2)=1 -> window 1.
    assert best.tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]


def test_char_to_tokens():
    offsets = np.array([[0, 4], [5, 10], [11, 13], [14, 20]])
    assert char_to_tokens(offsets, 5, 13) == (1, 2)
    assert char_to_tokens(offsets, 6, 8) == (1, 1)     # inside a token
    assert char_to_tokens(offsets, 21, 25) is None


def _feature(offsets, max_context, start_logits, end_logits, n_best=3):
    return FeatureCandidates(top_candidates(start_logits, n_best), top_candidates(end_logits, n_best),
                             np.array(offsets), np.array(max_context, dtype=bool))


def test_n_best_decoding_across_two_windows():
    #            0    1         2         3          4         5
    context = "Anna lives in Berlin and Paris"
    #  token:  Anna(0,4) lives(5,10) in(11,13) Berlin(14,20) and(21,24) Paris(25,30)
    # Window A holds tokens 0-3, window B tokens 2-5; layout [CLS] q [SEP] ctx... [SEP].
    off_a = [[-1, -1], [-1, -1], [-1, -1], [0, 4], [5, 10], [11, 13], [14, 20], [-1, -1]]
    max_a = [0, 0, 0, 1, 1, 1, 0, 0]           # "Berlin" has more context in window B
    off_b = [[-1, -1], [-1, -1], [-1, -1], [11, 13], [14, 20], [21, 24], [25, 30], [-1, -1]]
    max_b = [0, 0, 0, 0, 1, 1, 1, 0]
    # Window A, 3-best: starts (0, 20) (6, 9) (4, 2); ends (0, 20) (6, 9) (4, 1).
    # [CLS] (0) scores highest but is outside the context; Berlin (6) would start the best
    # pair (9 + 9) but A is not its max-context window. Left: lives..Berlin = 2 + 9 = 11.
    a = _feature(off_a, max_a, [20, 0, 0, 1, 2, 0, 9, 0], [20, 0, 0, 0, 1, 0, 9, 0])
    assert best_span([a], 30) == (0, 4, 6, 11.0)
    assert decode_answer(context, [a], 30) == "lives in Berlin"
    assert decode_answer(context, [a], 2) == "lives"        # 3 tokens > max_answer_length
    # Window B, 3-best: starts (6, 7) (4, 5) (0, 0); ends (6, 6) (4, 4) (0, 0).
    # Paris..Paris = 13 beats Berlin..Paris = 11; Paris..Berlin ends before it starts.
    b = _feature(off_b, max_b, [0, 0, 0, 0, 5, 0, 7, 0], [0, 0, 0, 0, 4, 0, 6, 0])
    assert best_span([a, b], max_answer_length=30) == (1, 6, 6, 13.0)
    assert decode_answer(context, [a, b], 30) == "Paris"
    assert decode_answer(context, [a, b], 0) == ""           # nothing valid: the empty answer


def test_top_candidates_keep_the_earlier_position_on_ties():
    assert top_candidates([1.0, 3.0, 3.0, 2.0], 3) == [(1, 3.0), (2, 3.0), (3, 2.0)]


def test_encode_maps_features_back_to_examples(tokenizer):
    impl = get_task_type("span_qa")
    card = _card(doc_stride=4, max_query_length=6, max_answer_length=8, n_best=5)
    context = "the film was good . Anna lives in Berlin . the ending was great and the plot was long ."
    ds = impl.normalise(card, datasets.Dataset.from_dict({
        "id": ["q1", "q2"], "question": ["where does Anna live", "how was the ending"],
        "context": [context, context],
        "answers": [{"text": ["Berlin"], "answer_start": [context.index("Berlin")]},
                    {"text": ["great"], "answer_start": [-1]}]}), "unit")   # start found by search
    split = impl.encode(ds, tokenizer, card, 20, None, "qa_unit/test-de")
    assert split.lang == "de" and split.n_examples == 2
    assert len(split) > 2 and set(split.example_index.tolist()) == {0, 1}
    hits = {0: 0, 1: 0}
    for f in range(len(split)):
        ids, _, (s, e) = split.item(f)
        spans, _ = split.feature_spans(f)
        ex = int(split.example_index[f])
        if s == 0:
            continue                           # answer not inside this window: [CLS]
        hits[ex] += 1
        assert context[spans[s][0]:spans[e][1]] == ["Berlin", "great"][ex]
    assert hits[0] >= 1 and hits[1] >= 1
    # Predictions per feature, perfect on the gold positions, aggregated per question.
    preds = []
    for f in range(len(split)):
        n = int(split.lengths[f])
        _, _, (s, e) = split.item(f)
        start, end = np.zeros(n), np.zeros(n)
        start[s] = end[e] = 5.0 if s else -5.0
        preds.append((top_candidates(start, 5), top_candidates(end, 5)))
    assert impl.answers(preds, split, card) == {"q1": "Berlin", "q2": "great"}
    assert impl.score(preds, split, card) == {"f1": 1.0, "exact_match": 1.0}


def test_mlqa_normalisation_is_per_language():
    impl = get_task_type("span_qa")
    gold = {"id": ["x"], "question": ["q"], "context": ["der Film"], "answers": [{"text": ["der Film"],
                                                                                  "answer_start": [0]}]}
    from itt.tasks.span_qa import QASplit

    split = QASplit(ids=np.zeros(0, np.int32), offsets=np.array([0, 2]), types=None,
                    char_spans=np.array([[4, 8], [4, 8]]), max_context=np.array([1, 1], np.int8),
                    start_positions=np.array([0]), end_positions=np.array([0]), example_index=np.array([0]),
                    example_ids=gold["id"], contexts=gold["context"], answers=[["der Film"]], lang="de")
    preds = [([(0, 1.0)], [(1, 1.0)])]     # predicts "Film"
    assert impl.score(preds, split, _card())["exact_match"] == 0.0                       # SQuAD rules
    assert impl.score(preds, split, _card(xtreme_task="mlqa"))["exact_match"] == 1.0     # German articles
