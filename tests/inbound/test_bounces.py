"""Bounces (R-ACCT-5 (ii)): customer mail leaves with a VERP envelope sender
`bounces+TOKEN@`; DSNs (RFC 3464) sent back there over SMTP are read: a hard bounce
marks the address failing (the account is told at its other addresses, and a Free
account left with no working address is closed); a delay or a mail that is no DSN
changes nothing."""

from __future__ import annotations

import smtplib
from pathlib import Path

from bridge.inbound.service_mail import classify_dsn
from tests.inbound.support import Running, customer, execute
from tests.support import FAX_DOMAIN

NUMBER = "+15550300005"


def dsn(recipient: str, *, action: str, status: str, diagnostic: str) -> bytes:
    return f"""From: MAILER-DAEMON@mx.example.com
To: bounces@{FAX_DOMAIN}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is the mail system at host mx.example.com. Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Mon, 23 Nov 2026 12:00:00 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--B
Content-Type: text/rfc822-headers

From: faxbridge <noreply@{FAX_DOMAIN}>
Subject: Fax from +15550100777, 1 page

--B--
""".replace("\n", "\r\n").encode()


HARD = dict(action="failed", status="5.1.1", diagnostic="550 5.1.1 <x>: Recipient address rejected: User unknown")
DELAYED = dict(action="delayed", status="4.2.2", diagnostic="452 4.2.2 Mailbox full")
AUTO_REPLY = b"From: fred@example.com\r\nSubject: Out of office\r\n\r\nI am away until Monday.\r\n"


def send(running: Running, envelope_to: str, content: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", running.site.ports["mx"], timeout=30) as smtp:
        smtp.ehlo("mx.example.com")
        smtp.mail("<>")
        code, reply = smtp.rcpt(envelope_to)
        if code != 250:
            return code, reply
        return smtp.data(content)


def bounce_address(running: Running, address: str) -> str:
    [row] = running.site.query("SELECT token FROM mail_tokens WHERE purpose = 'bounce' AND address = ?", address)
    return f"bounces+{row['token']}@{FAX_DOMAIN}"


def test_dsn_fixtures_are_classified() -> None:
    assert classify_dsn(dsn("a@example.com", **HARD))[0] == "hard"
    assert classify_dsn(dsn("a@example.com", **DELAYED))[0] == "soft"
    assert classify_dsn(dsn("a@example.com", action="failed", status="4.4.7", diagnostic="timeout"))[0] == "soft"
    assert classify_dsn(dsn("a@example.com", action="delivered", status="2.0.0", diagnostic="ok"))[0] == "none"
    assert classify_dsn(AUTO_REPLY) == ("none", "")


def test_hard_bounce_closes_a_free_account_with_no_other_address(running: Running, one_page: Path) -> None:
    account = customer(running.site, "gone@example.com", NUMBER, plan="free")
    running.fax_to(NUMBER, one_page)
    [mail] = running.wait_for_mail("gone@example.com")
    verp = bounce_address(running, "gone@example.com")
    assert mail["Return-Path"] == f"<{verp}>"

    code, reply = send(running, verp, dsn("gone@example.com", **HARD))
    assert code == 250, reply
    [health] = running.site.query("SELECT * FROM delivery_health WHERE account_id = ?", account)
    assert health["failing"] == 1 and health["hard_bounces"] == 1 and "5.1.1" in health["last_status"]
    assert running.site.query("SELECT state FROM accounts WHERE id = ?", account)[0]["state"] == "closed"


def test_hard_bounce_on_one_address_tells_the_others_and_stops_mail_to_it(running: Running, one_page: Path) -> None:
    account = customer(running.site, "main@example.com", NUMBER, plan="free")
    execute(running.site, "INSERT INTO account_addresses (account_id, address, kind) VALUES (?, ?, 'delivery')",
            account, "old@example.com")
    running.fax_to(NUMBER, one_page)
    running.wait_for_mail("old@example.com")
    running.wait_for_mail("main@example.com")
    assert send(running, bounce_address(running, "old@example.com"), dsn("old@example.com", **HARD))[0] == 250

    [_, notice] = running.wait_for_mail("main@example.com", 2)
    assert "old@example.com" in notice["Subject"] and "List-Unsubscribe" not in notice
    assert running.site.query("SELECT state FROM accounts WHERE id = ?", account)[0]["state"] == "active"
    running.fax_to(NUMBER, one_page)
    running.wait_for_mail("main@example.com", 3)
    assert len(running.site.mailbox("old@example.com")) == 1, "a failing address gets no more faxes"


def test_delays_auto_replies_and_forged_tokens_change_nothing(running: Running, one_page: Path) -> None:
    account = customer(running.site, "busy@example.com", NUMBER, plan="free")
    running.fax_to(NUMBER, one_page)
    running.wait_for_mail("busy@example.com")
    verp = bounce_address(running, "busy@example.com")
    assert send(running, verp, dsn("busy@example.com", **DELAYED))[0] == 250
    assert send(running, verp, AUTO_REPLY)[0] == 250
    assert send(running, f"bounces+{'0' * 40}@{FAX_DOMAIN}", dsn("busy@example.com", **HARD))[0] == 550
    [health] = running.site.query("SELECT * FROM delivery_health WHERE account_id = ?", account)
    assert health["failing"] == 0 and health["soft_bounces"] == 1 and health["hard_bounces"] == 0
    assert running.site.query("SELECT state FROM accounts WHERE id = ?", account)[0]["state"] == "active"
