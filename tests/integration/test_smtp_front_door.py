"""The SMTP front door, driven over real sockets with smtplib and swaks, the way a
customer's mail program or a mail admin's relay talks to it."""

from __future__ import annotations

import json
import smtplib
import ssl
import subprocess
from email import policy
from email.parser import BytesParser

import pytest

from tests.conftest import register
from tests.support import FAX_DOMAIN, MINIMAL_PDF, Site, fax_message, past_intake, wait_for

NUMBER = f"+12125550100@{FAX_DOMAIN}"


def client(site: Site, listener: str = "mx") -> smtplib.SMTP:
    connection = smtplib.SMTP("127.0.0.1", site.ports[listener], timeout=30)
    connection.ehlo("client.example.com")
    return connection


def insecure_tls() -> ssl.SSLContext:
    # The fresh install's certificate is self-signed: a customer's client is told to
    # trust it; the test does the same.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def queue_id_of(reply: bytes) -> str:
    text = reply.decode()
    assert text.startswith("2.0.0 Queued as "), text
    return text.removeprefix("2.0.0 Queued as ")


def send(site: Site, message, *, sender: str | None = None, to: list[str] | None = None) -> tuple[int, bytes]:
    with client(site) as connection:
        connection.mail(sender or message["From"])
        for address in to or [message["To"]]:
            code, reply = connection.rcpt(address)
            assert code == 250, (address, code, reply)
        return connection.data(message.as_bytes())


def test_registered_sender_gets_250_and_the_fax_is_parsed_rendered_and_answered(site, server, alice):
    message = fax_message(alice, NUMBER, attachments=[("contract.pdf", "application/pdf", MINIMAL_PDF)])
    code, reply = send(site, message)
    assert code == 250
    job_id = queue_id_of(reply)

    job = wait_for(lambda: past_intake(site, job_id), what="intake to finish")
    payload = json.loads(job["payload"])
    assert payload["recipients"] == ["+12125550100"]
    assert payload["subject"] == "Contract"
    assert [a["filename"] for a in payload["attachments"]] == ["contract.pdf"]
    assert payload["attachments"][0]["sniffed_type"] == "application/pdf"
    # A cover page (subject and body) and the PDF's one page.
    assert payload["rendered"]["page_count"] == 2
    # The number is not a fax machine of the virtual network: the receipt says so.
    wait_for(lambda: site.job(job_id)["state"] == "done", what="the fax to be sent")
    [receipt] = wait_for(lambda: site.mailbox(alice), what="the receipt")
    assert b"Subject: Not sent: Contract" in receipt and b"not in service" in receipt


def test_starttls_is_offered_and_auth_only_after_it(site, server, alice):
    with client(site) as connection:
        assert connection.has_extn("starttls")
        assert not connection.has_extn("auth"), "AUTH must not be offered in clear text"
        code, reply = connection.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUuY29tADI0Njg=")
        assert code == 538 and b"5.7.11" in reply
        connection.starttls(context=insecure_tls())
        connection.ehlo("client.example.com")
        assert "PLAIN" in connection.esmtp_features["auth"] and "LOGIN" in connection.esmtp_features["auth"]
        code, _ = connection.login(alice, "2468")
        assert code == 235


def test_wrong_pin_is_refused_with_535(site, server, alice):
    with client(site) as connection:
        connection.starttls(context=insecure_tls())
        connection.ehlo("client.example.com")
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            connection.login(alice, "0000")
        assert refused.value.smtp_code == 535
        assert b"5.7.8" in refused.value.smtp_error


def test_submission_listener_requires_tls_then_auth(site, server, alice):
    with client(site, "submission") as connection:
        code, reply = connection.mail(alice)
        assert code == 530, reply  # STARTTLS first
        connection.starttls(context=insecure_tls())
        connection.ehlo("client.example.com")
        code, reply = connection.mail(alice)
        assert code == 530 and b"5.7.0" in reply  # then AUTH
        connection.login(alice, "2468")
        code, _ = connection.mail(alice)
        assert code == 250
        assert connection.rcpt(NUMBER)[0] == 250
        message = fax_message(alice, NUMBER, attachments=[("a.pdf", "application/pdf", MINIMAL_PDF)])
        code, reply = connection.data(message.as_bytes())
        assert code == 250, reply


