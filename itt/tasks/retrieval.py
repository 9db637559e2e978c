"""Representation-based retrieval (Tatoeba, LAReQA, Mewsli-X; BUCC for XTREME v1).

No target training (``trainable = False``): every query and candidate text is embedded as
the mean of one encoder layer's hidden states over its real tokens (card field
``retrieval_layer``: an index into the hidden states, 0 = embeddings, negative from the
top, or ``middle`` = ``n_layers // 2 + 1``, XTREME's layer 7 for 12-layer encoders; the
default), candidates are ranked by cosine similarity, and ties keep the candidates' input
order, exactly as :func:`itt.metrics.xtreme_metrics.rank_by_score` does. With an intermediate
task the stage-1 encoder is what gets scored, which is the ITT effect on retrieval.

Normal form: one row per text, ``role`` (query | candidate), ``id``, ``text`` and, for
queries, ``relevant`` (candidate ids). Sources come in two shapes:

* pairs (Tatoeba, BUCC gold pairs): card ``columns.query`` and ``columns.candidate`` name
  two text columns of one row; the row's candidate is its query's only relevant one; ids
  are the row index (Tatoeba's files hold indices) or ``columns.query_id`` /
  ``columns.candidate_id``;
* rows with ``role``/``id``/``text``/``relevant`` columns (LAReQA's multilingual pool,
  Mewsli-X's entity pool): a shared candidate file can be listed in every language's
  ``data_files``.

Metrics by name in the card: ``accuracy`` (top-1 candidate relevant; Tatoeba),
``map@20`` (LAReQA, Mewsli-X) and ``f1``/``precision``/``recall`` over mined pairs
(BUCC: each query's top candidate, kept when its cosine is at least the card's
``bucc_threshold``, all when it is unset).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from itt.data.batching import Collator
from itt.data.encoding import RaggedSplit, encode_cached, encode_truncating, quiet_transformers, ragged_arrays
from itt.errors import ConfigError, DataError
from itt.tasks.base import TaskType, column, require, write_local, write_xtreme, xtreme_task

log = logging.getLogger(__name__)

MAP_K = 20
ROLES = ("query", "candidate")


# --------------------------------------------------------------------------------------
# Ranking (pure functions)
# --------------------------------------------------------------------------------------

def cosine_scores(queries: np.ndarray, candidates: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Cosine similarity of every query with every candidate, ``[n_queries, n_candidates]``."""
    q = torch.nn.functional.normalize(torch.as_tensor(np.asarray(queries, dtype=np.float32)), dim=-1)
    c = torch.nn.functional.normalize(torch.as_tensor(np.asarray(candidates, dtype=np.float32)), dim=-1)
    return torch.cat([q[i:i + chunk] @ c.T for i in range(0, max(len(q), 1), chunk)]).numpy() \
        if len(q) else np.zeros((0, len(c)), dtype=np.float32)


