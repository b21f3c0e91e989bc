"""The render benchmark's corpus: real-world PDFs that nobody in this project wrote.

Every document comes from a public package registry that these machines reach:

* text pages: PDF manuals shipped in Debian documentation packages (fetched with
  `apt-get download` and unpacked with `dpkg -x`, nothing gets installed), plus a few
  real-world forms and an office-suite export from PyPI source distributions;
* scan/photo pages: the scanned pages, photographs and scanner/printer outputs that
  OCRmyPDF and pikepdf ship as test resources in their PyPI sdists (fetched with
  `pip download --no-deps --no-binary :all:`).

Packages and versions are pinned here so that two runs measure the same pages. Nothing of
the corpus is committed: it is downloaded once into a cache folder (default
`var/bench-corpus`, which git ignores) and reused.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pypdfium2

Kind = Literal["text", "scan"]


@dataclasses.dataclass(frozen=True)
class DebianSource:
    """A Debian package and the PDFs to take from it."""

    package: str
    version: str  # tried first; if the mirror has moved on, the current version is used
    files: tuple[tuple[str, Kind], ...]  # path inside the package, and its page kind


@dataclasses.dataclass(frozen=True)
class PyPISource:
    """A PyPI source distribution and the PDFs to take from it."""

    project: str
    version: str
    files: tuple[tuple[str, Kind], ...]  # path inside the sdist, minus its top folder


@dataclasses.dataclass(frozen=True)
class CorpusDocument:
    """One PDF of the corpus, ready on disk."""

    kind: Kind
    origin: str  # "debian:r-doc-pdf=4.2.2..." or "pypi:ocrmypdf==17.13.0"
    member: str  # where the file sits inside the package
    path: Path
    pages: int
    size: int
    sha256: str
    width_mm: float  # of the first page, as displayed (after /Rotate)
    height_mm: float

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def page_sized(self) -> bool:
        """A4 or Letter, either way round: the sizes Ghostscript's A4 media takes as they are.

        HylaFAX's flags put any other size at its natural size in the corner of an A4 page
        (or crop it), while faxbridge fits it to the page, so only these pages compare
        like for like in kB/page.
        """
        short, long = sorted((self.width_mm, self.height_mm))
        return 200 <= short <= 222 and 270 <= long <= 303


_OCRMYPDF = "tests/resources/"
_PIKEPDF = "tests/resources/"

# Text: manuals of several producers (texinfo and LaTeX through pdfTeX, DocBook through
# Apache FOP), letter and A4, portrait and landscape reference cards, vector forms.
# None is over 200 pages, the faxbridge default page limit, so none is refused for length.
DEBIAN_SOURCES: tuple[DebianSource, ...] = (
    DebianSource(
        "r-doc-pdf",
        "4.2.2.20221110-2",
        (
            ("usr/share/R/doc/manual/R-FAQ.pdf", "text"),
            ("usr/share/R/doc/manual/R-data.pdf", "text"),
        ),
    ),
    DebianSource(
        "debian-policy",
        "4.6.2.0",
        (("usr/share/doc/debian-policy/fhs/fhs-3.0.pdf.gz", "text"),),
    ),
    DebianSource(
        "octave-doc",
        "7.3.0-2",
        (
            ("usr/share/doc/octave/liboctave.pdf", "text"),
            ("usr/share/doc/octave/refcard-a4.pdf", "text"),
        ),
    ),
    DebianSource(
        "asymptote-doc",
        "2.85+ds-1",
        (
            ("usr/share/doc/asymptote/asy-latex.pdf", "text"),
            ("usr/share/doc/asymptote/asyRefCard.pdf", "text"),
            ("usr/share/doc/asymptote/CAD.pdf", "text"),
        ),
    ),
)

# Scan/photo: every page is one raster image covering the page, in the encodings scanners,
# fax machines and cameras produce (JPEG, JPEG 2000, CCITT G4, JBIG2, CMYK, palette).
# OCRmyPDF's README names the origins: Project Gutenberg page scans, Wikimedia photos,
# an Epson printer-scanner's output, Kodak Capture output, skewed and rotated scans.
# Left out on purpose: enormous.pdf, poster.pdf and hugemono.pdf (metre-sized pages or a
# 35000x35000 image: decompression-bomb tests, not documents anyone faxes).
PYPI_SOURCES: tuple[PyPISource, ...] = (
    PyPISource(
        "ocrmypdf",
        "17.13.0",
        tuple(
            (_OCRMYPDF + name, kind)
            for name, kind in (
                ("c03-29.pdf", "scan"),
                ("linn.pdf", "scan"),
                ("2400dpi.pdf", "scan"),
                ("epson.pdf", "scan"),
                ("kcs.pdf", "scan"),
                ("masks.pdf", "scan"),
                ("cardinal.pdf", "scan"),
                ("multipage.pdf", "scan"),
                ("3small.pdf", "scan"),
                ("skew.pdf", "scan"),
                ("rotated_skew.pdf", "scan"),
                ("ccitt.pdf", "scan"),
                ("jbig2.pdf", "scan"),
                ("lichtenstein.pdf", "scan"),
                ("graph.pdf", "scan"),
                ("palette.pdf", "scan"),
                ("francais.pdf", "scan"),
                ("cmyk.pdf", "scan"),
                ("tagged.pdf", "text"),  # a LibreOffice Writer export
            )
        ),
    ),
    PyPISource(
        "pikepdf",
        "10.18.0",
        tuple(
            (_PIKEPDF + name, kind)
            for name, kind in (
                ("congress.pdf", "scan"),
                ("congress-gray.pdf", "scan"),
                ("graph.pdf", "scan"),
                ("sandwich.pdf", "scan"),
                ("ccitt-endofline-true.pdf", "scan"),
                ("jbig2global.pdf", "scan"),
                ("form_dd0293.pdf", "text"),  # a US DoD form (Adobe Designer)
                ("form_210966.pdf", "text"),  # a US VA form (Adobe Designer)
            )
        ),
    ),
)

MANIFEST = "manifest.json"


class CorpusError(RuntimeError):
    """The corpus could not be fetched; the message says what to do."""


def _run(cmd: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)


def _debian_deb(src: DebianSource, debs: Path, log: list[str]) -> Path:
    """Download the package's .deb into `debs` (once) and return its path."""
    found = sorted(debs.glob(f"{src.package}_*.deb"))
    if found:
        return found[-1]
    debs.mkdir(parents=True, exist_ok=True)
    # apt drops root to the _apt user for downloads; a world-writable work folder keeps
    # it from warning that it has to download unsandboxed.
    with tempfile.TemporaryDirectory(dir=debs) as tmp:
        Path(tmp).chmod(0o777)
        got = _run(["apt-get", "download", "-q", f"{src.package}={src.version}"], cwd=Path(tmp))
        if got.returncode != 0:
            log.append(
                f"{src.package}={src.version} is no longer on the mirror; using the current version"
            )
            got = _run(["apt-get", "download", "-q", src.package], cwd=Path(tmp))
        if got.returncode != 0:
            raise CorpusError(
                f"apt-get download {src.package} failed ({got.stderr.strip()[-300:]}); "
                "run `apt-get update` first"
            )
        deb = next(Path(tmp).glob("*.deb"))
        return Path(shutil.move(str(deb), debs / deb.name))


