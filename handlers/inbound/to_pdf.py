"""Inbound step `to-pdf`: the received fax as a PDF, its pages not re-encoded.

Where it sits: after `store`, before `decorate`. img2pdf (renderers.fax_tiff_to_pdf)
wraps each CCITT G4 page as it is, so the PDF shows exactly the received pixels and is
as small as the fax. Runs in an inbound worker process (bridge.inbound.workpool); the
PDF is written beside the TIFF; the runner fsyncs it and its directory and records the
path in the batch commit.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bridge.core.spool import write_durably
from bridge.inbound.jobs import InboundFaxJob
from bridge.inbound.pipeline import InboundContext, InboundStep
from bridge.inbound.workpool import WorkContext
from renderers import fax_tiff_to_pdf

log = logging.getLogger("bridge.inbound")


class ToPdf(InboundStep):
    """Make <fax id>.pdf from the stored TIFF without re-encoding it."""

    name = "to-pdf"

    def __init__(self, context: InboundContext) -> None:
        self.work = context.work

    async def process(self, job: InboundFaxJob) -> None:
        job.pdf_path = await self.work.run(make_pdf, job.stored_tiff or job.tiff_path)
        log.debug("PDF made: %s", job.pdf_path)


def make_pdf(_context: WorkContext, tiff: str) -> str:
    """In a worker: <name>.pdf beside the TIFF, durably; returns its path."""
    pdf = Path(tiff).with_suffix(".pdf")
    # The runner fsyncs the batch's files and directories before its commit.
    write_durably(pdf, fax_tiff_to_pdf(Path(tiff)), sync_directory=False, sync_file=False)
    return str(pdf)
