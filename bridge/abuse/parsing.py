"""Reading one abuse report: what kind it is, who sent it, and the text to search.

Where it sits: the classify step (handlers/abuse_classify.py) runs `read_report()` in an
executor (it is blocking work: MIME parsing, PDF text, OCR). Its result, a
`ReadReport`, carries every piece of text in which the match step looks for numbers.

Kinds (bridge.abuse.models): an ARF feedback report (RFC 5965: multipart/report;
report-type=feedback-report, the spam as its message/rfc822 or text/rfc822-headers
part), spam forwarded as a message/rfc822 attachment, spam forwarded inline, a junk-fax
complaint with the fax attached (PDF or TIFF: the header line of its first page,
R-ABUSE-1/2), or only the complainant's own words.

Hostile input (issue 7): a report too large, too deeply nested, with too many parts,
looping (too many Received headers, or our own mail come back) or with a broken MIME
structure raises `Unreadable` with the reason; the poller files it in Quarantine.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value, getaddresses

from bridge.abuse import faxtext
from bridge.abuse.models import (
    KIND_ARF,
    KIND_ATTACHED,
    KIND_COMPLAINT,
    KIND_INLINE,
    KIND_JUNK_FAX,
)

# Set on every mail the abuse desk sends, so one coming back is known for a loop.
LOOP_HEADER = "X-Faxbridge-Abuse"

_FORWARD_MARKERS = re.compile(
    r"^(-{2,}\s*(forwarded message|original message|begin forwarded message)\s*-{2,}"
    r"|begin forwarded message:|>?\s*from:\s.+@)",
    re.I | re.M,
)
_JUNK_FAX_WORDS = re.compile(r"\b(junk|unsolicited|unwanted|spam)\s+fax", re.I)
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]{0,2000}>", re.I | re.S)
_FAX_TYPES = {"application/pdf", "image/tiff", "image/tif", "image/x-tiff"}
_FAX_SUFFIXES = (".pdf", ".tif", ".tiff")
# The structural defects after which a report cannot be trusted to mean anything.
_FATAL_DEFECTS = (
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.CloseBoundaryNotFoundDefect,
)


class Unreadable(Exception):
    """The report cannot be processed; `reason` is what the operator reads in the case log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int
    max_mime_depth: int
    max_parts: int
    max_received_headers: int
    max_text_chars: int
    ocr: bool
    ocr_timeout_seconds: float


@dataclass
class ReadReport:
    kind: str
    reporter: str
    subject: str
    message_id: str
    # RFC 3834: never answer an automatic message (ARF from a provider, a bounce).
    auto_submitted: bool
    # (where, text): the places the match step searches, e.g. ("fax header", "...").
    texts: list[tuple[str, str]] = field(default_factory=list)
    # The complainant's own words mention a junk fax (R-ABUSE-1) without attaching it.
    mentions_junk_fax: bool = False


def read_report(raw: bytes, limits: Limits, own_addresses: frozenset[str]) -> ReadReport:
    """Classify one report and gather its text; raises Unreadable with the reason."""
    if len(raw) > limits.max_message_bytes:
        raise Unreadable(f"too large: {len(raw)} bytes (limit {limits.max_message_bytes})")
    if not raw.strip():
        raise Unreadable("empty message")
    _check_nesting_before_parsing(raw, limits)
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except RecursionError:
        raise Unreadable(f"nested too deeply to parse (limit {limits.max_mime_depth} levels)") from None
    except (email_errors.MessageError, ValueError, LookupError) as error:
        raise Unreadable(f"malformed MIME: {error}") from None
    assert isinstance(message, EmailMessage)

    reporter = _address(message, "From")
    if not reporter:
        raise Unreadable("no readable From address: cannot tell who reported it")
    if reporter.lower() in own_addresses or message.get(LOOP_HEADER) is not None:
        raise Unreadable("mail loop: this is the abuse desk's own mail come back")
    received = len(message.get_all("Received") or [])
    if received > limits.max_received_headers:
        raise Unreadable(f"mail loop: {received} Received headers (limit {limits.max_received_headers})")

    parts = list(_walk(message, limits))
    for part, _depth in parts:
        for defect in part.defects:
            if isinstance(defect, _FATAL_DEFECTS):
                raise Unreadable(f"broken MIME structure: {type(defect).__name__}")

    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    report = ReadReport(
        kind=KIND_COMPLAINT,
        reporter=reporter,
        subject=_header(message, "Subject"),
        message_id=_header(message, "Message-ID"),
        auto_submitted=auto not in ("", "no"),
    )
    budget = _Budget(limits.max_text_chars)

    report_type = message.get_param("report-type", "")
    if isinstance(report_type, tuple):
        # The type allows an RFC 2231 (charset, language, text) triple; policy.default
        # hands back decoded text, so this only keeps a triple from failing on .lower().
        report_type = collapse_rfc2231_value(report_type)
    if message.get_content_type() == "multipart/report" and report_type.lower() == "feedback-report":
        report.kind = KIND_ARF
        _read_arf(message, report, budget, limits)
        return report

    faxes = [p for p, _ in parts if p is not message and _is_fax(p)]
    attached = [p for p, _ in parts if p is not message and p.get_content_type() == "message/rfc822"]
    own_words = _own_text(message, limits)
    report.texts.append(("complaint", budget.take(own_words)))
    report.mentions_junk_fax = bool(_JUNK_FAX_WORDS.search(own_words) or _JUNK_FAX_WORDS.search(report.subject))
    if faxes:
        report.kind = KIND_JUNK_FAX
        fax = faxes[0]
        header = faxtext.first_page_header(
            _body_bytes(fax), fax.get_content_type(), fax.get_filename() or "", limits.ocr, limits.ocr_timeout_seconds
        )
        report.texts.insert(0, ("fax header", budget.take(header)))
    elif attached:
        report.kind = KIND_ATTACHED
        for part in attached:
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                report.texts.append(("forwarded message", budget.take(_message_text(inner, limits))))
    elif _FORWARD_MARKERS.search(own_words):
        report.kind = KIND_INLINE
    return report


