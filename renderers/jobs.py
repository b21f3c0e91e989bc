"""What a render worker process does: one document (or the cover, or the header
line) in, one intermediate fax TIFF (or strip image) out.

These are the functions renderers.render hands to renderers.worker.run_isolated;
they run in the child process, so they take and return small picklable objects
and leave pages on disk, already CCITT-coded, for the parent to assemble.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from renderers import detect
from renderers.cover import cover_to_pdf
from renderers.faxtiff import BitPage, Compression, FaxTiffWriter, Paper, Resolution
from renderers.header import header_strip
from renderers.html import html_to_pdf
from renderers.images import compliant_fax_pages, render_image
from renderers.model import CoverPage, DocumentRefused, FaxHeader, SourceDocument
from renderers.office import office_to_pdf
from renderers.pdf import render_pdf
from renderers.raster import PageFrame
from renderers.text import declared_charset, text_to_pdf


@dataclass(frozen=True)
class DocumentJob:
    document: SourceDocument
    kind: str                                   # from renderers.detect
    frame: PageFrame
    resolution: Resolution
    compression: Compression
    paper: Paper
    max_pages: int
    max_pixels: int
    soffice_path: str
    timeout: float
    memory_bytes: int
    out_path: Path
    parts: tuple[tuple[str, bytes, str], ...] = ()   # (Content-ID, data, type) for cid: in HTML
    allow_passthrough: bool = False


@dataclass(frozen=True)
class JobResult:
    pages: int
    passed_through: bool = False
    # (width, rows, offset, length) of each page's strip in the job's out_path.
    strips: tuple[tuple[int, int, int, int], ...] = ()


@dataclass(frozen=True)
class CoverJob:
    cover: CoverPage
    total_pages: int
    frame: PageFrame
    resolution: Resolution
    compression: Compression
    paper: Paper
    out_path: Path


@dataclass(frozen=True)
class HeaderJob:
    header: FaxHeader
    frame: PageFrame
    out_path: Path


def render_document(job: DocumentJob) -> JobResult:
    document, label = job.document, job.document.label
    data = document.content
    if job.kind == detect.TIFF and job.allow_passthrough:
        encoded = compliant_fax_pages(data, job.resolution, job.compression, job.paper)
        if encoded is not None:
            with FaxTiffWriter(job.out_path, resolution=job.resolution,
                               compression=job.compression) as writer:
                for page in encoded:
                    writer.add_encoded_page(page)
            return JobResult(len(encoded), passed_through=True, strips=tuple(writer.strips))
    return _write(job, _pages(job, label, data))


def _pages(job: DocumentJob, label: str, data: bytes) -> Iterable[BitPage]:
    if job.kind == detect.PDF:
        return render_pdf(data, label, job.frame, job.max_pages)
    if job.kind in detect.IMAGE_TYPES:
        return render_image(data, label, job.frame, max_pages=job.max_pages, max_pixels=job.max_pixels)
    if job.kind == detect.TEXT:
        pdf = text_to_pdf(data, paper=job.paper, charset=declared_charset(job.document.declared_type))
        return render_pdf(pdf, label, job.frame, job.max_pages)
    if job.kind == detect.HTML:
        parts = {content_id: (part, mime) for content_id, part, mime in job.parts}
        pdf = html_to_pdf(data, paper=job.paper, parts=parts,
                          encoding=declared_charset(job.document.declared_type))
        return render_pdf(pdf, label, job.frame, job.max_pages)
    if job.kind in detect.OFFICE_TYPES:
        pdf = office_to_pdf(data, job.kind, label, soffice=job.soffice_path,
                            timeout=job.timeout, memory_bytes=job.memory_bytes)
        return render_pdf(pdf, label, job.frame, job.max_pages)
    raise DocumentRefused(label, unknown_type_reason())


def unknown_type_reason() -> str:
    return (f"Its type cannot be faxed. Please send one of: {detect.ACCEPTED_TYPES_TEXT}.")


def _write(job: DocumentJob | CoverJob, pages: Iterable[BitPage]) -> JobResult:
    with FaxTiffWriter(job.out_path, resolution=job.resolution, compression=job.compression) as writer:
        for page in pages:
            writer.add_page(page)
        if writer.page_count == 0:
            raise DocumentRefused("", "It has no pages.")
        return JobResult(writer.page_count, strips=tuple(writer.strips))


def render_cover(job: CoverJob) -> JobResult:
    pdf = cover_to_pdf(job.cover, job.total_pages, paper=job.paper)
    return _write(job, render_pdf(pdf, "cover page", job.frame, max_pages=1000))


def render_header(job: HeaderJob) -> Path:
    header_strip(job.header, job.frame).save(job.out_path, format="PNG")
    return job.out_path
