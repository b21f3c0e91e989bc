"""The words faxbridge mails to people: rejections now; receipts and notices later.

Where it sits: steps and runners build a message here and hand it to the outbox. Each
notice is plain text, friendly, says what happened, why, and what to do next, and
carries the job reference for support. Service notices carry no opt-out (R-MAIL-2).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING

from bridge.outbound.jobs import FaxJob

if TYPE_CHECKING:
    from bridge.settings import Settings


@dataclass(frozen=True)
class CallReport:
    """How sending to one number ended, for the receipt."""

    number: str
    outcome: str  # a CallOutcome value, or "blocked"
    detail: str  # the line's own sentence about the last attempt
    attempts: int
    pages_sent: int
    line_seconds: float
    cost: str | None  # money as charged, when metering is on


# What a sender should do next, by how the last attempt ended.
_NEXT_STEP = {
    "completed": "",
    "busy": "The line was busy on every attempt. Send the fax again later, or check the number with the recipient.",
    "no_answer": "Nobody answered. Check that the number is a fax machine and that it is switched on, then send again.",
    "not_in_service": "The number is not in service. Check the number; we did not try it again.",
    "training_failed": "A fax machine answered, but the connection was too poor to send. Send again later.",
    "dropped": ("The receiving machine hung up before the end. Send the fax again; if it keeps happening, "
                "ask the recipient to check their machine."),
    "blocked": "We do not dial premium-rate, pay-per-call or emergency numbers. Nothing was charged.",
}


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


    def receipt(self, job: FaxJob, calls: list[CallReport], pdf: bytes | None) -> EmailMessage:
        """The fax's result for every number, with the fax as sent attached (PDF)."""
        sent = [c for c in calls if c.outcome == "completed"]
        pages = job.rendered.page_count if job.rendered else 0
        if len(sent) == len(calls):
            headline = f"Sent: {job.subject or 'your fax'}"
            summary = f"Your fax ({pages} page{'s' if pages != 1 else ''}) was delivered to every number."
        elif sent:
            headline = f"Partly sent: {job.subject or 'your fax'}"
            summary = (f"Your fax ({pages} page{'s' if pages != 1 else ''}) was delivered to "
                       f"{len(sent)} of {len(calls)} numbers.")
        else:
            headline = f"Not sent: {job.subject or 'your fax'}"
            summary = f"Your fax ({pages} page{'s' if pages != 1 else ''}) could not be delivered."
        lines = ["Hello,", "", summary, ""]
        for call in calls:
            lines.append(f"{call.number}: {_OUTCOME_WORDS.get(call.outcome, call.outcome)}")
            lines.append(f"    pages sent: {call.pages_sent} of {pages}   line time: {_duration(call.line_seconds)}   "
                         f"attempts: {call.attempts}")
            if call.cost is not None:
                lines.append(f"    cost: {call.cost}")
            if call.detail:
                lines.append(_indent(call.detail))
            next_step = _NEXT_STEP.get(call.outcome, "")
            if next_step:
                lines.append(_indent(next_step))
            lines.append("")
        lines.append("The fax as it was sent is attached (PDF).")
        lines.append(f"Reference: {job.id}. Quote it if you contact us.")
        message = self._message(job.envelope_from, headline, "\n".join(lines), in_reply_to=job.message_id)
        if pdf is not None:
            message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"fax-{job.id}.pdf")
        return message


_OUTCOME_WORDS = {
    "completed": "delivered",
    "busy": "not sent (busy)",
    "no_answer": "not sent (no answer)",
    "not_in_service": "not sent (number not in service)",
    "training_failed": "not sent (poor connection)",
    "dropped": "not completed (the call was cut off)",
    "blocked": "not dialled (blocked number)",
}


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _indent(text: str) -> str:
    return textwrap.fill(text, width=72, initial_indent="    ", subsequent_indent="    ")


def _when(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True) if moment.tzinfo else moment.isoformat()