def _deb_version(deb: Path) -> str:
    got = _run(["dpkg-deb", "-f", str(deb), "Version"])
    return got.stdout.strip() or "?"


def _pypi_sdist(src: PyPISource, sdists: Path) -> Path:
    """Download the project's sdist into `sdists` (once) and return its path."""
    found = sorted(sdists.glob(f"{src.project}-{src.version}.tar.gz"))
    if found:
        return found[0]
    sdists.mkdir(parents=True, exist_ok=True)
    got = _run(
        [
            sys.executable, "-m", "pip", "download", "-q", "--no-deps",
            "--no-binary", ":all:", "-d", str(sdists), f"{src.project}=={src.version}",
        ]
    )
    found = sorted(sdists.glob(f"{src.project}-{src.version}.tar.gz"))
    if got.returncode != 0 or not found:
        raise CorpusError(
            f"pip download {src.project}=={src.version} failed: {got.stderr.strip()[-300:]}"
        )
    return found[0]


def _page_facts(path: Path) -> tuple[int, float, float]:
    """Page count and the first page's displayed size in mm."""
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        width, height = pdf[0].get_size()  # points, rotation applied
        return len(pdf), width / 72 * 25.4, height / 72 * 25.4
    finally:
        pdf.close()


def _describe(kind: Kind, origin: str, member: str, path: Path) -> CorpusDocument:
    data = path.read_bytes()
    pages, width_mm, height_mm = _page_facts(path)
    return CorpusDocument(
        kind=kind,
        origin=origin,
        member=member,
        path=path,
        pages=pages,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        width_mm=round(width_mm, 1),
        height_mm=round(height_mm, 1),
    )


