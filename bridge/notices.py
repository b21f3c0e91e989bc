"""The words faxbridge mails to people: rejections now; receipts and notices later.

Where it sits: steps and runners build a message here and hand it to the outbox. Each
notice is plain text, friendly, says what happened, why, and what to do next, and
carries the job reference for support. Service notices carry no opt-out (R-MAIL-2).
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from bridge.jobs import FaxJob
from bridge.settings import Settings


class Notices:
    def __init__(self, settings: Settings) -> None:
        self.service = settings.service

    def _message(self, to: str, subject: str, body: str, *, in_reply_to: str = "") -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.service.notices_from
        message["To"] = to
        message["Subject"] = subject
        message["Auto-Submitted"] = "auto-replied"
        if in_reply_to:
            message["In-Reply-To"] = in_reply_to
            message["References"] = in_reply_to
        signature = f"\n-- \n{self.service.name}\n{self.service.postal_address}\n"
        message.set_content(body.rstrip() + "\n" + signature)
        return message

    def rejection(self, job: FaxJob, reason: str, *, rule: str | None = None) -> EmailMessage:
        """Tell the sender their submission will not be faxed, why, and what to do."""
        numbers = ", ".join(job.recipients) or "(no number)"
        subject_quote = f'"{job.subject}"' if job.subject else "without a subject"
        body = (
            "Hello,\n\n"
            f"We received your message {subject_quote} for fax number(s) {numbers}\n"
            f"on {_when(job.received_at)}, but we did not send it as a fax:\n\n"
            f"{_indent(reason)}\n\n"
            "Nothing was sent and you have not been charged for this message.\n"
            "Once the problem above is fixed, simply send your message again.\n\n"
            f"Reference: {job.id}{f' (rule {rule})' if rule else ''}. Quote it if you contact us.\n"
        )
        title = job.subject or "your fax"
        return self._message(
            job.envelope_from,
            f"Not sent: {title}",
            body,
            in_reply_to=job.message_id,
        )


def _indent(text: str) -> str:
    return textwrap.fill(text, width=72, initial_indent="    ", subsequent_indent="    ")


def _when(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True) if moment.tzinfo else moment.isoformat()
