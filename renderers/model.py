"""The typed objects that flow into and out of rendering.

The intake pipeline's ``render`` step builds ``SourceDocument``s from a parsed
mail, calls ``renderers.render_fax`` with ``RenderOptions`` (and a ``CoverPage``
and ``FaxHeader`` when it wants them) and gets a ``RenderedFax`` back, or a
``DocumentsRefused`` naming every document that cannot be faxed and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class SourceDocument:
    """One thing a sender wants faxed: an attachment or a mail body."""

    filename: str                       # as the sender named it ("" for a body)
    content: bytes
    declared_type: str | None = None    # MIME type the mail declared, parameters allowed
    content_id: str | None = None       # Content-ID without <>, for cid: references from HTML
    inline: bool = False                # Content-Disposition inline (signature logos etc.)

    @property
    def label(self) -> str:
        """How to name this document to its sender."""
        return self.filename or "the message body"


@dataclass(frozen=True)
class FaxHeader:
    """The header line US 47 CFR 68.318(d) requires at the top of every page."""

    sent_at: datetime
    sender_name: str
    sending_number: str


@dataclass(frozen=True)
class CoverPage:
    """What the cover page says; the page count is filled in by rendering."""

    sender: str
    recipient_numbers: tuple[str, ...]
    subject: str
    body_text: str
    date: datetime


@dataclass(frozen=True)
class RenderOptions:
    """How to render one fax. Every limit is the caller's (from config), not ours."""

    resolution: Literal["fine", "standard"] = "fine"
    compression: Literal["g4", "g3-1d", "g3-2d"] = "g4"
    paper: Literal["a4", "letter"] = "a4"
    max_pages: int = 200
    max_input_bytes: int = 50 * 1024 * 1024
    document_timeout_seconds: float = 60
    document_memory_bytes: int = 1024 * 1024 * 1024
    # Images larger than this many pixels are refused before decoding (bombs).
    max_image_pixels: int = 60_000_000
    # Inline images smaller than this in both directions are signature logos and
    # the like: skipped rather than faxed as pages of their own.
    tiny_image_pixels: int = 300
    soffice_path: str = "soffice"


@dataclass(frozen=True)
class RenderedFax:
    """The rendered fax on disk and what went into it."""

    tiff_path: Path
    page_count: int
    pages_per_document: tuple[tuple[str, int], ...]   # (filename, pages), cover as "cover page"
    skipped: tuple[tuple[str, str], ...]              # (filename, why)


class DocumentRefused(Exception):
    """One document cannot be faxed. ``reason`` is a sentence for the sender."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename or 'the message body'}: {reason}")
        self.filename = filename
        self.reason = reason


class DocumentsRefused(DocumentRefused):
    """Several documents of one submission cannot be faxed.

    A subclass of ``DocumentRefused`` whose ``filename`` and ``reason`` are those of
    the first refusal, so callers that handle one refusal keep working; ``refusals``
    lists all of them in the order of the documents.
    """

    def __init__(self, refusals: list[DocumentRefused]) -> None:
        if not refusals:
            raise ValueError("DocumentsRefused needs at least one refusal")
        first = refusals[0]
        super().__init__(first.filename, first.reason)
        self.refusals = tuple(refusals)
        self.args = ("; ".join(str(refusal) for refusal in refusals),)
