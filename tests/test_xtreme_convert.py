"""XTREME-R retrieval converter: Mewsli-X and LAReQA (XQuAD-R) source files -> retrieval rows.

Fixtures are written in the layouts XTREME-R's ``scripts/download_data.sh`` (google-research/
xtreme, commit 838c13b69daafb9328785d16caae2711e4012123) leaves behind: ``download/mewslix/``
with ``candidate_set_entities.jsonl``, ``wikinews_mentions/<split>-<lang>.jsonl`` and
``wikinews_labels/<split>-<lang>.json`` as its ``utils_preprocess.py`` (``mewslix_preprocess``)
shards them, test gold blanked; the official scorer's label files
(``labels/mewslix/test-<lang>.json``, as in its ``mock_test_data``); ``download/lareqa/`` with
the unpacked lareqa archive (``xquad-r/<lang>.json`` beside ``mlqa-r/``). The release layout of
``get-mewsli-x.sh`` (``wikinews_mentions-<split>.jsonl``, gold in place) is covered too. The
converted files are then read through the real task cards and scored by the retrieval type.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from itt.data import xtreme_convert as xc
from itt.errors import DataError


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --------------------------------------------------------------------------------------
# Mewsli-X fixtures (schema of google-research mel/mewsli_x and XTREME-R utils_mewslix.py)
# --------------------------------------------------------------------------------------

def _entity(qid: str, title: str, description: str, spans: list[tuple[int, int]], lang: str = "en") -> dict:
    return {"entity_id": qid, "title": title, "description": description,
            "sentence_spans": [{"start": a, "end": b} for a, b in spans],
            "description_language": lang, "description_url": f"https://{lang}.wikipedia.org/wiki/{title}"}


def _doc(doc_id: str, lang: str, text: str, mentions: list[tuple[str, str, str]], occurrence: int = 0) -> dict:
    """An article; mentions are (example id, surface, gold QID), located at the first occurrence
    of the surface after ``occurrence`` characters. Sentences end at '. ' or the blank line."""
    spans, start = [], 0
    for i, ch in enumerate(text):
        if text[i:i + 2] in (". ", ".\n") or text[i:i + 2] == "\n\n" or i == len(text) - 1:
            end = i + 1
            if text[start:end].strip("\n "):
                spans.append({"start": start, "end": end})
            start = i + 1
            while start < len(text) and text[start] in " \n":
                start += 1
    ms = []
    for ex_id, surface, gold in mentions:
        pos = text.index(surface, occurrence)
        ms.append({"example_id": ex_id, "mention_span": {"start": pos, "end": pos + len(surface), "text": surface},
                   "entity_id": gold, "metadata": {"bin_name": "bin04_1000-inf"}})
    return {"context": {"document_title": text.split("\n")[0], "document_url": f"https://{lang}.wikinews.org/x",
                        "document_id": doc_id, "language": lang, "text": text, "sentence_spans": spans},
            "mentions": ms}


HELSINKI = "Helsinki is the capital of Finland. It lies on the Gulf of Finland."
ENTITIES = [
    _entity("Q1757", "Helsinki", HELSINKI, [(0, 35), (36, len(HELSINKI))]),
    _entity("Q33", "Suomi", "Suomi on valtio\nPohjois-Euroopassa.", [(0, 35)], lang="fi"),
    _entity("Q5", "Mensch", "Der Mensch ist ein Lebewesen.", [], lang="de"),
    _entity("Q7", "Nothing", "", []),
]
EN_TEXT = "Strike in Helsinki\n\nIn Helsinki, the {union} struck. Finland was hit hard."
DE_TEXT = "Streik in Helsinki\n\nDer Streik in Helsinki traf Finnland."
FR_TEXT = "Grève à Helsinki\n\nLa grève a touché Helsinki."


def _release_docs() -> dict[str, list[dict]]:
    return {"test": [
        _doc("en-1", "en", EN_TEXT, [("m-en-1", "Helsinki", "Q1757"), ("m-en-2", "Finland", "Q33")], occurrence=20),
        _doc("de-1", "de", DE_TEXT, [("m-de-1", "Helsinki", "Q1757")], occurrence=20),
        _doc("fr-1", "fr", FR_TEXT, [("m-fr-1", "Helsinki", "Q1757")], occurrence=18),
    ], "dev": [_doc("en-2", "en", EN_TEXT, [("m-en-dev", "Finland", "Q33")], occurrence=20)]}


def _mewslix_source(root: Path) -> Path:
    """The release layout of get-mewsli-x.sh: one mentions file per split, gold in place."""
    src = root / "download" / "mewslix"
    _jsonl(src / "candidate_set_entities.jsonl", ENTITIES)
    for split, docs in _release_docs().items():
        _jsonl(src / f"wikinews_mentions-{split}.jsonl", docs)
    return src


MEWSLIX_LANGUAGES = ["ar", "de", "en", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk"]


def _download_data_layout(root: Path) -> Path:
    """What download_data.sh's download_mewslix leaves: utils_preprocess.py's mewslix_preprocess
    shards each split's articles into wikinews_mentions/<split>-<lang>.jsonl (one json.dumps line
    per article) and wikinews_labels/<split>-<lang>.json ({example_id: [entity_id]}) for the 11
    languages, after blanking every test entity_id (so the test labels are [""] too), and the
    combined files are deleted. (The fr article of the release fixture is dropped: only the 11
    languages are written.)"""
    src = root / "download" / "mewslix"
    _jsonl(src / "candidate_set_entities.jsonl", ENTITIES)
    for split, docs in _release_docs().items():
        for lang in MEWSLIX_LANGUAGES:
            lines, labels = [], {}
            for doc in docs:
                if doc["context"]["language"] != lang:
                    continue
                doc = json.loads(json.dumps(doc))
                for m in doc["mentions"]:
                    if split == "test":
                        m["entity_id"] = ""
                    labels[m["example_id"]] = [m["entity_id"]]
                lines.append(json.dumps(doc) + "\n")
            path = src / "wikinews_mentions" / f"{split}-{lang}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(lines), encoding="utf-8")
            (src / "wikinews_labels").mkdir(exist_ok=True)
            (src / "wikinews_labels" / f"{split}-{lang}.json").write_text(json.dumps(labels), encoding="utf-8")
    return src


def _scorer_labels(root: Path, gold: dict[str, dict[str, str]]) -> Path:
    """The official scorer's label folder: labels/mewslix/test-<lang>.json, {id: [QID]}."""
    labels = root / "labels"
    (labels / "mewslix").mkdir(parents=True, exist_ok=True)
    for lang in MEWSLIX_LANGUAGES:
        (labels / "mewslix" / f"test-{lang}.json").write_text(
            json.dumps({k: [v] for k, v in gold.get(lang, {}).items()}), encoding="utf-8")
    return labels


