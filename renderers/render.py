"""render_fax: a submission's documents in, one TIFF-F fax out.

This is what the intake pipeline's ``render`` step calls (in an executor: it
blocks). In order it:

1. checks the total input size, detects each document's type by content and
   decides what is not faxed as pages of its own (inline images an HTML part shows
   through ``cid:``, tiny inline images such as signature logos);
2. renders each remaining document in a worker process (renderers.worker) into an
   intermediate fax TIFF below the header margin, collecting every refusal;
3. renders the cover page, now that the page total is known (the header line is
   rendered meanwhile, in a second worker, while the documents render);
4. assembles the fax: cover first, then the documents in order, each page
   stamped with the header line and "Page n/total". Pages are copied as coded;
   the header line is coded on its own and spliced in front of each page's code
   (renderers.faxtiff.splice_g4_top / splice_g3_top), so no page is decoded or
   coded twice. Without a header line, a lone fax TIFF that already fits is
   passed through byte for byte.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from renderers import detect
from renderers.faxtiff import (
    BitPage,
    FaxTiffWriter,
    encode_page,
    read_strips,
    splice_g3_top,
    splice_g4_top,
)
from renderers.header import header_rows, stamp
from renderers.images import image_size
from renderers.jobs import (
    CoverJob,
    DocumentJob,
    HeaderJob,
    JobResult,
    render_cover,
    render_document,
    render_header,
    unknown_type_reason,
)
from renderers.model import (
    CoverPage,
    DocumentRefused,
    DocumentsRefused,
    FaxHeader,
    RenderedFax,
    RenderOptions,
    SourceDocument,
)
from renderers.raster import PageFrame
from renderers.text import declared_charset, decode_text
from renderers.worker import run_isolated

log = logging.getLogger("renderers.render")

COVER_LABEL = "cover page"
_CID_REFERENCE = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class _Planned:
    position: int          # in the submission, so refusals are reported in order
    document: SourceDocument
    kind: str


def render_fax(documents: Sequence[SourceDocument], out_path: Path, options: RenderOptions,
               *, cover: CoverPage | None = None, header: FaxHeader | None = None) -> RenderedFax:
    """Render ``documents`` (and the cover, if given) into one fax at ``out_path``.

    Blocking. Raises ``DocumentsRefused`` (a ``DocumentRefused``) listing every
    document that cannot be faxed, each with its file name and a reason for the
    sender; nothing is written to ``out_path`` then.
    """
    out_path = Path(out_path)
    _check_total_size(documents, options)
    planned, skipped, refusals = _plan(documents, options)
    frame = PageFrame.for_fax(options.paper, options.resolution, header is not None)
    if not planned and cover is None:
        if refusals:
            raise DocumentsRefused(_in_order(refusals))
        raise DocumentRefused("", "There is nothing to fax: the message has no body text and no attachments.")

    with tempfile.TemporaryDirectory(prefix="faxbridge-render-") as work_dir, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="faxbridge-header") as beside:
        work = Path(work_dir)
        # The header line does not depend on the documents: it is laid out in a
        # second worker while the documents render, so it adds no time to the fax.
        strip_job = (beside.submit(_render_header, header, frame, options, work)
                     if header is not None else None)
        rendered: list[tuple[str, Path, JobResult]] = []
        total = 0
        alone = len(planned) == 1 and cover is None and header is None
        for index, item in enumerate(planned):
            label = item.document.label
            job = DocumentJob(
                document=item.document, kind=item.kind, frame=frame,
                resolution=options.resolution, compression=options.compression, paper=options.paper,
                max_pages=options.max_pages, max_pixels=options.max_image_pixels,
                soffice_path=options.soffice_path, timeout=options.document_timeout_seconds,
                memory_bytes=options.document_memory_bytes, out_path=work / f"document-{index}.tif",
                parts=_parts_for(item, documents), allow_passthrough=header is None,
            )
            try:
                result = run_isolated(render_document, job, label=label,
                                      timeout=options.document_timeout_seconds,
                                      memory_bytes=options.document_memory_bytes)
            except DocumentRefused as refusal:
                refusals.append((item.position, DocumentRefused(item.document.filename, refusal.reason)))
                continue
            total += result.pages
            if total + (1 if cover else 0) > options.max_pages:
                refusals.append((item.position, DocumentRefused(item.document.filename, (
                    f"With it the fax would have {total + (1 if cover else 0)} pages, more than the "
                    f"{options.max_pages} pages one fax may have. Please send it in several faxes."))))
                total -= result.pages
                continue
            rendered.append((item.document.filename, job.out_path, result))
        if refusals:
            raise DocumentsRefused(_in_order(refusals))

        if alone and rendered[0][2].passed_through:
            # An already compliant fax TIFF goes out exactly as the sender made it.
            out_path.write_bytes(planned[0].document.content)
            return RenderedFax(out_path, total, ((planned[0].document.filename, total),), tuple(skipped))

        parts: list[tuple[str, Path, JobResult]] = []
        if cover is not None:
            cover_path, cover_result = _render_cover(cover, total, frame, options, work)
            parts.append((COVER_LABEL, cover_path, cover_result))
        parts += rendered
        grand_total = sum(result.pages for _, _, result in parts)
        strip = strip_job.result() if strip_job is not None else None
        _assemble(parts, out_path, options, frame, header is not None, strip, grand_total)
    return RenderedFax(out_path, grand_total, tuple((name, result.pages) for name, _, result in parts),
                       tuple(skipped))


def _check_total_size(documents: Sequence[SourceDocument], options: RenderOptions) -> None:
    running = 0
    for document in documents:
        running += len(document.content)
        if running > options.max_input_bytes:
            limit_mb = options.max_input_bytes / (1024 * 1024)
            raise DocumentsRefused([DocumentRefused(document.filename, (
                f"The documents of this fax add up to more than {limit_mb:.0f} MB, the most one fax "
                "may carry. Please send fewer or smaller files, in several faxes."))])


def _in_order(refusals: list[tuple[int, DocumentRefused]]) -> list[DocumentRefused]:
    return [refusal for _, refusal in sorted(refusals, key=lambda pair: pair[0])]


def _plan(documents: Sequence[SourceDocument], options: RenderOptions
          ) -> tuple[list[_Planned], list[tuple[str, str]], list[tuple[int, DocumentRefused]]]:
    kinds = [detect.detect_type(d.content, d.filename, d.declared_type) for d in documents]
    shown_in_html = set()
    for document, kind in zip(documents, kinds, strict=True):
        if kind == detect.HTML:
            text = decode_text(document.content, declared_charset(document.declared_type))
            shown_in_html |= {reference.strip("<>").lower() for reference in _CID_REFERENCE.findall(text)}
    planned: list[_Planned] = []
    skipped: list[tuple[str, str]] = []
    refusals: list[tuple[int, DocumentRefused]] = []
    for position, (document, kind) in enumerate(zip(documents, kinds, strict=True)):
        name = document.label
        if document.content_id and document.content_id.strip("<>").lower() in shown_in_html:
            skipped.append((document.filename, "shown inside the HTML message"))
            continue
        if kind in detect.IMAGE_TYPES and document.inline:
            size = image_size(document.content)
            if size is not None and max(size) < options.tiny_image_pixels:
                skipped.append((document.filename, "a small inline image, such as a signature logo"))
                continue
        if kind == detect.UNKNOWN:
            refusals.append((position, DocumentRefused(document.filename, unknown_type_reason())))
            continue
        declared = (document.declared_type or "").split(";")[0].strip().lower()
        if declared and declared not in ("application/octet-stream", kind) and not (
                declared.startswith("text/") and kind in (detect.TEXT, detect.HTML)):
            # A wrong label is common (mail clients guess from the name): the content
            # decides, and the log says so for anyone debugging a render.
            log.info("%s declared as %s but its content is %s; rendering as %s", name, declared, kind, kind)
        planned.append(_Planned(position, document, kind))
    return planned, skipped, refusals


def _parts_for(item: _Planned, documents: Sequence[SourceDocument]) -> tuple[tuple[str, bytes, str], ...]:
    if item.kind != detect.HTML:
        return ()
    return tuple(
        (d.content_id.strip("<>"), d.content, detect.detect_type(d.content, d.filename, d.declared_type))
        for d in documents if d.content_id and d is not item.document
    )


def _render_cover(cover: CoverPage, document_pages: int, frame: PageFrame, options: RenderOptions,
                  work: Path) -> tuple[Path, JobResult]:
    # The cover states the page total, which includes the cover itself: guess one
    # cover page, and render again in the rare case a long body needs more.
    cover_pages = 1
    for _attempt in range(3):
        job = CoverJob(cover, document_pages + cover_pages, frame, options.resolution,
                       options.compression, options.paper, work / "cover.tif")
        result = run_isolated(render_cover, job, label=COVER_LABEL,
                              timeout=options.document_timeout_seconds,
                              memory_bytes=options.document_memory_bytes)
        if result.pages == cover_pages:
            break
        cover_pages = result.pages
    return job.out_path, result


def _render_header(header: FaxHeader, frame: PageFrame, options: RenderOptions, work: Path) -> Image.Image:
    path = run_isolated(render_header, HeaderJob(header, frame, work / "header.png"),
                        label="header line", timeout=options.document_timeout_seconds,
                        memory_bytes=options.document_memory_bytes)
    with Image.open(path) as strip:
        return strip.convert("1")


def _assemble(parts: list[tuple[str, Path, JobResult]], out_path: Path, options: RenderOptions,
              frame: PageFrame, with_header: bool, strip: Image.Image | None, total: int) -> None:
    number = 0
    compression = options.compression
    blank = None
    if with_header and compression != "g4":
        # G3 rows are cut after an EOL: code one white row more than the margin.
        rows = frame.top + 1
        blank = encode_page(BitPage(frame.width, rows, bytes((frame.width + 7) // 8 * rows)), compression)
    with FaxTiffWriter(out_path, resolution=options.resolution, compression=compression) as writer:
        for _name, path, result in parts:
            # Our own intermediate files: the worker said where each page's strip is.
            encoded_pages = read_strips(path, result.strips)
            if not with_header:
                for encoded in encoded_pages:
                    writer.add_encoded_page(encoded)
                continue
            for index, encoded in enumerate(encoded_pages):
                number += 1
                top = header_rows(strip, number, total, frame)
                try:
                    if blank is None:
                        writer.add_encoded_page(splice_g4_top(encoded, frame.top, encode_page(top, "g4")))
                    else:
                        with_white_row = Image.new("1", (frame.width, frame.top + 1), 1)
                        with_white_row.paste(top, (0, 0))
                        writer.add_encoded_page(splice_g3_top(encoded, frame.top, blank,
                                                              encode_page(with_white_row, compression)))
                    continue
                except ValueError:
                    log.warning("page %d is not blank at the top; stamping it the slow way", number)
                # Our own intermediate files: decoding them here is safe.
                with Image.open(path) as tiff:
                    tiff.seek(index)
                    writer.add_page(stamp(tiff.convert("1"), strip, number, total, frame))
