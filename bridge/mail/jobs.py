"""The mail queue's job: a message the service sends, stored before it is queued.

Where it sits: the outbox (bridge.mail.outbox) stores each mail and queues an
`OutgoingMail` on the `mail` queue; the mail runner (bridge.mail.transports) delivers it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bridge.core.queue import QueueName
from bridge.mail.kinds import MailKind

QUEUE_MAIL = QueueName.MAIL


class OutgoingMail(BaseModel):
    """A message the service sends (receipt, notice, rejection), stored before it is
    queued; the mail runner delivers it through the configured transport."""

    model_config = ConfigDict(extra="forbid")

    mail_from: str
    rcpt_tos: list[str]
    eml_path: str
    kind: MailKind  # stored as its value
    # The job the mail is about, for `jobs show` and logs.
    about_job: str | None = None