TEST_GOLD = {"en": {"m-en-1": "Q1757", "m-en-2": "Q33"}, "de": {"m-de-1": "Q1757"}}


def test_mewslix_rows_texts_ids_and_languages(tmp_path):
    src, out = _mewslix_source(tmp_path), tmp_path / "out"
    summary = xc.convert_mewslix(src, out, quiet=True)
    assert sorted(p.name for p in out.iterdir()) == ["candidates.jsonl", "test-de.jsonl", "test-en.jsonl"]

    pool = _read(out / "candidates.jsonl")
    assert [r["id"] for r in pool] == ["Q1757", "Q33", "Q5", "Q7"]
    assert {r["role"] for r in pool} == {"candidate"} and all(r["relevant"] == [] for r in pool)
    assert [r["language"] for r in pool] == ["en", "fi", "de", "en"]
    assert pool[0]["text"] == HELSINKI                                   # the two sentences, joined
    assert pool[1]["text"] == "Suomi on valtio Pohjois-Euroopassa."      # line break -> space
    assert pool[2]["text"] == "Der Mensch ist ein Lebewesen."            # no spans: the description
    assert pool[3]["text"] == "Nothing"                                  # empty description: the title

    en = _read(out / "test-en.jsonl")
    assert [r["id"] for r in en] == ["m-en-1", "m-en-2"]
    assert [r["relevant"] for r in en] == [["Q1757"], ["Q33"]]
    assert {r["role"] for r in en} == {"query"} and {r["language"] for r in en} == {"en"}
    # One sentence of context, the mention marked and repeated in front, braces escaped.
    assert en[0]["text"] == "Helsinki: In { Helsinki } , the (union) struck."
    assert en[1]["text"] == "Finland: { Finland } was hit hard."
    de = _read(out / "test-de.jsonl")
    assert de == [{"role": "query", "id": "m-de-1", "text": "Helsinki: Der Streik in { Helsinki } traf Finnland.",
                   "relevant": ["Q1757"], "language": "de"}]

    assert summary.files == {"candidates.jsonl": (4, "written"), "test-de.jsonl": (1, "written"),
                             "test-en.jsonl": (2, "written")}
    notes = " | ".join(summary.notes)
    assert "mentions in other languages skipped: fr 1" in notes
    assert "no mentions in ar, es, fa, ja, pl, ro, ta, tr, uk" in notes
    assert "1 use the whole description, 1 (empty description) the title" in notes

    # Idempotent: same bytes, nothing rewritten.
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    again = xc.convert_mewslix(src, out, quiet=True)
    assert set(again.files.values()) == {(4, "unchanged"), (1, "unchanged"), (2, "unchanged")}
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before

    # The dev split writes dev-<lang>.jsonl next to them.
    dev = xc.convert_mewslix(src, out, ["en"], split="dev", quiet=True)
    assert dev.files["dev-en.jsonl"] == (1, "written")
    assert _read(out / "dev-en.jsonl")[0]["relevant"] == ["Q33"]


