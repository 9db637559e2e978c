"""Small generated datasets for the smoke cell and the tests.

They are not real data: sentences are assembled from templates so that the label is
learnable from a few words (with a little label noise), which lets a tiny model beat the
majority baseline within seconds on a CPU. The English/German set is parallel, word by
word, so a multilingual encoder can transfer zero-shot.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from itt.utils import atomic_write_text

SIZES = {"smoke_movies": 2000, "smoke_products": 400, "smoke_xling": 400, "smoke_pairs": 600,
         "smoke_sts": 600}

_POS = ["good", "great", "wonderful", "excellent", "lovely", "brilliant", "superb", "enjoyable"]
_NEG = ["bad", "awful", "terrible", "boring", "poor", "dreadful", "dull", "horrible"]
_INTENS = ["very", "really", "quite", "truly", "rather", "so"]
_MOVIE = ["film", "movie", "story", "plot", "acting", "ending", "script", "cast"]
_PRODUCT = ["phone", "battery", "screen", "charger", "blender", "kettle", "camera", "cable"]
_FILLER = ["i think", "honestly", "overall", "in the end", "to be fair", "as expected"]

# English -> German, word by word (for the parallel cross-lingual set).
_DE = {
    "good": "gut", "great": "toll", "wonderful": "wunderbar", "excellent": "hervorragend",
    "lovely": "schön", "brilliant": "brillant", "superb": "großartig", "enjoyable": "unterhaltsam",
    "bad": "schlecht", "awful": "furchtbar", "terrible": "schrecklich", "boring": "langweilig",
    "poor": "mies", "dreadful": "grässlich", "dull": "öde", "horrible": "grauenhaft",
    "very": "sehr", "really": "wirklich", "quite": "ziemlich", "truly": "echt", "rather": "eher",
    "so": "so", "film": "Film", "movie": "Kinofilm", "story": "Geschichte", "plot": "Handlung",
    "acting": "Schauspiel", "ending": "Ende", "script": "Drehbuch", "cast": "Besetzung",
    "i think": "ich finde", "honestly": "ehrlich gesagt", "overall": "insgesamt",
    "in the end": "am Ende", "to be fair": "fairerweise", "as expected": "wie erwartet",
    "the": "der", "was": "war", "and": "und", "but": "aber", "the rest": "der Rest",
}


def _sentiment_parts(rng: random.Random, nouns: list[str], label: int) -> list[tuple[str, str]]:
    main = rng.choice(_POS if label else _NEG)
    other = rng.choice(_POS if rng.random() < 0.75 else _NEG) if label else rng.choice(
        _NEG if rng.random() < 0.75 else _POS)
    return [("filler", rng.choice(_FILLER)), ("the", "the"), ("noun", rng.choice(nouns)),
            ("was", "was"), ("int", rng.choice(_INTENS)), ("adj", main),
            ("conj", "and" if (other in _POS) == bool(label) else "but"), ("rest", "the rest"),
            ("was", "was"), ("adj2", other)]


def _render(parts: list[tuple[str, str]], lang: str) -> str:
    words = [w if lang == "en" else _DE[w] for _, w in parts]
    return " ".join(words)


def _sentiment_rows(name: str, n: int, nouns: list[str], seed: int, noise: float = 0.05,
                    langs: tuple[str, ...] = ("en",)) -> dict[str, list[dict]]:
    rng = random.Random(f"{name}:{seed}")
    rows: dict[str, list[dict]] = {lang: [] for lang in langs}
    for _ in range(n):
        label = rng.randint(0, 1)
        parts = _sentiment_parts(rng, nouns, label)
        shown = 1 - label if rng.random() < noise else label
        for lang in langs:
            rows[lang].append({"text": _render(parts, lang),
                               "label": ["negative", "positive"][shown]})
    return rows


def _pair_rows(name: str, n: int, seed: int, regression: bool) -> list[dict]:
    """Pairs of review sentences. Regression: 0-5 by the share of positive adjectives in the
    pair (plus a little noise), a signal a tiny model learns in seconds; classification:
    "same" when both sentences have the same polarity and subject."""
    rng = random.Random(f"{name}:{seed}")
    nouns = _MOVIE + _PRODUCT
    out = []
    for _ in range(n):
        la, lb = rng.randint(0, 1), rng.randint(0, 1)
        na = rng.choice(nouns)
        nb = na if rng.random() < 0.5 else rng.choice([x for x in nouns if x != na])
        pa = _sentiment_parts(rng, [na], la)
        pb = _sentiment_parts(rng, [nb], lb)
        a, b = _render(pa, "en"), _render(pb, "en")
        if regression:
            adjs = [w for k, w in pa + pb if k in ("adj", "adj2")]
            score = 5.0 * sum(w in _POS for w in adjs) / len(adjs)
            score = min(5.0, max(0.0, score + rng.uniform(-0.4, 0.4)))
            out.append({"text_a": a, "text_b": b, "label": round(score, 3)})
        else:
            same = la == lb and na == nb
            out.append({"text_a": a, "text_b": b, "label": "same" if same else "different"})
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def generate(out_dir: str | Path, seed: int = 0) -> list[Path]:
    """Write every smoke dataset into ``out_dir`` (idempotent: same seed, same bytes)."""
    out_dir = Path(out_dir)
    written = []
    for name, nouns in (("smoke_movies", _MOVIE), ("smoke_products", _PRODUCT)):
        rows = _sentiment_rows(name, SIZES[name], nouns, seed)["en"]
        written.append(out_dir / f"{name}.jsonl")
        _write_jsonl(written[-1], rows)
    for lang, rows in _sentiment_rows("smoke_xling", SIZES["smoke_xling"], _MOVIE, seed,
                                      langs=("en", "de")).items():
        written.append(out_dir / f"smoke_xling-{lang}.jsonl")
        _write_jsonl(written[-1], rows)
    written.append(out_dir / "smoke_pairs.jsonl")
    _write_jsonl(written[-1], _pair_rows("smoke_pairs", SIZES["smoke_pairs"], seed, regression=False))
    written.append(out_dir / "smoke_sts.jsonl")
    _write_jsonl(written[-1], _pair_rows("smoke_sts", SIZES["smoke_sts"], seed, regression=True))
    return written


def corpus_lines(seed: int = 0) -> list[str]:
    """Text for training the tiny models' tokenizers (English and German smoke text)."""
    lines = []
    for name, nouns in (("smoke_movies", _MOVIE), ("smoke_products", _PRODUCT)):
        lines += [r["text"] for r in _sentiment_rows(name, 500, nouns, seed)["en"]]
    for rows in _sentiment_rows("smoke_xling", 500, _MOVIE, seed, langs=("en", "de")).values():
        lines += [r["text"] for r in rows]
    for r in _pair_rows("smoke_pairs", 200, seed, regression=False):
        lines += [r["text_a"], r["text_b"]]
    return lines