def test_implicit_tls_listener_accepts_a_logged_in_submission(site, server, alice):
    with smtplib.SMTP_SSL("127.0.0.1", site.ports["smtps"], context=insecure_tls(), timeout=30) as connection:
        connection.ehlo("client.example.com")
        connection.login(alice, "2468")
        message = fax_message(alice, NUMBER, attachments=[("a.pdf", "application/pdf", MINIMAL_PDF)])
        refused = connection.send_message(message)
        assert refused == {}


def test_logged_in_user_cannot_send_for_another_account(site, server, alice):
    register(site, "bob@example.com", pin="1357")
    with client(site) as connection:
        connection.starttls(context=insecure_tls())
        connection.ehlo("client.example.com")
        connection.login("bob@example.com", "1357")
        connection.mail(alice)
        connection.rcpt(NUMBER)
        code, reply = connection.data(fax_message(alice, NUMBER).as_bytes())
        assert code == 550 and b"5.7.1" in reply and b"logged in as bob@example.com" in reply


def test_size_is_advertised_and_oversized_mail_refused_552(tmp_path):
    site = Site(tmp_path, extra="").write()
    limited = 'hostname = "faxbridge.test"\nmax_message_size = 100000'
    site.config.write_text(site.config.read_text().replace('hostname = "faxbridge.test"', limited))
    from tests.support import ThreadedServer

    register(site, "alice@example.com")
    running = ThreadedServer(site.settings()).start()
    try:
        with client(site) as connection:
            assert connection.esmtp_features["size"] == "100000"
            code, reply = connection.mail("alice@example.com", ["SIZE=200000"])
            assert code == 552 and b"5.3.4" in reply
        big = fax_message(
            "alice@example.com", NUMBER, attachments=[("big.pdf", "application/pdf", b"%PDF" + b"x" * 150_000)]
        )
        with client(site) as connection:
            connection.mail("alice@example.com")
            connection.rcpt(NUMBER)
            code, reply = connection.data(big.as_bytes())
            assert code == 552 and b"5.3.4" in reply and b"100000 bytes" in reply, (code, reply)
    finally:
        running.stop()


def test_more_than_50_recipients_are_refused_452(site, server, alice):
    with client(site) as connection:
        connection.mail(alice)
        codes = [connection.rcpt(f"+1212555{n:04d}@{FAX_DOMAIN}")[0] for n in range(51)]
        assert codes[:50] == [250] * 50
        code, reply = connection.rcpt(f"+12125559999@{FAX_DOMAIN}")
        assert code == 452 and b"4.5.3" in reply


def test_other_domains_are_relay_denied(site, server, alice):
    with client(site) as connection:
        connection.mail(alice)
        code, reply = connection.rcpt("someone@gmail.com")
        assert (code, reply) == (550, b"5.7.1 Relay access denied")


@pytest.mark.parametrize(
    "local_part, reason",
    [
        ("123", b"too few digits"),
        ("+99912345678", b"country code does not exist"),
        ("+1212555010012345678", b"too many digits"),
        ("12-34", b"too few digits"),
    ],
)
def test_numbers_that_cannot_be_valid_are_refused_550_5_1_3(site, server, alice, local_part, reason):
    with client(site) as connection:
        connection.mail(alice)
        code, reply = connection.rcpt(f"{local_part}@{FAX_DOMAIN}")
        assert code == 550 and reply.startswith(b"5.1.3") and reason in reply, reply


@pytest.mark.parametrize(
    "local_part", ["signup", "abuse", "account", "broadcast", "postmaster-nobody", "unsubscribe", "bounces+x"]
)
def test_service_addresses_without_a_handler_yet_are_unknown_550_5_1_1(site, server, alice, local_part):
    with client(site) as connection:
        connection.mail(alice)
        code, reply = connection.rcpt(f"{local_part}@{FAX_DOMAIN}")
        assert code == 550 and reply.startswith(b"5.1.1"), reply


