"""The DATA reader of the SMTP front door under a pipelining client: commands that follow
the final CRLF.CRLF in the same packet are answered, whatever the message's size and
wherever its last piece falls."""

from __future__ import annotations

import pytest

from tests.smtp.support import RawSession
from tests.support import FAX_DOMAIN

NUMBER = f"+12125550100@{FAX_DOMAIN}"


def message(alice: str, body_octets: int, tag: str) -> bytes:
    head = f"From: {alice}\r\nTo: <{NUMBER}>\r\nSubject: {tag}\r\nMessage-ID: <{tag}@example.com>\r\n\r\n"
    line = b"x" * 70 + b" ends with a dot.\r\n"  # ".\r\n" all through: each one looks like an end
    return head.encode() + line * (body_octets // len(line) + 1)


@pytest.mark.parametrize("body_octets", [10, 900, 5_000, 50_000, 600_000])
def test_commands_sent_right_after_the_data_are_answered(site, server, alice, body_octets):
    with RawSession(site) as session:
        session.send("EHLO client.example.com")
        for n in range(3):
            assert session.send(f"MAIL FROM:<{alice}>")[0].startswith("250 ")
            assert session.send(f"RCPT TO:<{NUMBER}>")[0].startswith("250 ")
            assert session.send("DATA")[0].startswith("354 ")
            # The message, its end and the next commands in one write, as a pipelining
            # client sends them (RFC 2920): nothing after CRLF.CRLF may be lost.
            session.sock.sendall(message(alice, body_octets, f"pipelined-{body_octets}-{n}") + b".\r\nRSET\r\nNOOP\r\n")
            [queued] = session.reply()
            assert queued.startswith("250 2.0.0 Queued as "), queued
            [reset] = session.reply()
            assert reset.startswith("250 "), reset
            [noop] = session.reply()
            assert noop.startswith("250 "), noop
    stored = site.query("SELECT COUNT(*) AS n FROM submissions")[0]["n"]
    assert stored == 3
