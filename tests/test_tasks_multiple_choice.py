"""Multiple choice: [B*C, L] batches, reshaping scores to [B, C], masking, labels."""
from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from torch import nn

from itt.data.cards import card_from_config
from itt.errors import DataError
from itt.tasks import get_task_type
from itt.tasks.multiple_choice import MASKED_SCORE, ChoiceCollator


def _card(**kw):
    data = {"name": "mc_unit", "type": "multiple_choice", "source": {"kind": "local"},
            "columns": {"premise": "premise", "question": "question", "choices": ["c1", "c2"], "label": "label"},
            "metrics": ["accuracy"], "main_metric": "accuracy"}
    data.update(kw)
    return card_from_config(data, "target")


def _item(n_choices: int, base: int, label: int):
    seqs = [np.arange(base + 10 * c, base + 10 * c + 2 + c, dtype=np.int32) for c in range(n_choices)]
    return seqs, None, label


def test_collator_flattens_choices_and_pads_missing_ones():
    batch = ChoiceCollator(pad_id=0)([(4, _item(2, 100, 1)), (7, _item(3, 200, 2))])
    assert batch["input_ids"].shape == (6, 4)           # B*C = 2*3 pairs, longest pair 4 tokens
    assert batch["num_choices"] == 3 and batch["index"].tolist() == [4, 7]
    assert batch["choice_mask"].tolist() == [[True, True, False], [True, True, True]]
    # Item 0's missing third choice is a copy of its first (a valid input), masked later.
    assert batch["input_ids"][2].tolist() == batch["input_ids"][0].tolist() == [100, 101, 0, 0]
    assert batch["input_ids"][4].tolist() == [210, 211, 212, 0]   # item 1, choice 1
    assert batch["labels"].tolist() == [1, 2]


class _FirstFeature(nn.Module):
    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled[:, :1]


def test_scores_reshape_to_items_by_choices_and_mask():
    impl = get_task_type("multiple_choice")
    batch = ChoiceCollator(pad_id=0)([(0, _item(2, 1, 0)), (1, _item(3, 1, 1))])
    hidden = torch.zeros(6, batch["input_ids"].size(1), 4)
    hidden[:, 0, 0] = torch.arange(6, dtype=torch.float)   # pair k scores k
    logits = impl.logits(_FirstFeature(), hidden, batch, "first")
    assert logits.tolist() == [[0.0, 1.0, MASKED_SCORE], [3.0, 4.0, 5.0]]
    assert impl.predict_batch(logits, batch) == [1, 2]
    loss = impl.loss(logits, batch)
    assert torch.isfinite(loss) and loss > 0


def test_normalise_question_map_dict_choices_and_bad_labels():
    impl = get_task_type("multiple_choice")
    card = _card(question_map={"cause": "What was the cause?"})
    ds = datasets.Dataset.from_dict({"premise": ["It rained."], "question": ["cause"], "c1": ["clouds"],
                                     "c2": ["sun"], "label": [0]})
    out = impl.normalise(card, ds, "f")
    assert out[0] == {"context": "It rained. What was the cause?", "choices": ["clouds", "sun"], "label": 0}
    listed = _card(columns={"premise": "q", "choices": "choices", "label": "answerKey"},
                   label_map={"A": 0, "B": 1, "C": 2})
    ds = datasets.Dataset.from_dict({"q": ["Where?"], "answerKey": ["C"],
                                     "choices": [{"label": ["A", "B", "C"], "text": ["x", "y", "z"]}]})
    assert impl.normalise(listed, ds, "f")[0]["label"] == 2
    bad = datasets.Dataset.from_dict({"premise": ["p", "p"], "question": ["", ""], "c1": ["a", "a"],
                                      "c2": ["b", "b"], "label": [1, 2]})
    with pytest.raises(DataError, match=r"copa\.jsonl row 1 has label 2, which is not a choice index 0\.\.1"):
        impl.normalise(_card(), bad, "copa.jsonl")


def test_zero_shot_between_choice_counts():
    impl = get_task_type("multiple_choice")
    siqa = _card(name="siqa_unit", columns={"premise": "p", "choices": ["a", "b", "c"], "label": "label"})
    assert impl.zero_shot_compatible(siqa, _card())
