"""Abuse reports as people and providers send them, for the tests and the benchmark.

Each builder returns the bytes of one message for the abuse mailbox: an ARF feedback
report (RFC 5965), spam forwarded as an attachment or inline, a junk-fax complaint with
the fax attached (a PDF with a text layer, or a TIFF whose header line faxbridge's own
renderer drew, read back by OCR), a complaint in words, and hostile ones.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid

ABUSE = "abuse@fax.test"


def _base(reporter: str, subject: str) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = reporter
    message["To"] = ABUSE
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="reporter.test")
    message["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    return message


def spam(number_text: str, *, reply_to: str | None = None) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Cheap Deals <deals@spammer.test>"
    message["To"] = "victim@example.org"
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = "Best prices on printer toner!!!"
    message["Message-ID"] = make_msgid(domain="spammer.test")
    message.set_content(f"Order now! Fax your order form to {number_text} today.\nLimited offer.\n")
    return message


def arf(reporter: str, number_text: str) -> bytes:
    message = _base(reporter, "FW: abuse report")
    message.set_content("This is an email abuse report for an email message received from IP 192.0.2.1.")
    message.make_mixed()
    message.replace_header("Content-Type", 'multipart/report; report-type=feedback-report')
    feedback = EmailMessage(policy=policy.SMTP)
    feedback.set_payload(
        "Feedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
        "Original-Mail-From: <deals@spammer.test>\r\nArrival-Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        "Source-IP: 192.0.2.1\r\n"
    )
    feedback["Content-Type"] = "message/feedback-report"
    message.attach(feedback)
    original = EmailMessage(policy=policy.SMTP)
    original.set_content(spam(number_text))
    message.attach(original)
    return message.as_bytes()


def attached(reporter: str, number_text: str, *, reply_to: str | None = None) -> bytes:
    message = _base(reporter, "Spam using one of your fax numbers")
    message.set_content("Hello abuse team, the attached spam asks people to reply by fax. Please stop it.\n")
    message.add_attachment(spam(number_text, reply_to=reply_to))
    return message.as_bytes()


def inline(reporter: str, number_text: str) -> bytes:
    message = _base(reporter, "Fwd: Best prices on printer toner!!!")
    message.set_content(
        "Please make this stop.\n\n"
        "---------- Forwarded message ---------\n"
        "From: Cheap Deals <deals@spammer.test>\n"
        "Date: Mon, 23 Nov 2026 09:00:00 +0000\n"
        "Subject: Best prices on printer toner!!!\n\n"
        f"Order now! Fax your order form to {number_text} today.\n"
    )
    return message.as_bytes()


def complaint(reporter: str, text: str) -> bytes:
    message = _base(reporter, "Complaint")
    message.set_content(text)
    return message.as_bytes()


def junk_fax_pdf(reporter: str, sending_number: str) -> bytes:
    from weasyprint import HTML

    pdf = HTML(
        string=(
            "<html><body style='font-family: DejaVu Sans'>"
            f"<p style='font-size:8pt'>2026-11-23 10:00 UTC From: ACME Deals Fax: {sending_number} Page 1/1</p>"
            "<h1>AMAZING OFFER</h1><p>Call 1-800-000-0000 to be removed.</p></body></html>"
        )
    ).write_pdf()
    message = _base(reporter, "Junk fax received")
    message.set_content("I received this unsolicited fax advertisement today. I never asked for it.\n")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="fax.pdf")
    return message.as_bytes()


_TIFF_CACHE: dict[str, bytes] = {}


def fax_tiff(sending_number: str) -> bytes:
    """A fax page whose header line is drawn by faxbridge's own renderer (a scan has
    no text layer: the number can only be read by OCR)."""
    if sending_number not in _TIFF_CACHE:
        import tempfile
        from pathlib import Path

        from PIL import Image

        from renderers.faxtiff import write_fax_tiff
        from renderers.header import header_strip, stamp
        from renderers.model import FaxHeader
        from renderers.raster import PageFrame

        frame = PageFrame.for_fax("a4", "fine", True)
        strip = header_strip(FaxHeader(datetime(2026, 11, 23, 10, 0, tzinfo=UTC), "ACME Deals", sending_number), frame)
        page = stamp(Image.new("1", (frame.width, frame.rows), 1), strip, 1, 1, frame)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "fax.tif"
            write_fax_tiff([page], path)
            _TIFF_CACHE[sending_number] = path.read_bytes()
    return _TIFF_CACHE[sending_number]


def junk_fax_tiff(reporter: str, sending_number: str) -> bytes:
    message = _base(reporter, "Unwanted fax")
    message.set_content("Another junk fax arrived on my machine. Scan attached.\n")
    message.add_attachment(fax_tiff(sending_number), maintype="image", subtype="tiff", filename="scan.tif")
    return message.as_bytes()


def malformed(reporter: str) -> bytes:
    """A multipart whose boundary never appears: nothing in it can be trusted."""
    return (
        f"From: {reporter}\r\nTo: {ABUSE}\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="never-there"\r\n\r\n'
        "This body has no parts at all, fax +1 555 010 0001\r\n"
    ).encode()


def nested(reporter: str, depth: int) -> bytes:
    """Messages attached inside messages, `depth` levels deep."""
    inner = EmailMessage(policy=policy.SMTP)
    inner["From"] = reporter
    inner["Subject"] = "level 0"
    inner.set_content("fax +1 555 010 0001")
    for level in range(1, depth):
        outer = EmailMessage(policy=policy.SMTP)
        outer["From"] = reporter
        outer["To"] = ABUSE
        outer["Subject"] = f"level {level}"
        outer.set_content("see attached")
        outer.add_attachment(inner)
        inner = outer
    return inner.as_bytes()


def looping(reporter: str, hops: int) -> bytes:
    received = "".join(
        f"Received: from hop{n}.test by hop{n + 1}.test; Mon, 23 Nov 2026 10:00:00 +0000\r\n" for n in range(hops)
    )
    return (received + f"From: {reporter}\r\nTo: {ABUSE}\r\nSubject: loop\r\n\r\nfax +1 555 010 0001\r\n").encode()


def huge(reporter: str, size: int) -> bytes:
    body = ("x" * 76 + "\r\n") * (size // 78 + 1)
    return (f"From: {reporter}\r\nTo: {ABUSE}\r\nSubject: huge\r\n\r\n" + body).encode()


def as_bytes(message: EmailMessage) -> bytes:
    out = io.BytesIO()
    out.write(message.as_bytes())
    return out.getvalue()
