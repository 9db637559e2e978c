"""The benchmark workload of the issue: a small BERT (hidden 128, 2 layers) on 4,096 real
texts of the offline suite with a long-tailed length distribution.

The texts are short snippets of the vader sets (movie reviews, product reviews, news,
tweets) mixed with a tenth of 20 Newsgroups posts (long, cut at ``max_length``), one
5-way task: which domain a text comes from. Most sequences are short and a few very long,
the distribution where how batches are formed decides the cost. Without the offline suite the
texts are generated with log-normal lengths, and the report says so.

The model is built by :func:`itt.models.tiny.build_tiny` (a WordPiece tokenizer trained on
the training texts, random BERT weights), cached like every tiny model; the config and the
cells come from the real ``conf/`` tree, so that the training path measured is the one a
cell runs.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Settings

#: The issue's model: hidden 128, 2 layers (BERT-tiny's shape: 2 heads, FFN 512).
MODEL_FULL = {"hidden_size": 128, "num_layers": 2, "num_heads": 2, "intermediate_size": 512, "vocab_size": 8000,
              "max_position_embeddings": 512, "seed": 0}
MODEL_QUICK = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "vocab_size": 600,
               "max_position_embeddings": 128, "seed": 0}


@dataclass
class Sizes:
    n_train: int
    n_val: int
    n_test: int
    max_length: int
    batch_size: int
    long_fraction: float = 0.1   # share of newsgroups posts in the mix


SIZES_FULL = Sizes(n_train=4096, n_val=256, n_test=1024, max_length=256, batch_size=32)
SIZES_QUICK = Sizes(n_train=192, n_val=48, n_test=64, max_length=64, batch_size=16)


@dataclass
class Workload:
    """Everything a contender needs; ``cfg`` is a composed itt config (plain dict)."""

    cfg: dict[str, Any]
    card: Any
    tokenizer: Any
    model_dir: Path
    tok: dict[str, Any]          # {"train", "validation", "test": {"en": ...}} TokenizedSplits
    texts: dict[str, Any]        # the normalised datasets.Dataset of each split
    source: str                  # where the texts come from, in words
    sizes: Sizes
    model_shape: dict[str, Any]

    @property
    def stage(self) -> dict[str, Any]:
        return self.cfg["stage2"]

    def encoder(self) -> Any:
        """A fresh encoder with the stored (seeded) weights: every contender starts equal."""
        from itt.models.encoder import load_encoder

        return load_encoder(self.cfg["model"], self.cfg["paths"]["cache_dir"])[0]

    def length_summary(self) -> dict[str, float]:
        lengths = self.tok["train"].lengths
        return {"median": float(np.median(lengths)), "mean": float(lengths.mean()),
                "p90": float(np.percentile(lengths, 90)), "p99": float(np.percentile(lengths, 99)),
                "max": int(lengths.max()), "truncated": int(self.tok["train"].truncated),
                "real_tokens": int(lengths.sum())}


def _assets_dir() -> Path:
    from itt.utils import REPO_ROOT

    return Path(os.environ.get("ITT_ASSETS_DIR", REPO_ROOT / "outputs" / "assets"))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


_DOMAINS = {"movie_reviews": "vader_movie.jsonl", "product_reviews": "vader_amazon.jsonl",
            "news": "vader_nyt.jsonl", "tweets": "vader_tweets.jsonl"}
_LONG_DOMAIN = ("usenet", "newsgroups20.jsonl")


def real_rows(n: int, long_fraction: float, seed: int = 0) -> tuple[list[dict[str, Any]], list[str]] | None:
    """``n`` rows from the offline suite labelled by their domain, or None without it.

    The label is where a text comes from: movie reviews, product reviews, news, tweets
    (short texts of the vader sets) or Usenet (long 20 Newsgroups posts, ``long_fraction``
    of the rows). A randomly initialised model learns it within an epoch, so accuracies
    compared after a short training mean something."""
    data = _assets_dir() / "data"
    files = dict(_DOMAINS, **{_LONG_DOMAIN[0]: _LONG_DOMAIN[1]})
    if not all((data / f).exists() for f in files.values()):
        return None
    rng = random.Random(seed)
    labels = list(files)
    n_long = int(round(n * long_fraction))
    per_short = [(n - n_long) // len(_DOMAINS) + (1 if i < (n - n_long) % len(_DOMAINS) else 0)
                 for i in range(len(_DOMAINS))]
    rows: list[dict[str, Any]] = []
    for label, (name, count) in enumerate(zip(labels, per_short + [n_long])):
        texts = [r["text"] for r in _read_jsonl(data / files[name]) if r.get("text")]
        if len(texts) < count:
            return None
        rows += [{"text": t, "label": label} for t in rng.sample(texts, count)]
    rng.shuffle(rows)
    return rows, labels


_GEN_POS = ["good", "great", "wonderful", "excellent", "lovely", "brilliant", "superb", "enjoyable"]
_GEN_NEG = ["bad", "awful", "terrible", "boring", "poor", "dreadful", "dull", "horrible"]


def generated_rows(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    """Generated stand-in: log-normal word counts (median ~22 words, long tail), filler
    words from a fixed pseudo-vocabulary and a few sentiment words that carry the label."""
    rng = np.random.default_rng(seed)
    filler = [f"w{i}" + "abcdefgh"[i % 8] * (1 + i % 3) for i in range(400)]
    rows = []
    for length in np.maximum(3, rng.lognormal(np.log(22), 0.9, size=n).astype(int)):
        label = int(rng.integers(2))
        words = list(rng.choice(filler, size=int(length)))
        cue = _GEN_POS if label else _GEN_NEG
        for pos in rng.integers(0, len(words), size=2):
            words[int(pos)] = str(rng.choice(cue))
        rows.append({"text": " ".join(words), "label": label})
    return rows, ["negative", "positive"]


#: Workload B of the accuracy-parity benchmark: sentiment of product and movie reviews.
_SENTIMENT = ("vader_movie.jsonl", "vader_amazon.jsonl")

#: Workload B's sizes: the same batch and splits as workload A, texts cut at 64 tokens (as in
#: workload A's accuracy runs; the snippets are short, few are cut).
SIZES_SENTIMENT = Sizes(n_train=4096, n_val=256, n_test=1024, max_length=64, batch_size=32, long_fraction=0.0)


def sentiment_rows(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[str]] | None:
    """``n`` review snippets of the offline suite (vader_movie and vader_amazon, in their
    proportions) labelled by sentiment, or None without them. A text's length says next to
    nothing about its label here (both labels have the same length distribution in each
    set), unlike the domain workload's."""
    data = _assets_dir() / "data"
    if not all((data / f).exists() for f in _SENTIMENT):
        return None
    labels = ["negative", "positive"]
    pool = [{"text": r["text"], "label": labels.index(r["label"])}
            for f in _SENTIMENT for r in _read_jsonl(data / f) if r.get("text") and r.get("label") in labels]
    if len(pool) < n:
        return None
    rows = random.Random(seed).sample(pool, n)
    return rows, labels


