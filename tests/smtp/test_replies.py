"""Every reply of the SMTP front door carries an enhanced status code (RFC 2034, RFC 3463)
and a sentence a person can read, on every path a client can take: the real server,
driven over its sockets line by line, refusal after refusal."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest

from tests.conftest import register
from tests.smtp.support import RawSession
from tests.support import FAX_DOMAIN, Site, ThreadedServer, fax_message

ALICE = "alice@example.com"
PIN = "2468"
NUMBER = f"+12125550100@{FAX_DOMAIN}"
MAX_SIZE = 100_000

REPLY = re.compile(r"^(?P<code>\d{3}) (?P<enhanced>[245]\.\d+\.\d+) (?P<text>.+)$")


def assert_enhanced(lines: list[str], code: str) -> str:
    """The one-line reply `lines` has `code`, an enhanced code of the same class and a
    human text: words, begun as a sentence (or with the address it is about), not "Error"."""
    assert len(lines) == 1, lines
    [line] = lines
    match = REPLY.match(line)
    assert match, f"no enhanced code: {line!r}"
    assert match["code"] == code, line
    assert match["enhanced"][0] == code[0], f"enhanced code of another class: {line!r}"
    text = match["text"]
    assert not text[0].islower() and not text.startswith("Error"), line
    # A refusal says what was wrong; "OK" is all a 250 to NOOP needs to say.
    assert len(re.findall(r"[A-Za-z]{2,}", text)) >= (1 if code[0] == "2" else 2), line
    return line


def drive(session: RawSession, transcript: list[tuple[str, str]]) -> list[str]:
    return [assert_enhanced(session.send(command), code) for command, code in transcript]


def plain(login: str, pin: str) -> str:
    return base64.b64encode(f"\0{login}\0{pin}".encode()).decode()


@pytest.fixture(scope="module")
def front_door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server whose messages may be at most MAX_SIZE bytes, Alice registered."""
    site = Site(tmp_path_factory.mktemp("front-door")).write()
    site.config.write_text(
        site.config.read_text().replace(
            'hostname = "faxbridge.test"', f'hostname = "faxbridge.test"\nmax_message_size = {MAX_SIZE}'
        )
    )
    register(site, ALICE, pin=PIN)
    server = ThreadedServer(site.settings()).start()
    try:
        yield site
    finally:
        server.stop()


def test_the_greeting_and_the_ehlo_answer_stay_plain(front_door):
    # RFC 2034 3 exempts them: the greeting names the host, EHLO's lines are extensions.
    with RawSession(front_door) as session:
        assert session.greeting == ["220 faxbridge.test faxbridge ESMTP"]
        ehlo = session.send("EHLO client.example.com")
        assert ehlo[0] == "250-faxbridge.test" and f"250-SIZE {MAX_SIZE}" in ehlo and ehlo[-1] == "250 HELP"
        assert session.send("HELO client.example.com") == ["250 faxbridge.test"]


def test_commands_out_of_order_or_malformed_are_refused_with_enhanced_codes(front_door):
    with RawSession(front_door) as session:
        drive(session, [
            ("MAIL FROM:<alice@example.com>", "503"),  # before HELO/EHLO
            ("RCPT TO:<" + NUMBER + ">", "503"),
            ("DATA", "503"),
            ("HELO", "501"),
            ("EHLO", "501"),
        ])
        session.send("EHLO client.example.com")
        drive(session, [
            ("", "500"),
            ("BOGUS", "500"),
            ("NOOP " + "x" * 600, "500"),  # a command line over 512 octets
            ("X" * 3000, "500"),  # over the stream's line limit too
            ("EXPN staff", "502"),
            ("VRFY", "501"),
            ("HELP BOGUS", "501"),
            ("RSET now", "501"),
            ("QUIT now", "501"),
            ("RCPT TO:<" + NUMBER + ">", "503"),  # before MAIL
            ("DATA", "503"),
            ("MAIL", "501"),
            ("MAIL TO:<alice@example.com>", "501"),
            ("MAIL FROM:<@>", "553"),
            ("MAIL FROM:<alice@example.com> SIZE=many", "501"),
            ("MAIL FROM:<alice@example.com> BODY=BINARYMIME", "501"),
            ("MAIL FROM:<alice@example.com> SMTPUTF8=yes", "501"),
            ("MAIL FROM:<alice@example.com> COLOUR=blue", "555"),
        ])
        [too_big] = drive(session, [(f"MAIL FROM:<alice@example.com> SIZE={MAX_SIZE + 1}", "552")])
        assert f"{MAX_SIZE} bytes" in too_big
        drive(session, [
            ("MAIL FROM:<alice@example.com>", "250"),
            ("MAIL FROM:<alice@example.com>", "503"),  # nested
            ("DATA", "503"),  # before RCPT
            ("RCPT", "501"),
            ("RCPT FROM:<" + NUMBER + ">", "501"),
            ("RCPT TO:<@>", "553"),
            ("RCPT TO:<" + NUMBER + "> NOTIFY=NEVER", "555"),
            ("RCPT TO:<someone@gmail.com>", "550"),  # relay refused
            ("RCPT TO:<nobody@" + FAX_DOMAIN + ">", "550"),  # unknown address
            ("RCPT TO:<123@" + FAX_DOMAIN + ">", "550"),  # not a number we can dial
        ])
        drive(session, [(f"RCPT TO:<+1212555{n:04d}@{FAX_DOMAIN}>", "250") for n in range(50)])
        drive(session, [
            ("RCPT TO:<+12125559999@" + FAX_DOMAIN + ">", "452"),  # the 51st
            ("DATA now", "501"),
        ])