def top_k_stable(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first; equal scores keep input order.

    The same order as sorting all candidates with :func:`itt.metrics.xtreme_metrics.rank_by_score`
    and keeping the first ``k``, without sorting a million-candidate pool."""
    scores = np.asarray(scores)
    n = len(scores)
    if n <= k:
        return np.argsort(-scores, kind="stable")
    kth = np.partition(scores, n - k)[n - k]
    cand = np.nonzero(scores >= kth)[0]
    return cand[np.argsort(-scores[cand], kind="stable")][:k]


@dataclass
class Rankings:
    """Per query: candidate ids best first (top ``k``) and the top-1 cosine."""

    query_ids: list[str]
    ranked: list[list[str]]
    top_score: list[float]
    relevant: list[list[str]]


def rank(query_emb: np.ndarray, cand_emb: np.ndarray, query_ids: Sequence[str], cand_ids: Sequence[str],
         relevant: Sequence[Sequence[str]], k: int = MAP_K, max_cells: int = 50_000_000) -> Rankings:
    """Top-``k`` candidates of every query. Queries are scored in chunks of at most
    ``max_cells`` similarities, so a million-entity pool (Mewsli-X) never needs the whole
    query x candidate matrix in memory."""
    n_cand = max(len(cand_emb), 1)
    step = max(1, max_cells // n_cand)
    ranked, top = [], []
    for start in range(0, len(query_emb), step):
        for row in cosine_scores(query_emb[start:start + step], cand_emb):
            idx = top_k_stable(row, k)
            ranked.append([cand_ids[i] for i in idx])
            top.append(float(row[idx[0]]) if len(idx) else float("-inf"))
    return Rankings(list(query_ids), ranked, top, [list(r) for r in relevant])


def mined_pairs(r: Rankings, threshold: float | None) -> list[tuple[str, str]]:
    """BUCC-style mining: each query with its best candidate, above the threshold."""
    return [(q, ids[0]) for q, ids, s in zip(r.query_ids, r.ranked, r.top_score)
            if ids and (threshold is None or s >= threshold)]


def retrieval_metrics(r: Rankings, metrics: Sequence[str], threshold: float | None = None) -> dict[str, float]:
    from itt.metrics.xtreme_metrics import bucc_f1, map_at_k

    out: dict[str, float] = {}
    if "accuracy" in metrics:
        out["accuracy"] = float(np.mean([bool(ids) and ids[0] in set(rel) for ids, rel in zip(r.ranked, r.relevant)]))
    if f"map@{MAP_K}" in metrics:
        out[f"map@{MAP_K}"] = map_at_k(r.relevant, r.ranked, MAP_K)
    if {"f1", "precision", "recall"} & set(metrics):
        gold = [(q, c) for q, rel in zip(r.query_ids, r.relevant) for c in rel]
        out.update(bucc_f1(gold, mined_pairs(r, threshold)))
    return out


# --------------------------------------------------------------------------------------
# Encoded split and model pieces
# --------------------------------------------------------------------------------------

@dataclass
class TextSplit(RaggedSplit):
    """Token ids of every query and candidate text (items), with the retrieval structure."""

    is_query: np.ndarray                 # bool per row
    row_ids: list[str] = field(default_factory=list)
    relevant: list[list[str]] = field(default_factory=list)   # per query row, in row order

    @property
    def n_examples(self) -> int:
        """The number of queries (what a retrieval score averages over)."""
        return int(self.is_query.sum())

    def target(self, i: int) -> int:
        return 0


class RetrievalHead(nn.Module):
    """No parameters: it only remembers which hidden layer is pooled."""

    def __init__(self, layer: int | str = "middle") -> None:
        super().__init__()
        self.layer = layer

    def resolve(self, n_layers: int) -> int:
        """Index into ``hidden_states`` (length ``n_layers + 1``)."""
        if self.layer in ("middle", None):
            return n_layers // 2 + 1 if n_layers > 1 else n_layers
        if self.layer == "last":
            return n_layers
        idx = int(self.layer)
        idx = idx if idx >= 0 else n_layers + 1 + idx
        if not 0 <= idx <= n_layers:
            raise ConfigError(f"retrieval_layer={self.layer} but the encoder has {n_layers} layers "
                              f"(valid: 0..{n_layers}, negative from the top, middle or last).")
        return idx


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class Retrieval(TaskType):
    name = "retrieval"
    trainable = False
    collator_class = Collator
    #: ITTModule passes these to the encoder and hands the whole output to :meth:`logits`.
    encoder_kwargs = {"output_hidden_states": True}
    wants_encoder_output = True

    def __init__(self) -> None:
        self._memo: tuple[Any, Any, Rankings] | None = None

    # ---------------------------------------------------------------- data
    def normalise(self, card: Any, ds: Any, where: str) -> Any:
        import datasets

        q_col, c_col = column(card, "query"), column(card, "candidate")
        out: dict[str, list] = {"role": [], "id": [], "text": [], "relevant": []}

        def add(role: str, rid: str, text: str, relevant: list[str]) -> None:
            for key, value in (("role", role), ("id", rid), ("text", text), ("relevant", relevant)):
                out[key].append(value)

        if q_col and c_col:
            qid_col, cid_col = column(card, "query_id"), column(card, "candidate_id")
            require(card, ds, [q_col, c_col] + [c for c in (qid_col, cid_col) if c], where)
            qids = [str(x) for x in ds[qid_col]] if qid_col else [str(i) for i in range(len(ds))]
            cids = [str(x) for x in ds[cid_col]] if cid_col else [str(i) for i in range(len(ds))]
            seen: set[str] = set()
            for i, (q, c, qid, cid) in enumerate(zip(ds[q_col], ds[c_col], qids, cids)):
                if q is None or c is None:
                    raise DataError(f"Task '{card.name}': {where} row {i} has an empty query or candidate.")
                add("query", qid, str(q), [cid])
                if cid not in seen:
                    seen.add(cid)
                    add("candidate", cid, str(c), [])
        else:
            require(card, ds, ["role", "id", "text"], where)
            rel = ds["relevant"] if "relevant" in ds.column_names else [None] * len(ds)
            for i, (role, rid, text, r) in enumerate(zip(ds["role"], ds["id"], ds["text"], rel)):
                if role not in ROLES:
                    raise DataError(f"Task '{card.name}': {where} row {i} has role {role!r}; expected "
                                    f"'query' or 'candidate'.")
                r = [] if r is None else ([r] if isinstance(r, (str, int)) else list(r))
                if role == "query" and not r:
                    raise DataError(f"Task '{card.name}': {where} row {i} is a query with no relevant "
                                    f"candidate.")
                if text is None or rid is None:
                    raise DataError(f"Task '{card.name}': {where} row {i} has no id or no text.")
                add(role, str(rid), str(text), [str(x) for x in r] if role == "query" else [])
        features = datasets.Features({"role": datasets.Value("string"), "id": datasets.Value("string"),
                                      "text": datasets.Value("string"),
                                      "relevant": datasets.Sequence(datasets.Value("string"))})
        return datasets.Dataset.from_dict(out, features=features)

    def encode(self, ds: Any, tokenizer: Any, card: Any, max_length: int, cache_dir: str | Path | None,
               name: str) -> TextSplit:
        texts = list(ds["text"])

        def build() -> dict[str, np.ndarray]:
            with quiet_transformers():
                ids, types, long = encode_truncating(tokenizer, texts, None, max_length)
            return ragged_arrays(ids, types, len(long))

        a = encode_cached("retrieval", ds, ["text"], tokenizer, max_length, cache_dir, name, build)
        roles = list(ds["role"])
        is_query = np.array([r == "query" for r in roles], dtype=bool)
        relevant = [list(r) for r, q in zip(ds["relevant"], is_query) if q]
        return TextSplit(**TextSplit.ragged(a), is_query=is_query, row_ids=list(ds["id"]), relevant=relevant)

    # ---------------------------------------------------------------- model
    def head(self, hidden: int, card: Any, dropout: float) -> nn.Module:
        return RetrievalHead((card.extra or {}).get("retrieval_layer", "middle"))

    def logits(self, head: nn.Module, hidden: Any, batch: dict[str, torch.Tensor], pooling: str) -> torch.Tensor:
        states = getattr(hidden, "hidden_states", None)
        if states is None:
            raise RuntimeError("the encoder returned no hidden_states; retrieval needs output_hidden_states")
        layer = head.resolve(len(states) - 1)
        return mean_pool(states[layer].float(), batch["attention_mask"])

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise ConfigError("retrieval is scored from the encoder's representations and has no training loss.")

    def predict_batch(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        return list(logits.float().cpu().numpy())

    # ---------------------------------------------------------------- scoring
    def rankings(self, preds: list[Any], split: TextSplit) -> Rankings:
        if self._memo is not None and self._memo[0] is preds and self._memo[1] is split:
            return self._memo[2]
        if not len(preds):
            raise DataError("retrieval: no texts to rank")
        emb = np.stack([np.asarray(p, dtype=np.float32) for p in preds])
        q_rows = np.nonzero(split.is_query)[0]
        c_rows = np.nonzero(~split.is_query)[0]
        if not len(q_rows) or not len(c_rows):
            raise DataError(f"retrieval: a test split needs queries and candidates; it has {len(q_rows)} "
                            f"queries and {len(c_rows)} candidates")
        cand_ids = [split.row_ids[i] for i in c_rows]
        known = set(cand_ids)
        missing = sum(1 for rel in split.relevant for c in rel if c not in known)
        if missing:
            log.warning("retrieval: %d relevant ids are not in the candidate pool", missing)
        r = rank(emb[q_rows], emb[c_rows], [split.row_ids[i] for i in q_rows], cand_ids, split.relevant, MAP_K)
        self._memo = (preds, split, r)
        return r

    @staticmethod
    def threshold(card: Any) -> float | None:
        value = (card.extra or {}).get("bucc_threshold")
        return None if value is None else float(value)

    def score(self, preds: list[Any], split: Any, card: Any) -> dict[str, float]:
        return retrieval_metrics(self.rankings(preds, split), card.metrics, self.threshold(card))

    def export(self, preds: list[Any], split: Any, card: Any, lang: str, out_dir: Path) -> None:
        import json

        from itt.metrics.xtreme_tasks import FORMAT_INDEX_LINES, FORMAT_PAIR_LINES, TASKS

        r = self.rankings(preds, split)
        task = xtreme_task(card)
        if task is None:
            write_local(out_dir, lang, "json", json.dumps(dict(zip(r.query_ids, r.ranked)), ensure_ascii=False) + "\n")
            return
        fmt = TASKS[task].prediction_format
        if fmt == FORMAT_INDEX_LINES:
            write_xtreme(out_dir, task, lang, [ids[0] for ids in r.ranked], [rel[0] for rel in r.relevant])
        elif fmt == FORMAT_PAIR_LINES:
            write_xtreme(out_dir, task, lang, mined_pairs(r, self.threshold(card)),
                         [(q, c) for q, rel in zip(r.query_ids, r.relevant) for c in rel])
        else:
            write_xtreme(out_dir, task, lang, dict(zip(r.query_ids, r.ranked)), dict(zip(r.query_ids, r.relevant)))
