"""Step `parse`: the raw MIME message becomes a subject, body text and attachments.

Where it sits: after `authenticate`, before `render`. It reads the stored message
(spool/incoming/<id>.eml) with the standard library's modern email API
(`email.policy.default`), decodes every transfer encoding and charset, and writes each
attachment's bytes to the job's work directory (parts/NN-name). Each attachment keeps
its declared MIME type and the type its content shows (magic bytes, via
`renderers.detect_type`), so the renderer never has to trust a file name.

The first text/plain and text/html parts that are not attachments are the body (the
cover page's text). Inline images referenced from the HTML body (cid:) are kept as
inline parts for the HTML renderer. A message with no attachment and an empty body has
nothing to fax and is rejected with a mail saying so.
"""

from __future__ import annotations

import asyncio
import logging
import re
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path

from bridge.outbound.jobs import Attachment, FaxJob
from bridge.outbound.pipeline import IntakeStep, RejectSubmission, StepContext
from renderers import detect_type

log = logging.getLogger("handlers.parse")

NOTHING_TO_FAX = (
    "Your message has no attachment and no text, so there is nothing to fax. Attach the"
    " document (PDF, image, Office or text file) or write the text in the message body,"
    " and send it again."
)


class Parse(IntakeStep):
    """Split the message into body text, HTML body and attachments stored on disk."""

    name = "parse"

    def __init__(self, context: StepContext) -> None:
        self.context = context

    async def process(self, job: FaxJob) -> None:
        parsed = await asyncio.to_thread(parse_message, Path(job.raw_path), Path(job.work_dir))
        job.subject, job.body_text, job.body_html, job.attachments = parsed
        log.info(
            "parsed: subject %r, %d body chars, %d attachment(s)",
            job.subject,
            len(job.body_text),
            len(job.attachments),
        )
        if not job.attachments and not job.body_text.strip() and not _html_has_text(job.body_html):
            raise RejectSubmission(NOTHING_TO_FAX)


def parse_message(raw_path: Path, work_dir: Path) -> tuple[str, str, str | None, list[Attachment]]:
    with raw_path.open("rb") as fh:
        message = BytesParser(policy=policy.default).parse(fh)
    assert isinstance(message, EmailMessage)
    subject = str(message.get("Subject", "") or "").strip()
    body_text = ""
    body_html: str | None = None
    attachments: list[Attachment] = []
    parts_dir = work_dir / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)

    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = part.get_filename() or ""
        is_body_candidate = disposition != "attachment" and not filename
        if is_body_candidate and content_type == "text/plain" and not body_text:
            body_text = _text_of(part)
            continue
        if is_body_candidate and content_type == "text/html" and body_html is None:
            body_html = _text_of(part)
            continue
        data = _bytes_of(part)
        if not data:
            continue
        index = len(attachments) + 1
        stored = parts_dir / f"{index:02d}-{_safe_name(filename) or 'part'}"
        stored.write_bytes(data)
        content_id = (part.get("Content-ID") or "").strip().strip("<>") or None
        attachments.append(
            Attachment(
                index=index,
                filename=filename or _default_name(index, content_type),
                declared_type=content_type,
                sniffed_type=detect_type(data, filename, content_type),
                size=len(data),
                path=str(stored.relative_to(work_dir)),
                inline=disposition == "inline" or (disposition is None and content_id is not None),
                content_id=content_id,
            )
        )
    return subject, body_text, body_html, attachments


def _text_of(part: EmailMessage) -> str:
    """Decoded text of a part; a charset Python does not know is read as UTF-8 with
    replacement characters rather than losing the text."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError):
        raw = part.get_payload(decode=True)  # bytes, or None for a part with no body
        return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
    return content if isinstance(content, str) else content.decode("utf-8", errors="replace")


def _bytes_of(part: EmailMessage) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes()
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _safe_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80].lstrip(".")


def _default_name(index: int, content_type: str) -> str:
    return f"part-{index}.{content_type.split('/')[-1]}"


def _html_has_text(html: str | None) -> bool:
    if not html:
        return False
    text = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>|&nbsp;", " ", html, flags=re.S | re.I)
    return bool(text.strip()) or "<img" in html.lower()