def _read_arf(message: EmailMessage, report: ReadReport, budget: _Budget, limits: Limits) -> None:
    """RFC 5965: part 1 human-readable, part 2 message/feedback-report, part 3 the spam."""
    payload = message.get_payload()
    # The parser makes every part of a multipart a Message; the str is only for payloads built by hand.
    parts = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
    if len(parts) < 2:
        raise Unreadable("ARF report without its machine-readable part")
    feedback = parts[1]
    if feedback.get_content_type() != "message/feedback-report":
        raise Unreadable(
            f"ARF report whose second part is {feedback.get_content_type()}, not message/feedback-report"
        )
    report.texts.append(("human-readable part", budget.take(_text_of(parts[0]))))
    fields = _raw_text(feedback)
    if not re.search(r"^feedback-type\s*:", fields, re.I | re.M):
        raise Unreadable("ARF report without a Feedback-Type field")
    report.texts.append(("feedback report", budget.take(fields)))
    if len(parts) >= 3:
        original = parts[2]
        if original.get_content_type() == "message/rfc822":
            inner = original.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                report.texts.append(("reported message", budget.take(_message_text(inner, limits))))
        else:
            report.texts.append(("reported headers", budget.take(_raw_text(original))))


def _check_nesting_before_parsing(raw: bytes, limits: Limits) -> None:
    """The stdlib parser recurses per nested message; refuse a bomb before it runs.
    Counting boundary declarations over-counts (quoted text), so allow twice the limit."""
    declared = len(re.findall(rb"(?im)^content-type:\s*(multipart/|message/rfc822)", raw))
    if declared > max(2 * limits.max_mime_depth, limits.max_parts):
        raise Unreadable(
            f"{declared} nested messages or multiparts declared"
            f" (limit {limits.max_parts} parts, {limits.max_mime_depth} levels)"
        )


def _walk(message: Message, limits: Limits) -> Iterator[tuple[Message, int]]:
    """Every part with its depth; raises Unreadable past the depth or part limits."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    count = 0
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > limits.max_parts:
            raise Unreadable(f"more than {limits.max_parts} MIME parts")
        if depth > limits.max_mime_depth:
            raise Unreadable(f"nested more than {limits.max_mime_depth} levels deep")
        yield part, depth
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))


def _is_fax(part: Message) -> bool:
    if part.is_multipart():
        return False
    filename = (part.get_filename() or "").lower()
    return part.get_content_type() in _FAX_TYPES or filename.endswith(_FAX_SUFFIXES)


def _own_text(message: Message, limits: Limits) -> str:
    """The complainant's words: text parts outside any attached message."""
    texts: list[str] = []
    stack: list[Message] = [message]
    while stack:
        part = stack.pop()
        if part.get_content_type() == "message/rfc822":
            continue
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(reversed([c for c in children if isinstance(c, Message)]))
            continue
        if part.get_content_maintype() == "text" and part.get_content_disposition() != "attachment":
            texts.append(_text_of(part))
    return "\n".join(texts)


def _message_text(message: Message, limits: Limits) -> str:
    """A reported message: the headers that carry reply channels, then its text."""
    headers = [
        f"{name}: {value}"
        for name in ("From", "Reply-To", "To", "Cc", "Subject")
        for value in (message.get_all(name) or [])
    ]
    return "\n".join(headers) + "\n\n" + _own_text(message, limits)


def _text_of(part: Message) -> str:
    if part.get_content_maintype() != "text":
        return ""
    data = _body_bytes(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    if part.get_content_subtype() == "html":
        text = html.unescape(_TAGS.sub(" ", text))
    return text


def _raw_text(part: Message) -> str:
    """A part whose body is header-like (feedback report, rfc822-headers) as text."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(str(p) for p in payload if isinstance(p, Message))
    return _body_bytes(part).decode("utf-8", errors="replace")


def _body_bytes(part: Message) -> bytes:
    """The transfer-decoded body of a leaf part; b"" when it has none (decode=True gives
    None for a multipart, and typeshed also allows a Message)."""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _header(message: Message, name: str) -> str:
    try:
        return str(message.get(name, "") or "")[:998]
    except (email_errors.HeaderParseError, ValueError, IndexError):
        return ""


def _address(message: Message, name: str) -> str:
    try:
        values = [str(v) for v in message.get_all(name) or []]
    except (email_errors.HeaderParseError, ValueError, IndexError):
        return ""
    for _, address in getaddresses(values):
        if "@" in address:
            return address.strip()[:320]
    return ""


class _Budget:
    """At most `limit` characters of text in all, so a huge body cannot make the number
    search slow."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, text: str) -> str:
        text = text[: max(self.left, 0)]
        self.left -= len(text)
        return text
