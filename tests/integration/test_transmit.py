"""Faxes leave over the built-in virtual line: real T.30 calls (spandsp), retries by
the rules of issue 4, attempts recorded once, and a receipt for the sender."""

from __future__ import annotations

import asyncio
import json
import smtplib
from email import policy
from email.parser import BytesParser
from pathlib import Path

from PIL import Image, ImageChops

from bridge.core.models import utcnow
from bridge.core.queue import JobQueue
from bridge.outbound.jobs import QUEUE_TRANSMIT, FaxJob, RenderedDocument
from renderers import write_fax_tiff
from tests.conftest import register
from tests.support import FAX_DOMAIN, ServerProcess, Site, ThreadedServer, fax_message, text_pdf, wait_for

REMOTE = "+15550100001"
BUSY, NO_ANSWER, HANGS_UP, NOISY = "+15550200001", "+15550200002", "+15550200003", "+15550200004"


def send_fax(site: Site, sender: str, numbers: list[str], *, pages: int = 2, subject: str = "Invoice") -> str:
    message = fax_message(
        sender,
        [f"{n}@{FAX_DOMAIN}" for n in numbers],
        subject=subject,
        attachments=[("invoice.pdf", "application/pdf", text_pdf(*[f"Invoice page {p + 1}" for p in range(pages)]))],
    )
    with smtplib.SMTP("127.0.0.1", site.ports["mx"], timeout=30) as connection:
        connection.ehlo("client.example.com")
        connection.mail(sender)
        for number in numbers:
            assert connection.rcpt(f"{number}@{FAX_DOMAIN}")[0] == 250
        code, reply = connection.data(message.as_bytes())
    assert code == 250, reply
    return reply.decode().removeprefix("2.0.0 Queued as ")


def attempts(site: Site, job_id: str, number: str):
    return site.query("SELECT * FROM call_attempts WHERE job_id = ? AND number = ? ORDER BY attempt", job_id, number)


def receipt_of(site: Site, sender: str, job_id: str):
    def find():
        for raw in site.mailbox(sender):
            message = BytesParser(policy=policy.default).parsebytes(raw)
            if job_id in message.get_body(("plain",)).get_content():
                return message
        return None

    return wait_for(find, timeout=60, what=f"the receipt of {job_id}")


def tiff_pages(path: Path) -> list[Image.Image]:
    with Image.open(path) as image:
        pages = []
        for index in range(image.n_frames):
            image.seek(index)
            pages.append(image.convert("1").copy())
        return pages


