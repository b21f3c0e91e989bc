"""Inbound step `to-pdf`: the received fax as a PDF, its pages not re-encoded.

Where it sits: after `store`, before `decorate`. img2pdf (renderers.fax_tiff_to_pdf)
wraps each CCITT G4 page as it is, so the PDF shows exactly the received pixels and is
as small as the fax. Runs in a thread; the PDF is written durably beside the TIFF.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bridge.inbound.jobs import InboundFaxJob
from bridge.inbound.models import InboundFaxRecord
from bridge.inbound.pipeline import InboundContext
from bridge.spool import write_durably
from renderers import fax_tiff_to_pdf

log = logging.getLogger("bridge.inbound")


class ToPdf:
    """Make <fax id>.pdf from the stored TIFF without re-encoding it."""

    name = "to-pdf"

    def __init__(self, context: InboundContext) -> None:
        self.db = context.services.db

    async def process(self, job: InboundFaxJob) -> None:
        tiff = Path(job.stored_tiff or job.tiff_path)
        pdf = tiff.with_suffix(".pdf")
        await asyncio.to_thread(_convert, tiff, pdf)
        job.pdf_path = str(pdf)
        async with self.db.transaction() as tx:
            record = await tx.get(InboundFaxRecord, job.id)
            if record is not None:
                record.pdf_path = str(pdf)
        log.debug("PDF made: %s", pdf)


def _convert(tiff: Path, pdf: Path) -> None:
    write_durably(pdf, fax_tiff_to_pdf(tiff))
