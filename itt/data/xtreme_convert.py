"""Convert files of XTREME-R's download scripts into the rows the task cards read.

Usage::

    python -m itt.data.xtreme_convert mewslix --source download/mewslix [--out DIR]
    python -m itt.data.xtreme_convert lareqa  --source download/lareqa  [--out DIR]
    python -m itt.data.xtreme_convert tydiqa  --source download/tydiqa  [--out DIR]
    python -m itt.data.xtreme_convert udpos   --source download/udpos   [--out DIR]

TyDiQA-GoldP and UD-POS have no loadable per-language copy on the hub (the TyDiQA-GoldP
repository holds a loading script; XTREME-R's UD mix of v2.5 and v2.7 treebanks is not
published as one dataset), so their cards read what ``bash scripts/download_data.sh`` of
github.com/google-research/xtreme leaves in ``download/``, converted here (see
:func:`convert_tydiqa` and :func:`convert_udpos` for the files and rows).

``--out`` defaults to ``<paths.data_dir>/xtreme/<task>`` of the composed config (by default
``outputs/data/xtreme/<task>``; ``$ITT_OUTPUT_DIR`` moves it), which is where
``conf/task/mewslix.yaml`` and ``conf/task/lareqa.yaml`` read. Output rows are the retrieval
normal form of :mod:`itt.tasks.retrieval`, one JSON object per line with the same keys in
every file (``role``, ``id``, ``text``, ``relevant``, ``language``):

* ``test-<lang>.jsonl``: the queries of one language, ``relevant`` = candidate ids;
* ``candidates.jsonl`` (Mewsli-X) / ``pool.jsonl`` (LAReQA): the shared candidate pool,
  ``relevant`` = ``[]``.

Every file is written to a temporary file first and moved into place only when the whole
conversion succeeded, so a failed run leaves the previous files untouched; a file whose
content did not change is left as it is (a second run reports ``unchanged``).

Mewsli-X (``bash scripts/download_data.sh`` of github.com/google-research/xtreme, function
``download_mewslix``: it runs ``get-mewsli-x.sh`` of google-research/google-research
``dense_representations_for_entity_retrieval/mel``, then ``utils_preprocess.py --task
mewslix`` (``mewslix_preprocess``) and deletes the combined mention files; followed as of
xtreme commit 838c13b69daafb9328785d16caae2711e4012123). ``--source`` is
``download/mewslix``, which then holds:

    ``candidate_set_entities.jsonl``: one entity per line, ``entity_id`` (Wikidata QID),
    ``title``, ``description``, ``sentence_spans`` (``[{"start", "end"}]`` into
    ``description``), ``description_language``, ``description_url``; 1,003,893 entities.
    ``wikinews_mentions/{dev,test}-<lang>.jsonl``: the WikiNews articles of one language,
    one per line, ``{"context": {"document_id", "document_title", "document_url",
    "language", "text", "sentence_spans"}, "mentions": [{"example_id", "mention_span":
    {"start", "end", "text"}, "entity_id", "metadata"}]}``; a query per mention. In the
    test files every ``entity_id`` is ``""``: the preprocessing blanks the test gold.
    ``wikinews_labels/{dev,test}-<lang>.json``: ``{"<example_id>": ["<entity_id>"]}``, the
    format of the official scorer's label files (``mock_test_data/labels/mewslix``); the
    dev files hold the gold, the test files the blanked ids.

    Where the gold comes from: the mention's ``entity_id``; else the same split's
    ``wikinews_labels`` file; else, for the test split, ``--labels DIR``: the official
    scorer's label files, ``DIR/test-<lang>.json`` or ``DIR/mewslix/test-<lang>.json``
    (the layout of ``evaluate.py --label_folder``; the leaderboard keeps the real ones).
    Two sources that disagree, a label for an unknown mention and a mention left without
    gold are errors (a query row needs its relevant entity). The release layout that
    ``get-mewsli-x.sh`` itself writes (and XTREME-R's former
    ``scripts/download_mewslix_data.sh`` moved to ``download/mewslix``), one
    ``wikinews_mentions-{dev,test}.jsonl`` with the gold in place, is read as well.

    Texts follow XTREME-R's baseline (``third_party/utils_mewslix.py``,
    ``preprocess_mention`` / ``preprocess_entity_description``). A query is the mention's
    sentence (the sentence span that holds the mention) with the mention marked by braces
    and repeated in front, so truncation cannot cut it off: ``"Helsinki: In { Helsinki } ,
    the union ..."``; braces already in the sentence become parentheses; line breaks become
    spaces. A candidate is the entity description's sentences joined by spaces (the whole
    description when it has no sentence spans, the title when the description is empty;
    both counted in the summary). ``--split dev`` converts the dev mentions into
    ``dev-<lang>.jsonl`` instead of the test ones.

    Errors: an article whose ``text`` is empty (the released ``wikinews_mentions_no_text``
    files before ``get-mewsli-x.sh`` restores the text from WikiNews dumps), a mention span
    whose text does not match the article or that crosses a sentence boundary (XTREME-R's
    baseline asserts the same), a duplicated entity or example id, and a gold entity that is
    not in the candidate set: the Mewsli-X README states that the candidate set holds the
    gold entities of the WikiNews dev and test sets, so a missing one means a wrong or
    truncated file, not a known gap of the data.

LAReQA (``bash scripts/download_data.sh`` of github.com/google-research/xtreme, function
``download_lareqa``, as of commit 838c13b69daafb9328785d16caae2711e4012123: the
github.com/google-research-datasets/lareqa archive unpacked into ``download/lareqa/``, its
LICENSE and README removed; the former ``scripts/download_lareqa_data.sh`` did the same.
``third_party/evaluate_retrieval.py`` reads ``download/lareqa/xquad-r/<lang>.json``; the
``mlqa-r`` folders beside it are not part of XTREME-R)
    ``xquad-r/<lang>.json`` for ar de el en es hi ru th tr vi zh: XQuAD in SQuAD v1.1 form
    (``{"data": [{"paragraphs": [{"context", "qas": [{"id", "question", "answers":
    [{"text", "answer_start"}]}], "sentence_breaks": [[start, end], ...],
    "sentences"}]}]}``); the 11 files are parallel and share question ids. ``--source`` may
    name ``download/lareqa`` or its ``xquad-r`` folder. (The hub copy
    ``google-research-datasets/xquad_r`` is not read: its rows are flattened per question.)

    Ids are XTREME-R's (``third_party/utils_lareqa.py``): a query is ``<qas id>_<lang>``, a
    candidate ``<lang>_<n>_<i>`` for sentence ``i`` of the language file's ``n``-th
    paragraph (1-based, counted over the whole file). The pool is every sentence of every
    paragraph of every converted language; a question's relevant candidates are the
    sentences holding the answer (the sentence break containing ``answer_start``; as in
    XTREME-R, any sentence of that paragraph with the same text) of the same question id in
    every converted language. A candidate's text is its sentence followed by a space and its
    paragraph, as XTREME-R's baseline encodes candidates (sentence + context; XTREME-R joins
    them without a separator and deletes line breaks, here line breaks become spaces);
    ``--candidate-text sentence`` keeps the sentence alone. A
    question whose answer starts in no sentence is skipped and counted, as XTREME-R's loader
    does; whether the released files hold such questions was not checked here (the LAReQA
    README lists 1,190 questions per language, all of XQuAD). A question with several
    answers uses the first, as XTREME-R's processor does.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from itt.errors import DataError, ITTError
from itt.utils import new_file_mode, read_jsonl

TASKS = ("mewslix", "lareqa", "tydiqa", "udpos")
MEWSLIX_ENTITIES = "candidate_set_entities.jsonl"
MEWSLIX_MENTIONS = "wikinews_mentions-{split}.jsonl"          # release layout (get-mewsli-x.sh)
MEWSLIX_LANG_MENTIONS = "wikinews_mentions/{split}-{lang}.jsonl"  # download_data.sh layout
MEWSLIX_LANG_LABELS = "wikinews_labels/{split}-{lang}.json"
MEWSLIX_POOL = "candidates.jsonl"
LAREQA_DIR = "xquad-r"
LAREQA_POOL = "pool.jsonl"

_WHERE = {
    "mewslix": ("XTREME-R's `bash scripts/download_data.sh` (github.com/google-research/xtreme, function "
                "download_mewslix) writes download/mewslix/: candidate_set_entities.jsonl, "
                "wikinews_mentions/<split>-<lang>.jsonl and wikinews_labels/<split>-<lang>.json (it runs "
                "get-mewsli-x.sh of github.com/google-research/google-research, "
                "dense_representations_for_entity_retrieval/mel, which restores the WikiNews article "
                "text, then utils_preprocess.py --task mewslix)"),
    "lareqa": ("XTREME-R's `bash scripts/download_data.sh` (github.com/google-research/xtreme, function "
               "download_lareqa) unpacks github.com/google-research-datasets/lareqa into download/lareqa/, "
               "whose xquad-r/<lang>.json files are XQuAD-R"),
}

_WHERE.update({
    "tydiqa": ("XTREME's `bash scripts/download_data.sh` (github.com/google-research/xtreme, function "
               "download_tydiqa) writes download/tydiqa/: tydiqa-goldp-v1.1-train/tydiqa.<lang>.train.json "
               "(split per language by utils_preprocess.py) and tydiqa-goldp-v1.1-dev/"),
    "udpos": ("XTREME's `bash scripts/download_data.sh` (github.com/google-research/xtreme, function "
              "download_udpos, then utils_preprocess.py --task udpos) writes download/udpos/"
              "<split>-<lang>.tsv"),
})

# XTREME-R baseline's mention markup (third_party/utils_mewslix.py).
_MARK_L, _MARK_R = "{", "}"
_ESCAPE = re.compile(rf"{re.escape(_MARK_L)}(.*?){re.escape(_MARK_R)}")


def official_languages(task: str) -> list[str]:
    from itt.metrics.xtreme_tasks import VERSIONS

    return list(VERSIONS["xtreme-r"].languages[task])


# --------------------------------------------------------------------------------------
# Output: rows written to temporary files, moved into place at the end
# --------------------------------------------------------------------------------------

def row(role: str, rid: str, text: str, relevant: Sequence[str], language: str) -> dict[str, Any]:
    return {"role": role, "id": rid, "text": text, "relevant": list(relevant), "language": language}


@dataclass
class _Out:
    path: Path
    tmp: Path
    handle: Any
    rows: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    def write(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj, ensure_ascii=False) + "\n"
        self.handle.write(line)
        self.digest.update(line.encode("utf-8"))
        self.rows += 1


class Writer:
    """Writes every output to a temporary file next to it; :meth:`commit` moves the files
    whose content changed into place (``os.replace``), :meth:`abort` removes them all.

    As a context manager (``with Writer(out) as writer:``) it commits when the block ends
    without error, into ``summary.files`` when a summary is given, and aborts otherwise."""

    def __init__(self, out_dir: Path, summary: Any = None) -> None:
        self.out_dir = out_dir
        self.summary = summary
        self.files: dict[str, _Out] = {}

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is not None:
            self.abort()
            return
        done = self.commit()
        if self.summary is not None:
            self.summary.files = done

    def open(self, name: str) -> _Out:
        if name not in self.files:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / name
            fd, tmp = tempfile.mkstemp(dir=self.out_dir, prefix=f".{name}.", suffix=".tmp")
            os.chmod(tmp, new_file_mode())       # mkstemp's 0600 would hide the data from others
            self.files[name] = _Out(path, Path(tmp), os.fdopen(fd, "w", encoding="utf-8"))
        return self.files[name]

    def commit(self) -> dict[str, tuple[int, str]]:
        """``{file name: (rows, "written" | "unchanged")}``."""
        done: dict[str, tuple[int, str]] = {}
        for f in self.files.values():
            f.handle.flush()
            os.fsync(f.handle.fileno())
            f.handle.close()
        for name, f in sorted(self.files.items()):
            if f.path.exists() and _sha256(f.path) == f.digest.hexdigest():
                f.tmp.unlink()
                done[name] = (f.rows, "unchanged")
            else:
                os.replace(f.tmp, f.path)
                done[name] = (f.rows, "written")
        self.files.clear()
        return done

    def abort(self) -> None:
        for f in self.files.values():
            try:
                f.handle.close()
            finally:
                if f.tmp.exists():
                    f.tmp.unlink()
        self.files.clear()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Summary:
    task: str
    out_dir: Path
    files: dict[str, tuple[int, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"{self.task}: {self.out_dir}"]
        width = max([len(n) for n in self.files] + [4])
        for name, (rows, state) in sorted(self.files.items()):
            lines.append(f"  {name:<{width}}  {rows:>9,} rows  {state}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _progress(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Reading helpers
# --------------------------------------------------------------------------------------

def _require_file(path: Path, task: str) -> Path:
    if not path.is_file():
        raise DataError(f"{task}: source file not found: {path}. {_WHERE[task]}; pass that folder "
                        f"as --source.")
    return path


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line; a malformed line names file and line."""
    for lineno, obj in read_jsonl(path, DataError):
        if not isinstance(obj, dict):
            raise DataError(f"{path}, line {lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise DataError(f"{where}: missing field '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(f"{where}: field '{key}' should be {names}, got {type(value).__name__}")
    return value


def _spans(obj: dict[str, Any], key: str, length: int, where: str) -> list[tuple[int, int]]:
    out = []
    for i, s in enumerate(_get(obj, key, list, where)):
        if not isinstance(s, dict):
            raise DataError(f"{where}: {key}[{i}] should be an object with start and end")
        start, end = _get(s, "start", int, f"{where}: {key}[{i}]"), _get(s, "end", int, f"{where}: {key}[{i}]")
        if not 0 <= start < end <= length:
            raise DataError(f"{where}: {key}[{i}] = [{start}, {end}) is not a span of a text of "
                            f"{length} characters")
        out.append((start, end))
    return out


def _normalise(text: str) -> str:
    """XTREME-R baseline's clean-up: line breaks to spaces, one pass of double spaces, strip."""
    return " ".join(text.splitlines()).replace("  ", " ").strip()


# --------------------------------------------------------------------------------------
# Mewsli-X
# --------------------------------------------------------------------------------------

def entity_text(description: str, spans: Sequence[tuple[int, int]], title: str) -> tuple[str, str]:
    """Candidate text and where it came from (``sentences`` | ``description`` | ``title``)."""
    if spans:
        return _normalise(" ".join(description[a:b] for a, b in spans)), "sentences"
    text = _normalise(description)
    return (text, "description") if text else (_normalise(title), "title")


def mention_text(context: str, sentences: Sequence[tuple[int, int]], start: int, end: int) -> str | None:
    """The query text of XTREME-R's baseline, or None when the mention is in no one sentence."""
    for s_start, s_end in sentences:
        if s_start <= start < s_end and s_start < end <= s_end:
            sentence = context[s_start:s_end]
            left, right = sentence[:start - s_start], sentence[end - s_start:]
            left, right = _ESCAPE.sub(r"(\1)", left), _ESCAPE.sub(r"(\1)", right)
            mention = context[start:end]
            return _normalise(f"{mention}: {left} {_MARK_L} {mention} {_MARK_R} {right}")
    return None


def _mewslix_label_file(path: Path) -> dict[str, str]:
    """``{example_id: entity_id}`` of one label file in the official scorer's format
    (``{"<example_id>": ["<entity_id>"]}``); blank ids (the blanked test gold) are left out."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object mapping example_id -> [entity_id]")
    out: dict[str, str] = {}
    for ex_id, value in data.items():
        if (not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], str)):
            raise DataError(f"{path}: the label of {ex_id!r} should be a one-element list holding the "
                            f"entity id, got {value!r}")
        if value[0].strip():
            out[ex_id] = value[0].strip()
    return out


def _scorer_labels(labels: Path, split: str, lang: str) -> Path | None:
    for path in (labels / f"{split}-{lang}.json", labels / "mewslix" / f"{split}-{lang}.json"):
        if path.is_file():
            return path
    return None


def _mewslix_sources(source: Path, split: str, langs: Sequence[str]) -> tuple[str, list[tuple[Path, str | None]]]:
    """The layout (``per-language`` | ``release``) and the mention files, each with the
    language it must hold (None: any, the release file holds all of them)."""
    if (source / "wikinews_mentions").is_dir():
        paths = [(source / MEWSLIX_LANG_MENTIONS.format(split=split, lang=lang), lang) for lang in langs]
        for path, _ in paths:
            _require_file(path, "mewslix")
        return "per-language", [(p, lang) for p, lang in paths]
    release = source / MEWSLIX_MENTIONS.format(split=split)
    if release.is_file():
        return "release", [(release, None)]
    raise DataError(f"mewslix: neither {source / 'wikinews_mentions'}/ (per-language files) nor {release} "
                    f"found. {_WHERE['mewslix']}; pass that folder as --source.")


def convert_mewslix(source: Path, out_dir: Path, languages: Sequence[str] | None = None, split: str = "test",
                    quiet: bool = False, labels: Path | None = None) -> Summary:
    entities_path = _require_file(source / MEWSLIX_ENTITIES, "mewslix")
    langs = list(languages or official_languages("mewslix"))
    layout, mention_files = _mewslix_sources(source, split, langs)
    if labels is not None and not labels.is_dir():
        raise DataError(f"mewslix: --labels {labels} is not a folder; give the folder holding the official "
                        f"scorer's label files mewslix/{split}-<lang>.json")
    # Gold from label files: the split's wikinews_labels (download_data.sh layout), then --labels.
    gold_files: dict[str, dict[str, tuple[str, Path]]] = {lang: {} for lang in langs}
    label_paths: list[Path] = []
    for lang in langs:
        candidates = [source / MEWSLIX_LANG_LABELS.format(split=split, lang=lang)]
        if labels is not None:
            found = _scorer_labels(labels, split, lang)
            if found is None:
                raise DataError(f"mewslix: --labels {labels} has no {split}-{lang}.json (nor "
                                f"mewslix/{split}-{lang}.json)")
            candidates.append(found)
        for path in candidates:
            if not path.is_file():
                continue
            label_paths.append(path)
            for ex_id, gold in _mewslix_label_file(path).items():
                prior = gold_files[lang].get(ex_id)
                if prior is not None and prior[0] != gold:
                    raise DataError(f"mewslix: {ex_id!r} has gold {prior[0]!r} in {prior[1]} but {gold!r} "
                                    f"in {path}")
                gold_files[lang][ex_id] = (gold, path)
    summary = Summary("mewslix", out_dir)
    with Writer(out_dir, summary) as writer:
        pool = writer.open(MEWSLIX_POOL)
        ids: set[str] = set()
        sources: Counter[str] = Counter()
        _progress(f"mewslix: reading {entities_path}", quiet)
        for lineno, ent in _jsonl(entities_path):
            where = f"{entities_path}:{lineno}"
            eid = _get(ent, "entity_id", str, where)
            if eid in ids:
                raise DataError(f"{where}: entity_id {eid!r} occurs twice in the candidate set")
            ids.add(eid)
            description = _get(ent, "description", str, where)
            title = ent.get("title") if isinstance(ent.get("title"), str) else ""
            text, origin = entity_text(description, _spans(ent, "sentence_spans", len(description), where), title)
            if not text:
                raise DataError(f"{where}: entity {eid!r} has neither a description nor a title")
            sources[origin] += 1
            pool.write(row("candidate", eid, text, [], str(ent.get("description_language") or "")))
            if not quiet and pool.rows % 200_000 == 0:
                _progress(f"  {pool.rows:,} entities", quiet)
        if not pool.rows:
            raise DataError(f"{entities_path} holds no entities")
        _progress(f"  {pool.rows:,} entities", quiet)

        seen: set[str] = set()
        missing: list[str] = []
        no_gold: Counter[str] = Counter()
        other: Counter[str] = Counter()
        from_labels = 0
        for mentions_path, file_lang in mention_files:
            _progress(f"mewslix: reading {mentions_path}", quiet)
            for lineno, doc in _jsonl(mentions_path):
                where = f"{mentions_path}:{lineno}"
                ctx = _get(doc, "context", dict, where)
                text = _get(ctx, "text", str, f"{where}: context")
                if not text:
                    raise DataError(f"{where}: context.text is empty: the WikiNews article text was not "
                                    f"restored (the released wikinews_mentions_no_text files omit it). "
                                    f"{_WHERE['mewslix']}.")
                lang = _get(ctx, "language", str, f"{where}: context")
                if file_lang is not None and lang != file_lang:
                    raise DataError(f"{where}: an article in {lang!r} in the {file_lang!r} file (XTREME-R's "
                                    f"evaluate_retrieval.py asserts one language per file)")
                sentences = _spans(ctx, "sentence_spans", len(text), f"{where}: context")
                for k, m in enumerate(_get(doc, "mentions", list, where)):
                    mwhere = f"{where}: mentions[{k}]"
                    if not isinstance(m, dict):
                        raise DataError(f"{mwhere} should be an object")
                    ex_id = _get(m, "example_id", str, mwhere)
                    gold = _get(m, "entity_id", str, mwhere).strip()
                    span = _get(m, "mention_span", dict, mwhere)
                    start, end = (_get(span, "start", int, f"{mwhere}.mention_span"),
                                  _get(span, "end", int, f"{mwhere}.mention_span"))
                    if not 0 <= start < end <= len(text) or text[start:end] != span.get("text"):
                        raise DataError(f"{mwhere}: mention_span [{start}, {end}) {span.get('text')!r} does "
                                        f"not match the article text")
                    if ex_id in seen:
                        raise DataError(f"{mwhere}: example_id {ex_id!r} occurs twice")
                    seen.add(ex_id)
                    if lang not in langs:
                        other[lang] += 1
                        continue
                    labelled = gold_files[lang].get(ex_id)
                    if labelled is not None:
                        if gold and gold != labelled[0]:
                            raise DataError(f"{mwhere}: entity_id {gold!r} but {labelled[1]} gives "
                                            f"{labelled[0]!r}")
                        if not gold:
                            from_labels += 1
                        gold = labelled[0]
                    if not gold:
                        no_gold[lang] += 1
                        continue
                    if gold not in ids:
                        missing.append(f"{ex_id} -> {gold} ({mwhere})")
                        continue
                    query = mention_text(text, sentences, start, end)
                    if query is None:
                        raise DataError(f"{mwhere}: mention {ex_id!r} [{start}, {end}) lies in no single "
                                        f"sentence of context.sentence_spans")
                    writer.open(f"{split}-{lang}.jsonl").write(row("query", ex_id, query, [gold], lang))
        if no_gold:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(no_gold.items()))
            raise DataError(f"mewslix: {sum(no_gold.values())} {split} mention(s) have a blank entity_id and "
                            f"no label ({counts}): XTREME-R's utils_preprocess.py (mewslix_preprocess) "
                            f"blanks the test gold, which only the leaderboard keeps. Pass --labels DIR "
                            f"holding the official scorer's label files (DIR/mewslix/{split}-<lang>.json, "
                            f"{{\"<example_id>\": [\"<QID>\"]}}), convert --split dev, or convert the release "
                            f"files of get-mewsli-x.sh (wikinews_mentions-{split}.jsonl, gold in place).")
        unknown = [(ex_id, path) for lang in langs for ex_id, (_, path) in gold_files[lang].items()
                   if ex_id not in seen]
        if unknown:
            raise DataError(f"mewslix: {len(unknown)} labelled example id(s) are no mention of the {split} "
                            f"files, e.g. {unknown[0][0]!r} in {unknown[0][1]}: labels and mentions are of "
                            f"different releases or splits")
        if missing:
            raise DataError(f"mewslix: {len(missing)} mention(s) have a gold entity that is not in "
                            f"{entities_path} (the Mewsli-X candidate set holds every WikiNews gold "
                            f"entity, so one of the files is wrong or truncated): "
                            + "; ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
        absent = [lang for lang in langs if f"{split}-{lang}.jsonl" not in writer.files]
        if len(absent) == len(langs):
            raise DataError(f"mewslix: the {split} mentions hold no mention in {', '.join(langs)}")
    summary.notes.append(f"layout: {layout} ({', '.join(str(p) for p, _ in mention_files[:1])}"
                         f"{' ...' if len(mention_files) > 1 else ''})")
    if from_labels:
        summary.notes.append(f"{from_labels} gold entity id(s) taken from label files: "
                             + ", ".join(sorted({str(p) for p in label_paths})[:3])
                             + (" ..." if len(label_paths) > 3 else ""))
    if absent:
        summary.notes.append(f"no mentions in {', '.join(absent)}: no query file written for them")
    if other:
        summary.notes.append("mentions in other languages skipped: "
                             + ", ".join(f"{k} {v}" for k, v in sorted(other.items())))
    if sources["description"] or sources["title"]:
        summary.notes.append(f"entities without sentence spans: {sources['description']} use the whole "
                             f"description, {sources['title']} (empty description) the title")
    return summary


# --------------------------------------------------------------------------------------
# LAReQA (XQuAD-R)
# --------------------------------------------------------------------------------------

@dataclass
class _Question:
    qid: str
    text: str
    lang: str
    answers: list[str]       # candidate ids holding the answer sentence, this language


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc


def _xquad_r(path: Path, lang: str, candidate_text: str) -> tuple[list[dict[str, Any]], list[_Question], int]:
    """Candidates (pool rows), questions, and the number of questions skipped."""
    data = _load_json(path)
    articles = _get(data, "data", list, str(path)) if isinstance(data, dict) else None
    if articles is None:
        raise DataError(f"{path}: expected a SQuAD-format object with a 'data' list")
    pool: list[dict[str, Any]] = []
    questions: list[_Question] = []
    seen: set[str] = set()
    skipped = 0
    n_par = 0
    for a, article in enumerate(articles):
        where_a = f"{path}: data[{a}]"
        if not isinstance(article, dict):
            raise DataError(f"{where_a} should be an object")
        for p, par in enumerate(_get(article, "paragraphs", list, where_a)):
            where = f"{where_a}.paragraphs[{p}]"
            if not isinstance(par, dict):
                raise DataError(f"{where} should be an object")
            n_par += 1
            context = _get(par, "context", str, where)
            if "sentence_breaks" not in par:
                raise DataError(f"{where}: no 'sentence_breaks': this is plain XQuAD, not XQuAD-R. "
                                f"{_WHERE['lareqa']}.")
            breaks = []
            for i, b in enumerate(_get(par, "sentence_breaks", list, where)):
                if (not isinstance(b, list) or len(b) != 2 or not all(isinstance(x, int) for x in b)
                        or not 0 <= b[0] < b[1] <= len(context)):
                    raise DataError(f"{where}: sentence_breaks[{i}] = {b!r} is not a [start, end] span of "
                                    f"the {len(context)}-character context")
                breaks.append((b[0], b[1]))
            sentences = [context[s:e] for s, e in breaks]
            cids = [f"{lang}_{n_par}_{i}" for i in range(len(sentences))]
            for cid, sentence in zip(cids, sentences):
                text = sentence if candidate_text == "sentence" else f"{sentence} {context}"
                pool.append(row("candidate", cid, text.replace("\n", " "), [], lang))
            for q, qa in enumerate(_get(par, "qas", list, where)):
                where_q = f"{where}.qas[{q}]"
                if not isinstance(qa, dict):
                    raise DataError(f"{where_q} should be an object")
                qid = _get(qa, "id", str, where_q)
                if qid in seen:
                    raise DataError(f"{where_q}: question id {qid!r} occurs twice in {path.name}")
                seen.add(qid)
                question = _get(qa, "question", str, where_q)
                answers = _get(qa, "answers", list, where_q)
                if not answers or not isinstance(answers[0], dict):
                    raise DataError(f"{where_q}: question {qid!r} has no answer")
                start = _get(answers[0], "answer_start", int, f"{where_q}.answers[0]")
                hit = next((sentences[i] for i, (s, e) in enumerate(breaks) if s <= start < e), None)
                if hit is None:
                    skipped += 1
                    continue
                relevant = [cid for cid, sentence in zip(cids, sentences) if sentence == hit]
                questions.append(_Question(qid, question, lang, relevant))
    return pool, questions, skipped


def lareqa_dir(source: Path) -> Path:
    return source / LAREQA_DIR if (source / LAREQA_DIR).is_dir() else source


def convert_lareqa(source: Path, out_dir: Path, languages: Sequence[str] | None = None,
                   candidate_text: str = "sentence+context", quiet: bool = False) -> Summary:
    folder = lareqa_dir(source)
    langs = list(languages or official_languages("lareqa"))
    paths = {lang: _require_file(folder / f"{lang}.json", "lareqa") for lang in langs}
    summary = Summary("lareqa", out_dir)
    pools: dict[str, list[dict[str, Any]]] = {}
    questions: dict[str, list[_Question]] = {}
    answers: dict[str, list[str]] = {}
    for lang, path in paths.items():
        _progress(f"lareqa: reading {path}", quiet)
        pools[lang], questions[lang], skipped = _xquad_r(path, lang, candidate_text)
        if skipped:
            summary.notes.append(f"{lang}: {skipped} question(s) whose answer starts in no sentence "
                                 f"skipped (as XTREME-R's loader does)")
        if not questions[lang]:
            raise DataError(f"{path} holds no questions")
        for q in questions[lang]:
            answers.setdefault(q.qid, []).extend(q.answers)
    pool_ids = {r["id"] for rows in pools.values() for r in rows}
    with Writer(out_dir, summary) as writer:
        pool_out = writer.open(LAREQA_POOL)
        for lang in langs:
            for r in pools[lang]:
                pool_out.write(r)
        for lang in langs:
            out = writer.open(f"test-{lang}.jsonl")
            for q in questions[lang]:
                relevant = answers[q.qid]
                lost = [c for c in relevant if c not in pool_ids]
                if lost:   # cannot happen: every answer sentence is a pool sentence
                    raise DataError(f"lareqa: question {q.qid!r} ({lang}): relevant {lost} not in the pool")
                out.write(row("query", f"{q.qid}_{lang}", q.text, relevant, lang))
    shared = [qid for qid, rel in answers.items() if len({c.split("_", 1)[0] for c in rel}) < len(langs)]
    if shared:
        summary.notes.append(f"{len(shared)} question id(s) have an answer sentence in fewer than "
                             f"{len(langs)} languages")
    return summary


# --------------------------------------------------------------------------------------
# TyDiQA-GoldP
# --------------------------------------------------------------------------------------

TYDIQA_TRAIN = "tydiqa-goldp-v1.1-train/tydiqa.{lang}.train.json"
# The dev (= XTREME's test) file of one language under download/tydiqa/tydiqa-goldp-v1.1-dev:
# predict_qa.sh reads tydiqa.goldp.<lang>.dev.json, utils_preprocess.py renames the released
# tydiqa-goldp-dev-<language>.json to tydiqa.<lang>.dev.json; any of the three is read.
TYDIQA_DEV = ("tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json",
              "tydiqa-goldp-v1.1-dev/tydiqa.{lang}.dev.json",
              "tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-{language}.json")
TYDIQA_LANGUAGE_NAMES = {"ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish",
                         "id": "indonesian", "ko": "korean", "ru": "russian", "sw": "swahili",
                         "te": "telugu"}


def _squad_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Flat span-QA rows ``{id, title, context, question, answers: {text, answer_start}}``
    of a SQuAD v1.1-format file; an answer whose text is not at ``answer_start`` is an error."""
    data = _get(_load_json(path), "data", list, str(path))
    for a, article in enumerate(data):
        where_a = f"{path}: data[{a}]"
        for p, par in enumerate(_get(article, "paragraphs", list, where_a)):
            where_p = f"{where_a}.paragraphs[{p}]"
            context = _get(par, "context", str, where_p)
            for q, qa in enumerate(_get(par, "qas", list, where_p)):
                where_q = f"{where_p}.qas[{q}]"
                texts, starts = [], []
                for answer in _get(qa, "answers", list, where_q):
                    text = _get(answer, "text", str, where_q)
                    start = _get(answer, "answer_start", int, where_q)
                    if context[start:start + len(text)] != text:
                        raise DataError(f"{where_q}: answer {text!r} is not at answer_start {start} of "
                                        f"its context; the file is not the released TyDiQA-GoldP.")
                    texts.append(text)
                    starts.append(start)
                yield {"id": str(_get(qa, "id", (str, int), where_q)), "title": str(article.get("title", "")),
                       "context": context, "question": _get(qa, "question", str, where_q),
                       "answers": {"text": texts, "answer_start": starts}}


def convert_tydiqa(source: Path, out_dir: Path, languages: Sequence[str] | None = None,
                   quiet: bool = False) -> Summary:
    """TyDiQA-GoldP as XTREME trains and tests it (scripts/train_qa.sh with SRC=tydiqa,
    scripts/predict_qa.sh): ``train-en.jsonl`` from the English training file and
    ``test-<lang>.jsonl`` from each language's gold-passage dev file (XTREME's test set).
    Rows are the span-QA form of the hub's SQuAD (``answers`` = ``{text, answer_start}``)."""
    langs = list(languages or official_languages("tydiqa"))
    unknown = [x for x in langs if x not in TYDIQA_LANGUAGE_NAMES]
    if unknown:
        raise DataError(f"tydiqa: unknown language(s) {unknown}; TyDiQA-GoldP has "
                        f"{sorted(TYDIQA_LANGUAGE_NAMES)}.")
    summary = Summary("tydiqa", out_dir)
    with Writer(out_dir, summary) as writer:
        train = _require_file(source / TYDIQA_TRAIN.format(lang="en"), "tydiqa")
        _progress(f"tydiqa: reading {train}", quiet)
        out = writer.open("train-en.jsonl")
        for r in _squad_rows(train):
            out.write(r)
        for lang in langs:
            names = [n.format(lang=lang, language=TYDIQA_LANGUAGE_NAMES[lang]) for n in TYDIQA_DEV]
            found = [source / n for n in names if (source / n).is_file()]
            if not found:
                raise DataError(f"tydiqa: no dev file for '{lang}' under {source} (looked for "
                                f"{', '.join(names)}). {_WHERE['tydiqa']}; pass download/tydiqa as --source.")
            _progress(f"tydiqa: reading {found[0]}", quiet)
            out = writer.open(f"test-{lang}.jsonl")
            for r in _squad_rows(found[0]):
                out.write(r)
            if out.rows == 0:
                raise DataError(f"tydiqa: {found[0]} holds no questions.")
    return summary


# --------------------------------------------------------------------------------------
# UD-POS
# --------------------------------------------------------------------------------------

UDPOS_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
UDPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
              "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")