def test_mewslix_download_data_layout_blank_test_gold_and_scorer_labels(tmp_path):
    src, out = _download_data_layout(tmp_path), tmp_path / "out"
    assert json.loads((src / "wikinews_labels" / "test-en.json").read_text()) == {"m-en-1": [""], "m-en-2": [""]}
    assert not (src / "wikinews_mentions-test.jsonl").exists()
    # The test gold is blanked and only the leaderboard keeps it: no silent empty relevant lists.
    with pytest.raises(DataError, match=r"3 test mention\(s\) have a blank entity_id and no label \(de 1, en 2\): "
                                        r"XTREME-R's utils_preprocess\.py \(mewslix_preprocess\) blanks the test "
                                        r"gold.*--labels DIR.*DIR/mewslix/test-<lang>\.json.*--split dev"):
        xc.convert_mewslix(src, out, quiet=True)
    assert not out.exists() or not list(out.iterdir())

    # With the scorer's label files the rows are those of the release layout, byte for byte.
    labels = _scorer_labels(tmp_path, TEST_GOLD)
    summary = xc.convert_mewslix(src, out, quiet=True, labels=labels)
    assert summary.files == {"candidates.jsonl": (4, "written"), "test-de.jsonl": (1, "written"),
                             "test-en.jsonl": (2, "written")}
    notes = " | ".join(summary.notes)
    assert "layout: per-language" in notes and "3 gold entity id(s) taken from label files" in notes
    release_out = tmp_path / "release_out"
    xc.convert_mewslix(_mewslix_source(tmp_path / "release"), release_out, quiet=True)
    for name in ("candidates.jsonl", "test-en.jsonl", "test-de.jsonl"):
        assert (out / name).read_bytes() == (release_out / name).read_bytes(), name
    assert [r["relevant"] for r in _read(out / "test-en.jsonl")] == [["Q1757"], ["Q33"]]
    # --labels may also name the mewslix folder itself.
    again = xc.convert_mewslix(src, out, quiet=True, labels=labels / "mewslix")
    assert {state for _, state in again.files.values()} == {"unchanged"}

    # Dev keeps its gold: in the mentions and in wikinews_labels/dev-<lang>.json.
    dev = xc.convert_mewslix(src, out, ["en"], split="dev", quiet=True)
    assert dev.files["dev-en.jsonl"] == (1, "written")
    assert _read(out / "dev-en.jsonl")[0]["relevant"] == ["Q33"]