def test_positive_replies_carry_enhanced_codes_too(front_door):
    with RawSession(front_door) as session:
        session.send("EHLO client.example.com")
        drive(session, [
            ("NOOP", "250"),
            ("HELP", "250"),
            ("HELP DATA", "250"),
            ("VRFY alice@example.com", "252"),
            ("RSET", "250"),
            ("QUIT", "221"),
        ])


def test_too_many_unknown_commands_end_the_session_with_a_reason(front_door):
    with RawSession(front_door) as session:
        session.send("EHLO client.example.com")
        drive(session, [("BOGUS", "500")] * 4 + [("BOGUS", "502")])


def test_refusals_after_data_carry_enhanced_codes(front_door):
    with RawSession(front_door) as session:
        session.send("EHLO client.example.com")

        def transaction(sender: str, content: bytes) -> list[str]:
            drive(session, [(f"MAIL FROM:<{sender}>", "250"), (f"RCPT TO:<{NUMBER}>", "250")])
            assert session.send("DATA")[0].startswith("354 ")
            return session.send_raw(content.replace(b"\r\n.", b"\r\n..") + b".\r\n")

        long_line = f"From: {ALICE}\r\nSubject: Long\r\n\r\n{'x' * 1200}\r\n".encode()
        assert_enhanced(transaction(ALICE, long_line), "500")
        big = fax_message(ALICE, NUMBER, body="y" * (MAX_SIZE + 10)).as_bytes()
        [too_big] = [assert_enhanced(transaction(ALICE, big), "552")]
        assert f"{MAX_SIZE} bytes" in too_big
        stranger = fax_message("mallory@example.net", NUMBER).as_bytes()
        assert_enhanced(transaction("mallory@example.net", stranger), "550")
        forged = fax_message(ALICE, NUMBER, from_header="Bob <bob@example.com>").as_bytes()
        assert_enhanced(transaction(ALICE, forged), "550")
        assert_enhanced(transaction(ALICE, fax_message(ALICE, NUMBER).as_bytes()), "250")


def test_auth_failures_carry_enhanced_codes(front_door):
    with RawSession(front_door) as session:
        drive(session, [("AUTH PLAIN " + plain(ALICE, PIN), "503")])  # before EHLO
        session.send("HELO client.example.com")
        drive(session, [("AUTH PLAIN " + plain(ALICE, PIN), "500")])  # AUTH is an ESMTP extension
        session.send("EHLO client.example.com")
        drive(session, [("AUTH PLAIN " + plain(ALICE, PIN), "538")])  # in clear text
        session.starttls()
        session.send("EHLO client.example.com")
        drive(session, [
            ("AUTH", "501"),
            ("AUTH PLAIN a b", "501"),
            ("AUTH CRAM-MD5", "504"),
            ("AUTH PLAIN not-base64!", "501"),
            ("AUTH PLAIN " + plain(ALICE, "0000"), "535"),  # wrong PIN
            ("AUTH PLAIN " + plain("nobody@example.com", PIN), "535"),
        ])
        [challenge] = session.send("AUTH LOGIN")
        assert challenge.startswith("334 ")
        assert_enhanced(session.send("*"), "501")  # the client gave up
        drive(session, [("AUTH PLAIN " + plain(ALICE, PIN), "235"), ("AUTH PLAIN " + plain(ALICE, PIN), "503")])


def test_a_listener_that_requires_tls_and_auth_says_so_with_enhanced_codes(front_door):
    with RawSession(front_door, "submission") as session:
        session.send("EHLO client.example.com")
        drive(session, [("MAIL FROM:<alice@example.com>", "530"), ("STARTTLS now", "501")])
        session.starttls()
        session.send("EHLO client.example.com")
        drive(session, [
            ("MAIL FROM:<alice@example.com>", "530"),
            ("RCPT TO:<" + NUMBER + ">", "530"),
            ("DATA", "530"),
            ("STARTTLS", "503"),  # TLS is already on
        ])


def test_starttls_inside_tls_is_refused_not_started_again(front_door):
    with RawSession(front_door, "smtps", implicit_tls=True) as session:
        session.send("EHLO client.example.com")
        drive(session, [("STARTTLS", "503")])
        # The session is still usable: nothing was torn down.
        drive(session, [("AUTH PLAIN " + plain(ALICE, PIN), "235"), ("NOOP", "250")])
