"""Bounces (R-ACCT-5 (ii)): customer mail leaves with a VERP envelope sender
`bounces+TOKEN@`; DSNs (RFC 3464) sent back there over SMTP are read: a hard bounce
marks the address failing (the account is told at its other addresses, and a Free
account left with no working address is closed); a delay or a mail that is no DSN
changes nothing."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from bridge.inbound.service_mail import classify_dsn
from tests.inbound.dsn_fixtures import (
    ALL,
    AUTO_REPLY,
    DELAYED_MAILBOX_FULL,
    DELIVERED,
    HARD_BLOCKED_AS_SPAM,
    HARD_USER_UNKNOWN,
    PLAIN_TEXT_BOUNCE,
    SOFT_GAVE_UP_ON_TIMEOUT,
    Dsn,
    dsn,
)
from tests.inbound.support import Running, customer, execute
from tests.support import FAX_DOMAIN

NUMBER = "+15550300005"


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


@pytest.mark.parametrize("name", sorted(ALL))
def test_each_dsn_kind_is_classified_r_acct_5_ii(name: str) -> None:
    block: Dsn = ALL[name]
    kind, status = classify_dsn(dsn("a@example.com", block))
    assert kind == block.kind
    if kind != "none":
        assert status.startswith(block.status)


def test_mail_that_is_no_dsn_is_no_bounce() -> None:
    assert classify_dsn(AUTO_REPLY) == ("none", "")
    assert classify_dsn(PLAIN_TEXT_BOUNCE) == ("none", "")


def test_a_multi_recipient_dsn_is_as_bad_as_its_worst_block() -> None:
    names = ["a@example.com", "b@example.com"]
    assert classify_dsn(dsn("", DELIVERED, HARD_USER_UNKNOWN, recipients=names))[0] == "hard"
    assert classify_dsn(dsn("", DELIVERED, DELAYED_MAILBOX_FULL, recipients=names))[0] == "soft"


def test_hard_bounce_closes_a_free_account_with_no_other_address(running: Running, one_page: Path) -> None:
    account = customer(running.site, "gone@example.com", NUMBER, plan="free")
    running.fax_to(NUMBER, one_page)
    [mail] = running.wait_for_mail("gone@example.com")
    verp = bounce_address(running, "gone@example.com")
    assert mail["Return-Path"] == f"<{verp}>"

    code, reply = send(running, verp, dsn("gone@example.com", HARD_USER_UNKNOWN))
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
    code, _ = send(running, bounce_address(running, "old@example.com"), dsn("old@example.com", HARD_USER_UNKNOWN))
    assert code == 250

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
    assert send(running, verp, dsn("busy@example.com", DELAYED_MAILBOX_FULL))[0] == 250
    assert send(running, verp, dsn("busy@example.com", SOFT_GAVE_UP_ON_TIMEOUT))[0] == 250
    assert send(running, verp, AUTO_REPLY)[0] == 250
    assert send(running, verp, PLAIN_TEXT_BOUNCE)[0] == 250
    assert send(running, f"bounces+{'0' * 40}@{FAX_DOMAIN}", dsn("busy@example.com", HARD_USER_UNKNOWN))[0] == 550
    [health] = running.site.query("SELECT * FROM delivery_health WHERE account_id = ?", account)
    assert health["failing"] == 0 and health["soft_bounces"] == 2 and health["hard_bounces"] == 0
    assert running.site.query("SELECT state FROM accounts WHERE id = ?", account)[0]["state"] == "active"


def test_mail_blocked_as_spam_counts_as_a_hard_bounce_r_acct_5_ii(running: Running, one_page: Path) -> None:
    """R-ACCT-5 (ii): mail that is "blocked or filtered" closes a Free account too."""
    account = customer(running.site, "filtered@example.com", NUMBER, plan="free")
    running.fax_to(NUMBER, one_page)
    running.wait_for_mail("filtered@example.com")
    verp = bounce_address(running, "filtered@example.com")
    assert send(running, verp, dsn("filtered@example.com", HARD_BLOCKED_AS_SPAM))[0] == 250
    [health] = running.site.query("SELECT * FROM delivery_health WHERE account_id = ?", account)
    assert health["failing"] == 1 and "5.7.1" in health["last_status"]
    assert running.site.query("SELECT state FROM accounts WHERE id = ?", account)[0]["state"] == "closed"