def test_written_forms_of_numbers_are_normalised_to_e164(site, server, alice):
    forms = [
        f"+1-212-555-0101@{FAX_DOMAIN}",
        f"0044.20.7946.0000@{FAX_DOMAIN}",
        f"FAX=+33142685300@{FAX_DOMAIN}",
        f"(2125550102)@{FAX_DOMAIN}".replace("(", "").replace(")", ""),  # national, default region US
        f"+12125550101@{FAX_DOMAIN.upper()}",  # same number again: faxed once
    ]
    message = fax_message(alice, forms[0], attachments=[("a.pdf", "application/pdf", MINIMAL_PDF)])
    code, reply = send(site, message, to=forms)
    assert code == 250, reply
    job_id = queue_id_of(reply)
    job = wait_for(lambda: past_intake(site, job_id))
    assert json.loads(job["payload"])["recipients"] == ["+12125550101", "+442079460000", "+33142685300", "+12125550102"]


def test_unregistered_sender_is_refused_at_data_with_a_reason(site, server, alice):
    message = fax_message("mallory@example.net", NUMBER)
    with client(site) as connection:
        connection.mail("mallory@example.net")
        assert connection.rcpt(NUMBER)[0] == 250
        code, reply = connection.data(message.as_bytes())
    assert code == 550 and reply.startswith(b"5.7.1")
    assert b"mallory@example.net is not registered" in reply


def test_from_header_must_belong_to_the_same_account(site, server, alice):
    register(site, "bob@example.com")
    message = fax_message(alice, NUMBER, from_header="Bob <bob@example.com>")
    code, reply = send(site, message, sender=alice)
    assert code == 550 and b"5.7.1" in reply and b"bob@example.com is not a registered address" in reply


def test_suspended_account_cannot_send(site, server):
    register(site, "carol@example.com", state="suspended")
    code, reply = send(site, fax_message("carol@example.com", NUMBER))
    assert code == 550 and b"suspended" in reply


def test_same_message_twice_is_acknowledged_but_processed_once(site, server, alice):
    raw = fax_message(
        alice, NUMBER, message_id="<once@example.com>", attachments=[("a.pdf", "application/pdf", MINIMAL_PDF)]
    ).as_bytes()
    replies = []
    for hop in (b"", b"Received: from relay.example.com by mx; Mon, 23 Nov 2026 10:00:00 +0000\r\n"):
        with client(site) as connection:
            connection.mail(alice)
            connection.rcpt(NUMBER)
            replies.append(connection.data(hop + raw))
    first_id = queue_id_of(replies[0][1])
    assert replies[1][0] == 250
    assert replies[1][1].decode().startswith(f"2.0.0 Already queued as {first_id}")
    assert len(site.query("SELECT id FROM submissions")) == 1
    assert len(site.query("SELECT id FROM jobs WHERE queue != 'mail'")) == 1


def test_message_with_nothing_to_fax_is_answered_by_mail(site, server, alice):
    code, reply = send(site, fax_message(alice, NUMBER, subject="Empty", body="   \n"))
    assert code == 250, reply
    job_id = queue_id_of(reply)
    job = wait_for(lambda: (j := site.job(job_id))["state"] == "rejected" and j)
    assert job["stage"] == "parse"
    mails = wait_for(lambda: site.mailbox(alice), what="the rejection mail")
    notice = BytesParser(policy=policy.default).parsebytes(mails[0])
    assert notice["Subject"] == "Not sent: Empty"
    text = " ".join(notice.get_body(("plain",)).get_content().split())
    assert "nothing to fax" in text and "Attach the document" in text
    assert job_id in text