def test_mewslix_download_data_layout_bad_input(tmp_path):
    src, out = _download_data_layout(tmp_path), tmp_path / "out"
    labels = _scorer_labels(tmp_path, TEST_GOLD)
    # Label sources that disagree.
    (src / "wikinews_labels" / "dev-en.json").write_text(json.dumps({"m-en-dev": ["Q5"]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"mentions\[0\]: entity_id 'Q33' but .*wikinews_labels/dev-en\.json gives 'Q5'"):
        xc.convert_mewslix(src, out, ["en"], split="dev", quiet=True)
    # A label for a mention that does not exist.
    (labels / "mewslix" / "test-de.json").write_text(json.dumps({"m-de-1": ["Q1757"], "m-de-9": ["Q5"]}),
                                                     encoding="utf-8")
    with pytest.raises(DataError, match=r"1 labelled example id\(s\) are no mention of the test files, e\.g\. "
                                        r"'m-de-9' in .*labels/mewslix/test-de\.json"):
        xc.convert_mewslix(src, out, quiet=True, labels=labels)
    # A label file that is not {id: [QID]}.
    (labels / "mewslix" / "test-de.json").write_text(json.dumps({"m-de-1": "Q1757"}), encoding="utf-8")
    with pytest.raises(DataError, match=r"test-de\.json: the label of 'm-de-1' should be a one-element list"):
        xc.convert_mewslix(src, out, quiet=True, labels=labels)
    # A language without a label file under --labels.
    (labels / "mewslix" / "test-de.json").unlink()
    with pytest.raises(DataError, match=r"--labels .*labels has no test-de\.json \(nor mewslix/test-de\.json\)"):
        xc.convert_mewslix(src, out, quiet=True, labels=labels)
    # An article of another language in a per-language file.
    en_file = src / "wikinews_mentions" / "test-en.jsonl"
    de_line = (src / "wikinews_mentions" / "test-de.jsonl").read_text(encoding="utf-8")
    en_file.write_text(en_file.read_text(encoding="utf-8") + de_line, encoding="utf-8")
    with pytest.raises(DataError, match=r"test-en\.jsonl:2: an article in 'de' in the 'en' file"):
        xc.convert_mewslix(src, out, ["en"], quiet=True, labels=_scorer_labels(tmp_path, TEST_GOLD))
    # A missing language file names the script that writes it.
    (src / "wikinews_mentions" / "test-uk.jsonl").unlink()
    with pytest.raises(DataError, match=r"source file not found: .*wikinews_mentions/test-uk\.jsonl\. XTREME-R's "
                                        r"`bash scripts/download_data.sh`"):
        xc.convert_mewslix(src, out, quiet=True)
    # Neither layout.
    with pytest.raises(DataError, match=r"neither .*wikinews_mentions/ \(per-language files\) nor "
                                        r".*wikinews_mentions-test\.jsonl found"):
        xc.convert_mewslix(_mewslix_entities_only(tmp_path / "bare"), out, quiet=True)
    assert not out.exists() or not list(out.iterdir())


def _mewslix_entities_only(root: Path) -> Path:
    src = root / "download" / "mewslix"
    _jsonl(src / "candidate_set_entities.jsonl", ENTITIES)
    return src


def test_mewslix_bad_input(tmp_path):
    src, out = _mewslix_source(tmp_path), tmp_path / "out"
    with pytest.raises(DataError, match=r"source file not found: .*nowhere/candidate_set_entities\.jsonl\. "
                                        r"XTREME-R's `bash scripts/download_data.sh` .*function download_mewslix"):
        xc.convert_mewslix(tmp_path / "nowhere", out, quiet=True)

    mentions = src / "wikinews_mentions-test.jsonl"
    good = mentions.read_text(encoding="utf-8")
    mentions.write_text(good + '{"context": {"text": "x"\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"wikinews_mentions-test\.jsonl, line 4: not valid JSON"):
        xc.convert_mewslix(src, out, quiet=True)
    assert not out.exists() or not list(out.iterdir())        # nothing half-written

    docs = [json.loads(line) for line in good.splitlines()]
    docs[1]["mentions"][0]["entity_id"] = "Q999"
    _jsonl(mentions, docs)
    with pytest.raises(DataError, match=r"1 mention\(s\) .* not in .*candidate_set_entities\.jsonl.*"
                                        r"m-de-1 -> Q999 \(.*wikinews_mentions-test\.jsonl:2: mentions\[0\]\)"):
        xc.convert_mewslix(src, out, quiet=True)

    docs = [json.loads(line) for line in good.splitlines()]
    docs[0]["context"]["sentence_spans"] = [{"start": 0, "end": 24}, {"start": 24, "end": len(EN_TEXT)}]
    _jsonl(mentions, docs)       # "Helsinki" at 23..31 now straddles the two sentences
    with pytest.raises(DataError, match=r":1: mentions\[0\]: mention 'm-en-1' \[23, 31\) lies in no single sentence"):
        xc.convert_mewslix(src, out, quiet=True)

    docs = [json.loads(line) for line in good.splitlines()]
    docs[2]["context"]["text"] = ""
    _jsonl(mentions, docs)
    with pytest.raises(DataError, match=r":3: context.text is empty: the WikiNews article text was not restored"):
        xc.convert_mewslix(src, out, quiet=True)

    docs = [json.loads(line) for line in good.splitlines()]
    docs[0]["mentions"][1]["mention_span"]["text"] = "Finnland"
    _jsonl(mentions, docs)
    with pytest.raises(DataError, match=r":1: mentions\[1\]: mention_span \[\d+, \d+\) 'Finnland' does not match"):
        xc.convert_mewslix(src, out, quiet=True)

    _jsonl(mentions, [json.loads(line) for line in good.splitlines()])
    entities = src / "candidate_set_entities.jsonl"
    _jsonl(entities, ENTITIES + [ENTITIES[0]])
    with pytest.raises(DataError, match=r"candidate_set_entities\.jsonl:5: entity_id 'Q1757' occurs twice"):
        xc.convert_mewslix(src, out, quiet=True)
    bad = dict(ENTITIES[1])
    del bad["entity_id"]
    _jsonl(entities, [ENTITIES[0], bad])
    with pytest.raises(DataError, match=r"candidate_set_entities\.jsonl:2: missing field 'entity_id'"):
        xc.convert_mewslix(src, out, quiet=True)
    assert not out.exists() or not list(out.iterdir())


# --------------------------------------------------------------------------------------
# LAReQA fixtures: XQuAD-R, SQuAD v1.1 + sentence_breaks/sentences (google-research-datasets/lareqa)
# --------------------------------------------------------------------------------------

XQUAD = {
    "en": [["Paris is in France.", "Berlin is in Germany."],
           ["The river is long.", "It flows north.", "Its source is in the Alps."]],
    "de": [["Paris liegt in Frankreich.", "Berlin liegt in Deutschland."],
           ["Der Fluss ist lang.", "Er fließt nach Norden.", "Seine Quelle liegt in den Alpen."]],
}
QUESTIONS = {   # qas id -> (paragraph, sentence holding the answer, answer word) per language
    "en": {"q1": ("Where is Paris?", 0, 0, "France"), "q2": ("Where is Berlin?", 0, 1, "Germany"),
           "q3": ("Where is the source?", 1, 2, "Alps")},
    "de": {"q1": ("Wo liegt Paris?", 0, 0, "Frankreich"), "q2": ("Wo liegt Berlin?", 0, 1, "Deutschland"),
           "q3": ("Wo ist die Quelle?", 1, 2, "Alpen"), "q4": ("Wohin fließt er?", 1, 1, "Norden")},
}


def _xquad_r(lang: str) -> dict:
    articles = []
    for p, sentences in enumerate(XQUAD[lang]):
        context, breaks = "", []
        for s in sentences:
            if context:
                context += " "
            breaks.append([len(context), len(context) + len(s)])
            context += s
        qas = [{"answers": [{"answer_start": context.index(word), "text": word}], "id": qid, "question": q}
               for qid, (q, par, _, word) in QUESTIONS[lang].items() if par == p]
        # One article per paragraph: the paragraph counter runs over the whole file.
        articles.append({"paragraphs": [{"context": context, "qas": qas, "sentence_breaks": breaks,
                                         "sentences": sentences}]})
    if lang == "en":   # an answer that starts in the gap between two sentences: skipped
        par = articles[1]["paragraphs"][0]
        gap = par["sentence_breaks"][0][1]
        par["qas"].append({"answers": [{"answer_start": gap, "text": " It"}], "id": "q4", "question": "Where?"})
    return {"data": articles, "version": "1.1"}


def _lareqa_source(root: Path, langs=("en", "de")) -> Path:
    """download/lareqa as download_data.sh's download_lareqa leaves it: the archive's folders
    (xquad-r/, mlqa-r/) without LICENSE and README.md; only xquad-r is XTREME-R's LAReQA."""
    src = root / "download" / "lareqa"
    (src / "xquad-r").mkdir(parents=True, exist_ok=True)
    (src / "mlqa-r").mkdir(parents=True, exist_ok=True)
    (src / "mlqa-r" / "en.json").write_text('{"data": []}', encoding="utf-8")   # not read
    for lang in langs:
        (src / "xquad-r" / f"{lang}.json").write_text(json.dumps(_xquad_r(lang), ensure_ascii=False),
                                                      encoding="utf-8")
    return src


def test_lareqa_rows_ids_relevant_and_pool(tmp_path):
    src, out = _lareqa_source(tmp_path), tmp_path / "out"
    summary = xc.convert_lareqa(src, out, ["en", "de"], quiet=True)
    assert sorted(p.name for p in out.iterdir()) == ["pool.jsonl", "test-de.jsonl", "test-en.jsonl"]

    pool = _read(out / "pool.jsonl")
    assert [r["id"] for r in pool] == ["en_1_0", "en_1_1", "en_2_0", "en_2_1", "en_2_2",
                                       "de_1_0", "de_1_1", "de_2_0", "de_2_1", "de_2_2"]
    assert {r["role"] for r in pool} == {"candidate"} and all(r["relevant"] == [] for r in pool)
    assert [r["language"] for r in pool] == ["en"] * 5 + ["de"] * 5
    # The sentence, then its paragraph (XTREME-R's sentence + context).
    assert pool[1]["text"] == "Berlin is in Germany. Paris is in France. Berlin is in Germany."

    en = _read(out / "test-en.jsonl")
    assert [r["id"] for r in en] == ["q1_en", "q2_en", "q3_en"]       # q4_en skipped: answer in no sentence
    assert [r["relevant"] for r in en] == [["en_1_0", "de_1_0"], ["en_1_1", "de_1_1"], ["en_2_2", "de_2_2"]]
    assert en[0]["text"] == "Where is Paris?" and {r["role"] for r in en} == {"query"}
    de = _read(out / "test-de.jsonl")
    assert [r["id"] for r in de] == ["q1_de", "q2_de", "q3_de", "q4_de"]
    assert de[3]["relevant"] == ["de_2_1"] and {r["language"] for r in de} == {"de"}

    assert summary.files == {"pool.jsonl": (10, "written"), "test-de.jsonl": (4, "written"),
                             "test-en.jsonl": (3, "written")}
    assert any("en: 1 question(s) whose answer starts in no sentence skipped" in n for n in summary.notes)
    assert any("1 question id(s) have an answer sentence in fewer than 2 languages" in n for n in summary.notes)

    again = xc.convert_lareqa(src / "xquad-r", out, ["en", "de"], quiet=True)    # the folder itself works too
    assert {state for _, state in again.files.values()} == {"unchanged"}

    xc.convert_lareqa(src, out, ["en", "de"], candidate_text="sentence", quiet=True)
    assert _read(out / "pool.jsonl")[1]["text"] == "Berlin is in Germany."
    assert _read(out / "test-en.jsonl") == en


def test_lareqa_bad_input(tmp_path):
    src, out = _lareqa_source(tmp_path), tmp_path / "out"
    with pytest.raises(DataError, match=r"source file not found: .*xquad-r/ar\.json\. XTREME-R's "
                                        r"`bash scripts/download_data.sh` .*function download_lareqa"):
        xc.convert_lareqa(src, out, quiet=True)       # the default is all 11 languages

    de = src / "xquad-r" / "de.json"
    de.write_text('{"data": [\n  {"paragraphs": [}\n]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"xquad-r/de\.json:2: not valid JSON"):
        xc.convert_lareqa(src, out, ["en", "de"], quiet=True)

    plain = _xquad_r("de")
    del plain["data"][1]["paragraphs"][0]["sentence_breaks"]
    de.write_text(json.dumps(plain), encoding="utf-8")
    with pytest.raises(DataError, match=r"de\.json: data\[1\]\.paragraphs\[0\]: no 'sentence_breaks': this is "
                                        r"plain XQuAD, not XQuAD-R"):
        xc.convert_lareqa(src, out, ["en", "de"], quiet=True)

    broken = _xquad_r("de")
    broken["data"][0]["paragraphs"][0]["sentence_breaks"][1] = [30, 999]
    de.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(DataError, match=r"paragraphs\[0\]: sentence_breaks\[1\] = \[30, 999\] is not a"):
        xc.convert_lareqa(src, out, ["en", "de"], quiet=True)

    twice = _xquad_r("de")
    twice["data"][1]["paragraphs"][0]["qas"][0]["id"] = "q1"
    de.write_text(json.dumps(twice), encoding="utf-8")
    with pytest.raises(DataError, match=r"question id 'q1' occurs twice in de\.json"):
        xc.convert_lareqa(src, out, ["en", "de"], quiet=True)
    assert not out.exists() or not list(out.iterdir())


def test_command_line_and_default_out_dir(tmp_path, monkeypatch, capsys):
    src = _lareqa_source(tmp_path)
    monkeypatch.setenv("ITT_OUTPUT_DIR", str(tmp_path / "o"))
    assert xc.default_out_dir("lareqa") == tmp_path / "o" / "data" / "xtreme" / "lareqa"
    assert xc.main(["lareqa", "--source", str(src), "--languages", "en,de", "-q"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"pool\.jsonl +10 rows +written", table) and re.search(r"test-en\.jsonl +3 rows +written", table)
    assert len(_read(tmp_path / "o" / "data" / "xtreme" / "lareqa" / "test-de.jsonl")) == 4
    assert xc.main(["mewslix", "--source", str(tmp_path / "none"), "--out", str(tmp_path / "m")]) == 2
    assert "error: mewslix: source file not found" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# End to end: the real task cards read the converted files; the retrieval type scores them
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["lareqa", "mewslix"])
def test_converted_files_load_through_the_task_card(task, make_cfg, tmp_path):
    from itt.cell import run_cell

    data_dir = tmp_path / "data"
    if task == "lareqa":
        xc.convert_lareqa(_lareqa_source(tmp_path), data_dir / "xtreme" / "lareqa", ["en", "de"], quiet=True)
        n_queries = {"en": 3, "de": 4}
    else:
        # The layout download_data.sh leaves, test gold from the scorer's label files.
        xc.convert_mewslix(_download_data_layout(tmp_path), data_dir / "xtreme" / "mewslix", quiet=True,
                           labels=_scorer_labels(tmp_path, TEST_GOLD))
        n_queries = {"en": 2, "de": 1}
    cfg = make_cfg("intermediate=none", "model=tiny_bert", f"target={task}", f"paths.data_dir={data_dir}",
                   "eval.export_predictions=true")
    assert cfg["target"]["source"]["data_files"]["test"][0] == f"{data_dir}/xtreme/{task}/test-{{lang}}.jsonl"
    cfg["target"]["eval_languages"] = ["en", "de"]
    run_dir = tmp_path / "run"
    result = run_cell(cfg, run_dir)
    per_language = result["metrics"]["per_language"]
    assert set(per_language) == {"en", "de"}
    for lang, values in per_language.items():
        assert values["n"] == n_queries[lang]
        assert 0.0 <= values["map@20"] <= 1.0
    # The exported labels are the converted relevant lists.
    labels = json.loads((run_dir / "predictions" / "labels" / task / "test-en.json").read_text())
    if task == "lareqa":
        assert labels == {"q1_en": ["en_1_0", "de_1_0"], "q2_en": ["en_1_1", "de_1_1"],
                          "q3_en": ["en_2_2", "de_2_2"]}
    else:
        assert labels == {"m-en-1": ["Q1757"], "m-en-2": ["Q33"]}
