"""The typed job of the `inbound` queue: one received fax on its way to the customer.

Where it sits: `InboundIntake.accept` creates it when the fax line hands over a fax;
each step of the inbound pipeline (handlers/inbound_*.py) fills in its part; the
runner saves it with the fax's outcome in the batch commit.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from bridge.core.queue import QueueName
from bridge.mail.outbox import StoredMail

QUEUE_INBOUND = QueueName.INBOUND


class Footer(BaseModel):
    """What `decorate` decided to add to the mail (R-MAIL-1, R-MAIL-3)."""

    model_config = ConfigDict(extra="forbid")

    promotional: bool
    text: str
    html: str
    # The List-Unsubscribe header value; "" for mail without promotional content.
    list_unsubscribe: str = ""


class InboundFaxJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str  # the fax's id (inbound_faxes.id), also the job's
    account_id: int
    to_number: str
    number_kind: str
    caller_number: str
    remote_station_id: str
    pages: int
    line_seconds: float
    received_at: datetime
    # The received TIFF in the spool; `store` moves it into the message center.
    tiff_path: str
    # Filled by the steps.
    stored_tiff: str = ""
    pdf_path: str = ""
    footer: Footer | None = None
    # The fax mails `deliver` stored (signed, in the spool); queued in the batch commit.
    mails: list[StoredMail] = Field(default_factory=list)