def test_swaks_sends_a_fax_with_an_attachment(site, server, alice, tmp_path):
    document = tmp_path / "letter.pdf"
    document.write_bytes(MINIMAL_PDF)
    result = subprocess.run(
        [
            "swaks", "--server", "127.0.0.1", "--port", str(site.ports["mx"]),
            "--from", alice, "--to", f"12125550100@{FAX_DOMAIN}", "--tls", "--auth", "PLAIN",
            "--auth-user", alice, "--auth-password", "2468",
            "--header", "Subject: Letter", "--attach", f"@{document}",
        ],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = result.stdout.split("250 2.0.0 Queued as ")[1].split()[0]
    job = wait_for(lambda: past_intake(site, job_id))
    [attachment] = json.loads(job["payload"])["attachments"]
    assert attachment["filename"] == "letter.pdf" and attachment["size"] == len(MINIMAL_PDF)


def test_protocol_errors_carry_enhanced_codes(site, server):
    with smtplib.SMTP("127.0.0.1", site.ports["mx"], timeout=30) as connection:
        code, reply = connection.docmd("MAIL", "FROM:<alice@example.com>")
        assert code == 503 and reply.startswith(b"5.5.1"), reply
        connection.ehlo("client.example.com")
        code, reply = connection.docmd("DATA")
        assert code == 503 and reply.startswith(b"5.5.1"), reply
        code, reply = connection.docmd("BOGUS")
        assert code == 500 and reply.startswith(b"5.5.2"), reply


def test_dot_stuffed_lines_arrive_as_the_sender_wrote_them(site, server, alice):
    body = ".leading dot\r\n..two dots\r\nmiddle . dot.\r\n.\r\n"  # last line: a lone dot, stuffed by smtplib
    message = fax_message(alice, NUMBER, body=body.replace("\r\n", "\n"), message_id="<dots@example.com>")
    code, reply = send(site, message)
    assert code == 250, reply
    job_id = queue_id_of(reply)
    job = wait_for(lambda: past_intake(site, job_id))
    assert json.loads(job["payload"])["body_text"] == ".leading dot\n..two dots\nmiddle . dot.\n.\n"


def test_bare_lf_dot_does_not_end_the_data(site, server, alice):
    """SMTP smuggling (CVE-2023-51764 and kin): only CRLF.CRLF ends a message."""
    head = f"From: {alice}\r\nTo: {NUMBER}\r\nSubject: Smuggle\r\n\r\nfirst part\n.\nMAIL FROM:<x@evil.example>\r\n"
    with client(site) as connection:
        connection.mail(alice)
        connection.rcpt(NUMBER)
        code, reply = connection.data(head.encode())
    assert code == 250, reply
    job_id = queue_id_of(reply)
    job = wait_for(lambda: past_intake(site, job_id))
    assert "MAIL FROM:<x@evil.example>" in json.loads(job["payload"])["body_text"]
    assert len(site.query("SELECT id FROM submissions")) == 1


def test_lines_over_1000_octets_are_refused(site, server, alice):
    raw = f"From: {alice}\r\nTo: {NUMBER}\r\nSubject: Long\r\n\r\n{'x' * 1200}\r\n".encode()
    with client(site) as connection:
        connection.mail(alice)
        connection.rcpt(NUMBER)
        code, reply = connection.data(raw)
        assert code == 500 and reply.startswith(b"5.5.2")
        # The session goes on: the next message is accepted.
        connection.mail(alice)
        connection.rcpt(NUMBER)
        code, reply = connection.data(fax_message(alice, NUMBER).as_bytes())
        assert code == 250, reply


def test_a_storage_failure_answers_451_and_the_server_recovers(site, server, alice):
    import shutil

    incoming = site.var / "spool" / "incoming"
    shutil.rmtree(incoming)  # the disk "fails": nowhere to store the message
    with client(site) as connection:
        connection.mail(alice)
        connection.rcpt(NUMBER)
        code, reply = connection.data(fax_message(alice, NUMBER).as_bytes())
    assert code == 451 and reply.startswith(b"4.3.0"), reply  # the client keeps it and retries
    assert site.query("SELECT id FROM submissions") == []

    incoming.mkdir()
    code, reply = send(site, fax_message(alice, NUMBER, attachments=[("a.pdf", "application/pdf", MINIMAL_PDF)]))
    assert code == 250
