"""The typed objects that flow through the queues, stored as each job's payload.

Where it sits: the SMTP intake creates a `FaxJob` for every accepted submission; the
intake pipeline's steps (handlers/) fill it in (parse adds the body and attachments,
render the fax document, ...), and later queues (transmit) carry it on. They are
pydantic models, so a job survives a restart exactly as it was: the runner saves the payload after each step.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from bridge.core.queue import QueueName

QUEUE_INTAKE, QUEUE_TRANSMIT, QUEUE_CALL = QueueName.INTAKE, QueueName.TRANSMIT, QueueName.CALL


class Attachment(BaseModel):
    """One part of the message that may become fax pages (or a cover page body)."""

    model_config = ConfigDict(extra="forbid")

    index: int
    filename: str
    declared_type: str
    sniffed_type: str
    size: int
    # Where parse stored the decoded bytes, relative to the job's spool directory.
    path: str
    inline: bool = False
    content_id: str | None = None


class RenderedDocument(BaseModel):
    """What the render step made: the fax to send and its preview for receipts."""

    model_config = ConfigDict(extra="forbid")

    tiff_path: str
    pdf_path: str
    page_count: int
    # (file name, pages) per faxed document, the cover page first when there is one.
    pages_per_document: list[tuple[str, int]] = Field(default_factory=list)
    # (file name, why) for parts that were not faxed, e.g. a signature logo.
    skipped: list[tuple[str, str]] = Field(default_factory=list)


class FaxJob(BaseModel):
    """A fax submission on its way from SMTP to the fax line."""

    model_config = ConfigDict(extra="forbid")

    id: str
    submission_id: str
    account_id: int
    envelope_from: str
    from_header: str
    # E.164 numbers, in the order the sender gave them, without repeats.
    recipients: list[str]
    received_at: datetime
    message_id: str = ""
    # The message exactly as received, and the directory the steps write into.
    raw_path: str
    work_dir: str
    # Filled by the parse step.
    subject: str = ""
    body_text: str = ""
    body_html: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    # Filled by the render step.
    rendered: RenderedDocument | None = None


class CallJob(BaseModel):
    """Sending one rendered fax to one number: a child of the fax's transmit job."""

    model_config = ConfigDict(extra="forbid")

    parent_id: str
    number: str
    # How it ended, once it has: a CallOutcome value or "blocked"; and the words for the
    # receipt.
    outcome: str | None = None
    detail: str = ""
    attempts: int = 0
    pages_sent: int = 0
    line_seconds: float = 0.0
    charged_minor: int = 0
