"""Step `render`: the submission's body and attachments become one fax document.

Where it sits: after `parse`, before `meter`. It hands the parsed parts to `renderers`
(which knows nothing of mail, accounts or money) with the account's paper size, a cover
page and the header line every page must carry (US 47 CFR 68.318(d)), and records the
TIFF-F and its PDF preview (for the receipt) on the job.

What the sender controls, by words in the subject (case-insensitive, whole words):
  * `nocover`   no cover page (the default is a cover page when there is a subject or
                body text); the message text is then not faxed, unless nothing is
                attached, in which case the text itself is the fax,
  * `standard`  standard resolution (98 lpi) instead of fine (196 lpi): half the line
                time, for plain text.
The words stay in the subject shown on the cover; they only switch options.

The header line shows the time of rendering (a moment before the first dial), the
account's name and the sending number (the account's own fax number, else the
service's `render.station_number`). A document that cannot be faxed ends the job with a
mail naming each such file, the reason and the types that are accepted.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from bridge.accounts.models import Account, FaxNumber
from bridge.outbound.jobs import FaxJob, RenderedDocument
from bridge.outbound.pipeline import IntakeStep, RejectSubmission, StepContext
from renderers import (
    ACCEPTED_TYPES_TEXT,
    CoverPage,
    DocumentRefused,
    DocumentsRefused,
    FaxHeader,
    RenderOptions,
    SourceDocument,
    fax_tiff_to_pdf,
    render_fax,
)

log = logging.getLogger("handlers.render")

_NO_COVER = re.compile(r"\bnocover\b", re.I)
_STANDARD = re.compile(r"\bstandard\b", re.I)

Paper = Literal["a4", "letter"]  # the sizes RenderOptions.paper takes


class Render(IntakeStep):
    """Render the job's documents into one TIFF-F fax and a PDF preview."""

    name = "render"

    def __init__(self, context: StepContext) -> None:
        self.context = context
        self.settings = context.settings.render

    async def process(self, job: FaxJob) -> None:
        account_name, paper, sending_number = await self._account_details(job)
        work_dir = Path(job.work_dir)
        documents = await asyncio.to_thread(_documents_of, job, work_dir)
        wants_cover = self.settings.cover_page and not _NO_COVER.search(job.subject)
        has_text = bool(job.subject.strip() or job.body_text.strip())
        cover = None
        if wants_cover and has_text:
            cover = CoverPage(
                sender=f"{account_name} <{job.from_header}>" if account_name else job.from_header,
                recipient_numbers=tuple(job.recipients),
                subject=job.subject,
                body_text=job.body_text,
                date=job.received_at,
            )
        elif not documents and job.body_text.strip():
            # No cover and nothing attached: the message text itself is the fax.
            documents.insert(0, SourceDocument("", job.body_text.encode(), "text/plain; charset=utf-8"))
        options = RenderOptions(
            resolution="standard" if _STANDARD.search(job.subject) else self.settings.resolution,
            compression=self.settings.compression,
            paper=paper,
            max_pages=self.settings.max_pages,
            max_input_bytes=self.settings.max_input_bytes,
            document_timeout_seconds=self.settings.document_timeout_seconds,
            document_memory_bytes=self.settings.document_memory_bytes,
            soffice_path=self.settings.soffice_path,
        )
        header = FaxHeader(
            sent_at=datetime.now(UTC),
            sender_name=account_name or job.from_header,
            sending_number=sending_number,
        )
        tiff_path = work_dir / "fax.tif"
        try:
            rendered = await asyncio.to_thread(render_fax, documents, tiff_path, options, cover=cover, header=header)
        except DocumentRefused as refused:
            raise RejectSubmission(_refusal_text(refused)) from None
        pdf_path = work_dir / "fax.pdf"
        pdf = await asyncio.to_thread(fax_tiff_to_pdf, rendered.tiff_path)
        await asyncio.to_thread(pdf_path.write_bytes, pdf)
        job.rendered = RenderedDocument(
            tiff_path=str(rendered.tiff_path),
            pdf_path=str(pdf_path),
            page_count=rendered.page_count,
            pages_per_document=list(rendered.pages_per_document),
            skipped=list(rendered.skipped),
        )
        log.info(
            "rendered %d page(s): %s",
            rendered.page_count,
            ", ".join(f"{name or 'body'}={pages}" for name, pages in rendered.pages_per_document),
        )

    async def _account_details(self, job: FaxJob) -> tuple[str, Paper, str]:
        async with self.context.db.reading() as session:
            account = await session.get(Account, job.account_id)
            number = await session.scalar(
                select(FaxNumber.e164).where(FaxNumber.account_id == job.account_id).order_by(FaxNumber.id).limit(1)
            )
        name = account.name if account else ""
        # Any size we do not print on (or no account) is A4.
        paper: Paper = "letter" if account and account.paper_size == "letter" else "a4"
        return name, paper, number or self.settings.station_number


def _documents_of(job: FaxJob, work_dir: Path) -> list[SourceDocument]:
    documents = [
        SourceDocument(
            filename=part.filename,
            content=(work_dir / part.path).read_bytes(),
            declared_type=part.declared_type,
            content_id=part.content_id,
            inline=part.inline,
        )
        for part in job.attachments
    ]
    if job.body_html and not job.body_text.strip():
        # An HTML-only message: its body is the document (inline cid: images come along).
        documents.insert(0, SourceDocument("", job.body_html.encode(), "text/html; charset=utf-8"))
    return documents


def _refusal_text(refused: DocumentRefused) -> str:
    refusals = refused.refusals if isinstance(refused, DocumentsRefused) else (refused,)
    lines = [
        f"{r.filename or 'The message body'}: {r.reason}" for r in refusals
    ]
    if len(lines) == 1:
        return f"{lines[0]} Accepted types: {ACCEPTED_TYPES_TEXT}."
    return "These files could not be faxed: " + " ".join(lines) + f" Accepted types: {ACCEPTED_TYPES_TEXT}."