def _conll_sentences(path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """``(tokens, tags)`` per sentence of a ``word<TAB>tag`` file, blank lines between sentences."""
    tokens: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                if tokens:
                    yield tokens, tags
                tokens, tags = [], []
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[1]:
                raise DataError(f"{path}:{lineno}: expected '<word>\\t<UPOS tag>', got {line[:80]!r}")
            if parts[1] not in UDPOS_TAGS:
                raise DataError(f"{path}:{lineno}: {parts[1]!r} is not one of the 17 UPOS tags")
            tokens.append(parts[0])
            tags.append(parts[1])
    if tokens:
        yield tokens, tags


def convert_udpos(source: Path, out_dir: Path, languages: Sequence[str] | None = None,
                  quiet: bool = False) -> Summary:
    """UD-POS as XTREME-R's download_data.sh and utils_preprocess.py leave it
    (``<split>-<lang>.tsv``, split = train / dev / test, one ``word<TAB>tag`` per line):
    ``<train|validation|test>-<lang>.jsonl`` rows ``{"tokens": [...], "pos_tags": [...]}``.
    Every language needs a test file; train and dev are converted where they exist (XTREME
    trains on English only). The treebank versions are whatever download_data.sh fetched."""
    langs = list(languages or official_languages("udpos"))
    summary = Summary("udpos", out_dir)
    with Writer(out_dir, summary) as writer:
        for lang in langs:
            for split, role in UDPOS_SPLITS.items():
                path = source / f"{split}-{lang}.tsv"
                if not path.is_file():
                    if split == "test" or (split == "train" and lang == "en"):
                        _require_file(path, "udpos")
                    continue
                _progress(f"udpos: reading {path}", quiet)
                out = writer.open(f"{role}-{lang}.jsonl")
                for tokens, tags in _conll_sentences(path):
                    out.write({"tokens": tokens, "pos_tags": tags})
                if out.rows == 0:
                    raise DataError(f"udpos: {path} holds no sentences.")
    return summary


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def default_out_dir(task: str) -> Path:
    """``<paths.data_dir>/xtreme/<task>`` of the composed config (what the task cards read)."""
    from omegaconf import OmegaConf

    from itt.config import compose

    cfg = compose()
    return Path(str(OmegaConf.select(cfg, "paths.data_dir"))) / "xtreme" / task


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m itt.data.xtreme_convert",
                                description="Convert the files of XTREME-R's download scripts (Mewsli-X, "
                                            "LAReQA / XQuAD-R, TyDiQA-GoldP, UD-POS) into the rows "
                                            "conf/task/<task>.yaml reads.")
    p.add_argument("task", choices=TASKS)
    p.add_argument("--source", required=True, type=Path,
                   help="mewslix: XTREME-R's download/mewslix (candidate_set_entities.jsonl, "
                        "wikinews_mentions/, wikinews_labels/; or the release's "
                        "wikinews_mentions-<split>.jsonl); lareqa: "
                        "download/lareqa or its xquad-r folder; tydiqa: download/tydiqa; udpos: "
                        "download/udpos")
    p.add_argument("--out", type=Path, help="output folder (default: <paths.data_dir>/xtreme/<task>)")
    p.add_argument("--languages", help="comma-separated languages (default: the task's XTREME-R languages)")
    p.add_argument("--split", choices=("test", "dev"), default="test",
                   help="mewslix: which WikiNews mentions to convert (default: test)")
    p.add_argument("--labels", type=Path,
                   help="mewslix: folder of the official scorer's label files (<split>-<lang>.json or "
                        "mewslix/<split>-<lang>.json, {example_id: [QID]}) giving the gold that "
                        "download_data.sh blanks in the test mentions")
    p.add_argument("--candidate-text", choices=("sentence+context", "sentence"), default="sentence+context",
                   help="lareqa: candidate text (default: the sentence, then its paragraph, as XTREME-R)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    langs = [x.strip() for x in args.languages.split(",") if x.strip()] if args.languages else None
    try:
        out = args.out if args.out is not None else default_out_dir(args.task)
        if args.task == "mewslix":
            summary = convert_mewslix(args.source, out, langs, split=args.split, quiet=args.quiet,
                                      labels=args.labels)
        elif args.task == "tydiqa":
            summary = convert_tydiqa(args.source, out, langs, quiet=args.quiet)
        elif args.task == "udpos":
            summary = convert_udpos(args.source, out, langs, quiet=args.quiet)
        else:
            summary = convert_lareqa(args.source, out, langs, candidate_text=args.candidate_text,
                                     quiet=args.quiet)
    except ITTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
