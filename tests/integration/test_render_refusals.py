"""What a sender hears when a document cannot be faxed, over the real server: one mail
naming every refused file and why, the job ended cleanly, and the server goes on."""

from __future__ import annotations

import json
import smtplib
from email import policy
from email.parser import BytesParser

import pytest

from tests.integration.test_transmit import REMOTE, receipt_of, send_fax
from tests.renderers.documents import docx, encrypted_pdf, png_bomb, text_pdf
from tests.support import FAX_DOMAIN, Site, fax_message, wait_for


def send(site: Site, sender: str, attachments, *, subject: str) -> str:
    """Send one fax over SMTP; returns the queue id from the 250."""
    message = fax_message(sender, f"{REMOTE}@{FAX_DOMAIN}", subject=subject, attachments=attachments)
    with smtplib.SMTP("127.0.0.1", site.ports["mx"], timeout=30) as connection:
        connection.ehlo("client.example.com")
        connection.mail(sender)
        connection.rcpt(f"{REMOTE}@{FAX_DOMAIN}")
        code, reply = connection.data(message.as_bytes())
    assert code == 250, reply
    return reply.decode().removeprefix("2.0.0 Queued as ")


@pytest.mark.parametrize(
    "filename, mime, content, reason",
    [
        ("locked.pdf", "application/pdf", encrypted_pdf(), "password"),
        ("broken.pdf", "application/pdf", text_pdf()[:400], "incomplete"),
        ("huge.png", "image/png", png_bomb(), "pixels"),
        ("setup.exe", "application/octet-stream", b"MZ\x90\x00" + b"\x00" * 2000, "Accepted types"),
    ],
)
def test_a_document_that_cannot_be_faxed_is_named_in_a_mail_with_the_reason(running, filename, mime, content, reason):
    site = running
    job_id = send(site, "alice@example.com", [(filename, mime, content)], subject=f"Send {filename}")
    job = wait_for(lambda: (j := site.job(job_id))["state"] == "rejected" and j, timeout=60, what="the refusal")
    assert job["stage"] == "render"

    def refusal_mail():
        for raw in site.mailbox("alice@example.com"):
            notice = BytesParser(policy=policy.default).parsebytes(raw)
            if job_id in notice.get_body(("plain",)).get_content():
                return notice
        return None

    notice = wait_for(refusal_mail, timeout=30, what="the refusal mail")
    text = " ".join(notice.get_body(("plain",)).get_content().split())
    assert notice["Subject"] == f"Not sent: Send {filename}"
    assert filename in text and reason.lower() in text.lower(), text
    assert "you have not been charged" in text
    assert site.query("SELECT * FROM call_attempts WHERE job_id = ?", job_id) == []

    # The server goes on: the next fax is sent.
    next_id = send_fax(site, "alice@example.com", [REMOTE], pages=1, subject="Next")
    assert receipt_of(site, "alice@example.com", next_id)["Subject"] == "Sent: Next"


def test_nocover_in_the_subject_sends_only_the_documents(running):
    site = running
    job_id = send_fax(site, "alice@example.com", [REMOTE], pages=2, subject="Invoice nocover")
    receipt_of(site, "alice@example.com", job_id)
    rendered = json.loads(site.job(job_id)["payload"])["rendered"]
    assert rendered["page_count"] == 2
    assert [name for name, _ in rendered["pages_per_document"]] == ["invoice.pdf"]


@pytest.fixture
def strict_site(tmp_path):
    """A site whose faxes may have 2 pages and whose LibreOffice is missing."""
    from tests.conftest import register
    from tests.support import ThreadedServer

    site = Site(tmp_path, extra='[render]\nmax_pages = 2\nsoffice_path = "/nonexistent/soffice"\n').write()
    register(site, "alice@example.com")
    server = ThreadedServer(site.settings()).start()
    try:
        yield site
    finally:
        server.stop()


@pytest.mark.parametrize(
    "filename, mime, content, words",
    [
        ("long.pdf", "application/pdf", text_pdf(pages=3), ["more than the 2 pages", "several faxes"]),
        ("letter.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         docx(["Dear reader"]), ["letter.docx", "Accepted types"]),
    ],
)
def test_limits_and_a_missing_office_converter_are_explained_to_the_sender(strict_site, filename, mime, content, words):
    site = strict_site
    job_id = send(site, "alice@example.com", [(filename, mime, content)], subject="nocover")
    wait_for(lambda: site.job(job_id)["state"] == "rejected", timeout=60, what="the refusal")
    [raw] = wait_for(lambda: site.mailbox("alice@example.com"), timeout=30, what="the refusal mail")
    text = " ".join(BytesParser(policy=policy.default).parsebytes(raw).get_body(("plain",)).get_content().split())
    for word in words:
        assert word in text, text