def _target(docs_dir: Path, kind: Kind, prefix: str, member: str) -> Path:
    name = Path(member).name.removesuffix(".gz")
    # Two packages ship a graph.pdf: the package name keeps them apart.
    return docs_dir / kind / f"{prefix}__{name}"


def ensure_corpus(cache: Path, log: list[str]) -> list[CorpusDocument]:
    """Fetch (or reuse) the corpus under `cache` and return its documents.

    `log` receives notes worth printing (e.g. a pinned version that had to be replaced).
    """
    docs_dir = cache / "docs"
    manifest_path = cache / MANIFEST
    wanted = [(s.package, f, k) for s in DEBIAN_SOURCES for f, k in s.files] + [
        (s.project, f, k) for s in PYPI_SOURCES for f, k in s.files
    ]
    cached: list[CorpusDocument] = []
    if manifest_path.exists():
        try:
            cached = [
                CorpusDocument(**{**d, "path": Path(d["path"])})
                for d in json.loads(manifest_path.read_text())
            ]
        except (TypeError, ValueError):  # a manifest from an older layout: rebuild it
            cached = []
        if cached and [(d.member, d.kind) for d in cached] == [(f, k) for _, f, k in wanted] and all(
            d.path.exists() for d in cached
        ):
            return cached

    documents: list[CorpusDocument] = []
    for deb_src in DEBIAN_SOURCES:
        deb = _debian_deb(deb_src, cache / "debs", log)
        origin = f"debian:{deb_src.package}={_deb_version(deb)}"
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            got = _run(["dpkg-deb", "-x", str(deb), tmp])
            if got.returncode != 0:
                raise CorpusError(f"dpkg-deb -x {deb.name} failed: {got.stderr.strip()}")
            for member, kind in deb_src.files:
                out = _target(docs_dir, kind, deb_src.package, member)
                out.parent.mkdir(parents=True, exist_ok=True)
                src_path = Path(tmp) / member
                if not src_path.exists():
                    raise CorpusError(f"{deb.name} has no {member}")
                # Debian gzips some PDFs under /usr/share/doc; the PDF inside is the document.
                opener = gzip.open if member.endswith(".gz") else open
                with opener(src_path, "rb") as fin, open(out, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
                documents.append(_describe(kind, origin, member, out))

    for py_src in PYPI_SOURCES:
        sdist = _pypi_sdist(py_src, cache / "sdists")
        origin = f"pypi:{py_src.project}=={py_src.version}"
        top = f"{py_src.project}-{py_src.version}/"
        with tarfile.open(sdist) as tar:
            for member, kind in py_src.files:
                out = _target(docs_dir, kind, py_src.project, member)
                out.parent.mkdir(parents=True, exist_ok=True)
                fin = tar.extractfile(top + member)
                if fin is None:
                    raise CorpusError(f"{sdist.name} has no {member}")
                with fin, open(out, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
                documents.append(_describe(kind, origin, member, out))

    manifest_path.write_text(
        json.dumps(
            [{**dataclasses.asdict(d), "path": str(d.path)} for d in documents], indent=1
        )
    )
    return documents