def bench_card(labels: list[str], name: str = "bench_domains",
               description: str = "domain of a text: vader sets + 20 Newsgroups (benchmark mix)") -> Any:
    from itt.data.cards import TaskCard

    return TaskCard(name=name, type="single_text_classification", source={"kind": "local"},
                    columns={"text": ["text"], "label": "label"}, labels=list(labels), languages=["en"],
                    train_language="en", eval_languages=["en"], split={"protocol": "given"},
                    metrics=["accuracy"], main_metric="accuracy", description=description)


def compose_cfg(overrides: list[str] | None = None) -> dict[str, Any]:
    """The app config as a cell gets it (conf/ defaults), with a logger that writes nothing."""
    from itt.config import compose, to_dict

    return to_dict(compose(["logger=none"] + list(overrides or [])))


def _cache_name(card: Any, split: str) -> str:
    """Where a split's tokenization is cached (the domain workload keeps its old place)."""
    return f"bench/{split}" if card.name == "bench_domains" else f"bench/{card.name}/{split}"


def build(settings: Settings, seed: int = 0, kind: str = "domains") -> Workload:
    """Build (or load from the caches) the workload for ``settings``. ``kind``: ``domains``
    (the suite's workload: a text's domain, which its length goes with) or ``sentiment``
    (workload B of the accuracy-parity benchmark: review sentiment, which it does not)."""
    import datasets

    from itt.models.encoder import load_encoder
    from itt.tasks import get_task_type

    if kind not in ("domains", "sentiment"):
        raise ValueError(f"unknown workload kind {kind!r}")
    sizes = SIZES_QUICK if settings.quick else (SIZES_SENTIMENT if kind == "sentiment" else SIZES_FULL)
    shape = dict(MODEL_QUICK if settings.quick else MODEL_FULL)
    total = sizes.n_train + sizes.n_val + sizes.n_test
    card_name, card_text = "bench_domains", "domain of a text: vader sets + 20 Newsgroups (benchmark mix)"
    if kind == "sentiment":
        got = None if settings.synthetic else sentiment_rows(total, seed)
        card_name, card_text = "bench_sentiment", "sentiment of a review snippet: vader_movie + vader_amazon"
    else:
        got = None if settings.synthetic else real_rows(total, sizes.long_fraction, seed)
    if got is not None and kind == "sentiment":
        rows, labels = got
        source = (f"offline suite: {total} review snippets of vader_movie and vader_amazon (drawn from the "
                  f"pooled sets), labelled by sentiment (2 classes)")
    elif got is not None:
        rows, labels = got
        source = (f"offline suite: {total - round(total * sizes.long_fraction)} short texts (vader_movie, "
                  f"vader_amazon, vader_nyt, vader_tweets) + {round(total * sizes.long_fraction)} newsgroups20 "
                  f"posts, labelled by domain (5 classes)")
    else:
        rows, labels = generated_rows(total, seed + (1 if kind == "sentiment" else 0))
        source = ("GENERATED text (offline suite absent or --synthetic): log-normal lengths, "
                  "2 labels carried by sentiment words")
    train_rows = rows[:sizes.n_train]
    val_rows = rows[sizes.n_train:sizes.n_train + sizes.n_val]
    test_rows = rows[sizes.n_train + sizes.n_val:]

    import torch

    # On a GPU machine the suite measures the GPU path: bf16-mixed (conf/trainer/gpu.yaml).
    cfg = compose_cfg([f"seed={seed}"] + (["trainer=gpu"] if torch.cuda.is_available() else []))
    cache = Path(cfg["paths"]["cache_dir"])
    corpus_text = "".join(json.dumps({"text": r["text"]}) + "\n" for r in train_rows)
    digest = hashlib.sha256(corpus_text.encode()).hexdigest()[:16]
    corpus = cache / "bench" / f"corpus-{digest}.jsonl"
    if not corpus.exists():
        corpus.parent.mkdir(parents=True, exist_ok=True)
        tmp = corpus.with_name(corpus.name + f".{os.getpid()}.tmp")
        tmp.write_text(corpus_text, encoding="utf-8")
        os.replace(tmp, corpus)
    shape["corpus"] = [str(corpus)]
    cfg["model"] = {"name": "bench_bert", "pretrained": None, "architecture": "bert", "pretraining": "none",
                    "languages": ["en"], "pooling": "first", "trust_remote_code": False, "revision": None,
                    "tiny": shape}
    stage = cfg["stage2"]
    stage.update(batch_size=sizes.batch_size, max_length=sizes.max_length, eval_batch_size=128,
                 lr=1.0e-3, epochs=1, max_train_examples=None)
    card = bench_card(labels, card_name, card_text)
    encoder, tokenizer, model_path = load_encoder(cfg["model"], cfg["paths"]["cache_dir"])
    del encoder
    impl = get_task_type(card.type)
    texts, tok = {}, {}
    for name, part in (("train", train_rows), ("validation", val_rows), ("test", test_rows)):
        ds = datasets.Dataset.from_dict({"text": [r["text"] for r in part], "label": [r["label"] for r in part]})
        texts[name] = ds
        tok[name] = impl.encode(ds, tokenizer, card, sizes.max_length, cfg["paths"]["cache_dir"],
                                _cache_name(card, name))
    tok["test"] = {"en": tok["test"]}
    return Workload(cfg=cfg, card=card, tokenizer=tokenizer, model_dir=Path(model_path), tok=tok, texts=texts,
                    source=source, sizes=sizes, model_shape={k: v for k, v in shape.items() if k != "corpus"})


def with_max_length(wl: Workload, max_length: int) -> Workload:
    """The same texts, model and settings, tokenized to another ``max_length``."""
    import copy

    from itt.tasks import get_task_type

    impl = get_task_type(wl.card.type)
    cfg = copy.deepcopy(wl.cfg)
    cfg["stage2"]["max_length"] = int(max_length)
    tok: dict[str, Any] = {}
    for name in ("train", "validation", "test"):
        tok[name] = impl.encode(wl.texts[name], wl.tokenizer, wl.card, int(max_length), cfg["paths"]["cache_dir"],
                                _cache_name(wl.card, name))
    tok["test"] = {"en": tok["test"]}
    sizes = copy.copy(wl.sizes)
    sizes.max_length = int(max_length)
    return Workload(cfg=cfg, card=wl.card, tokenizer=wl.tokenizer, model_dir=wl.model_dir, tok=tok, texts=wl.texts,
                    source=wl.source, sizes=sizes, model_shape=wl.model_shape)