def test_fax_to_a_remote_machine_arrives_pixel_identical_and_the_sender_gets_a_receipt(running):
    site = running
    job_id = send_fax(site, "alice@example.com", [REMOTE], pages=2)
    receipt = receipt_of(site, "alice@example.com", job_id)
    assert receipt["Subject"] == "Sent: Invoice"
    text = receipt.get_body(("plain",)).get_content()
    assert f"{REMOTE}: delivered" in text and "pages sent: 3 of 3" in text  # cover + 2
    [pdf] = [part for part in receipt.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert pdf.get_content().startswith(b"%PDF")

    [received] = sorted((site.var / "faxline" / "remote" / REMOTE.lstrip("+")).glob("*.tif"))
    rendered = json.loads(site.job(job_id)["payload"])["rendered"]
    sent_pages, got_pages = tiff_pages(Path(rendered["tiff_path"])), tiff_pages(received)
    assert len(got_pages) == len(sent_pages) == 3
    for sent, got in zip(sent_pages, got_pages, strict=True):
        assert sent.size == got.size
        assert ImageChops.difference(sent.convert("L"), got.convert("L")).getbbox() is None  # G4 + ECM: exact

    [attempt] = attempts(site, job_id, REMOTE)
    assert attempt["outcome"] == "completed" and attempt["answered"] == 1 and attempt["pages_sent"] == 3
    assert attempt["line_seconds"] > 10


def test_busy_number_is_tried_three_times_with_growing_waits(running):
    site = running
    job_id = send_fax(site, "alice@example.com", [BUSY], pages=1)
    receipt = receipt_of(site, "alice@example.com", job_id)
    rows = attempts(site, job_id, BUSY)
    assert [r["outcome"] for r in rows] == ["busy", "busy", "busy"]
    assert all(r["answered"] == 0 for r in rows)  # R-USE-3: busy is never billable
    first, second, third = (_at(r["started_at"]) for r in rows)
    assert (second - first).total_seconds() >= 0.3
    assert (third - second).total_seconds() >= 0.6  # backoff_factor 2
    assert receipt["Subject"] == "Not sent: Invoice"
    assert "line was busy on every attempt" in " ".join(receipt.get_body(("plain",)).get_content().split())


def test_no_answer_is_retried_and_not_in_service_is_never_retried(running):
    site = running
    job_id = send_fax(site, "alice@example.com", [NO_ANSWER, "+12125550123"], pages=1)
    receipt = receipt_of(site, "alice@example.com", job_id)
    assert [r["outcome"] for r in attempts(site, job_id, NO_ANSWER)] == ["no_answer"] * 3
    assert [r["outcome"] for r in attempts(site, job_id, "+12125550123")] == ["not_in_service"]
    text = " ".join(receipt.get_body(("plain",)).get_content().split())
    assert "+12125550123: not sent (number not in service)" in text and "we did not try it again" in text


def test_a_machine_that_hangs_up_mid_fax_is_called_again_and_reported(running):
    site = running
    job_id = send_fax(site, "alice@example.com", [HANGS_UP], pages=2)
    receipt = receipt_of(site, "alice@example.com", job_id)
    rows = attempts(site, job_id, HANGS_UP)
    assert [r["outcome"] for r in rows] == ["dropped"] * 3
    assert all(r["answered"] == 1 and r["pages_sent"] == 1 for r in rows)  # billable attempts (R-USE-3)
    assert "not completed (the call was cut off)" in receipt.get_body(("plain",)).get_content()


def test_one_submission_to_four_numbers_is_rendered_once_and_sent_four_times_concurrently(running):
    site = running
    numbers = [f"+1555010000{n}" for n in range(1, 5)]
    job_id = send_fax(site, "alice@example.com", numbers, pages=3)
    receipt_of(site, "alice@example.com", job_id)
    rows = site.query("SELECT * FROM call_attempts WHERE job_id = ?", job_id)
    assert sorted(r["number"] for r in rows) == numbers
    assert {r["outcome"] for r in rows} == {"completed"}
    for number in numbers:
        assert len(list((site.var / "faxline" / "remote" / number.lstrip("+")).glob("*.tif"))) == 1
    spans = [(_at(r["started_at"]), _at(r["finished_at"])) for r in rows]
    overlapping = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert overlapping >= 2, "calls on a 4-channel line run at the same time"
    assert len(list((site.var / "spool" / "work" / job_id).glob("fax.tif"))) == 1


def test_premium_rate_numbers_are_refused_at_rcpt(running):
    site = running
    with smtplib.SMTP("127.0.0.1", site.ports["mx"], timeout=30) as connection:
        connection.ehlo("client.example.com")
        connection.mail("alice@example.com")
        code, reply = connection.rcpt(f"+19005550100@{FAX_DOMAIN}")
    assert code == 550 and reply.startswith(b"5.1.3") and b"premium-rate" in reply


def test_a_queued_fax_to_a_number_blocked_since_is_never_dialled_nor_billed(tmp_path):
    site = Site(tmp_path, extra='[transmit]\nblocked_prefixes = ["+1555010"]\n').write()
    account = register(site, "alice@example.com")
    server = ThreadedServer(site.settings()).start()
    try:
        work = site.var / "spool" / "work" / "Fblocked"
        work.mkdir(parents=True)
        page = Image.new("1", (1728, 2292), 1)
        write_fax_tiff([page], work / "fax.tif")
        (work / "fax.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
        fax = FaxJob(
            id="Fblocked", submission_id="Fblocked", account_id=account, envelope_from="alice@example.com",
            from_header="alice@example.com", recipients=[REMOTE], received_at=utcnow(), raw_path=str(work / "m.eml"),
            work_dir=str(work), subject="Queued before the block",
            rendered=RenderedDocument(tiff_path=str(work / "fax.tif"), pdf_path=str(work / "fax.pdf"), page_count=1),
        )

        async def enqueue() -> None:
            services = server.app.services
            assert services is not None
            async with services.db.transaction() as tx:
                JobQueue.add(tx, QUEUE_TRANSMIT, fax, job_id=fax.id)
            services.queue.wake(QUEUE_TRANSMIT)

        asyncio.run_coroutine_threadsafe(enqueue(), server.loop).result(10)
        receipt = receipt_of(site, "alice@example.com", "Fblocked")
        assert site.query("SELECT * FROM call_attempts") == []
        assert not (site.var / "faxline" / "remote" / REMOTE.lstrip("+")).exists()
        assert "not dialled (blocked number)" in receipt.get_body(("plain",)).get_content()
    finally:
        server.stop()


def test_a_crash_during_a_call_redials_after_restart_and_records_one_completed_attempt(tmp_path):
    # realtime: the call takes line time (tens of seconds), so the crash lands mid-call.
    site = Site(tmp_path, line_extra="realtime = true").write()
    register(site, "alice@example.com")
    server = ServerProcess(site).start()
    job_id = send_fax(site, "alice@example.com", [REMOTE], pages=1)
    wait_for(lambda: f"dialling {REMOTE}" in server.log.read_text(), timeout=60, what="the call to start")
    server.kill9()
    assert site.query("SELECT * FROM call_attempts") == []  # nothing recorded, nothing billed

    site.config.write_text(site.config.read_text().replace("realtime = true", "realtime = false"))
    restarted = ServerProcess(site).start()
    try:
        receipt = receipt_of(site, "alice@example.com", job_id)
        assert receipt["Subject"] == "Sent: Invoice"
        [attempt] = attempts(site, job_id, REMOTE)
        assert attempt["outcome"] == "completed" and attempt["attempt"] == 2  # the crashed try was attempt 1
    finally:
        restarted.terminate()


def _at(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)


def test_a_fax_to_another_customers_number_arrives_in_their_inbox_as_a_pdf(running):
    site = running
    bob = register(site, "bob@example.com")
    site.cli("number", "add", "+15550300001", "--account", str(bob))
    job_id = send_fax(site, "alice@example.com", ["+15550300001"], pages=2, subject="For Bob")
    assert receipt_of(site, "alice@example.com", job_id)["Subject"] == "Sent: For Bob"

    def inbound_mail():
        for raw in site.mailbox("bob@example.com"):
            message = BytesParser(policy=policy.default).parsebytes(raw)
            if any(part.get_content_type() == "application/pdf" for part in message.iter_attachments()):
                return message
        return None

    mail = wait_for(inbound_mail, timeout=60, what="Bob's inbound fax mail")
    assert "3 pages" in mail["Subject"], mail["Subject"]
    [pdf] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    from io import BytesIO

    from pypdf import PdfReader

    assert len(PdfReader(BytesIO(pdf.get_content())).pages) == 3  # cover + 2 pages, as sent
