"""The service's own mail through an SMTP relay: retried while the relay says 4xx,
recorded as failed when it says 5xx. The relay is a real SMTP server on loopback."""

from __future__ import annotations

import smtplib
import threading
from email import message_from_bytes

from aiosmtpd.controller import Controller

from tests.conftest import register
from tests.support import FAX_DOMAIN, Site, ThreadedServer, fax_message, free_port, wait_for


class FlakyRelay:
    """Answers `failures` DATA commands with `failure_reply`, then accepts."""

    def __init__(self, failures: int, failure_reply: str) -> None:
        self.failures = failures
        self.failure_reply = failure_reply
        self.attempts = 0
        self.delivered: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.attempts += 1
            if self.attempts <= self.failures:
                return self.failure_reply
            self.delivered.append(envelope.original_content)
        return "250 2.0.0 OK"


def run_with_relay(site: Site, relay: FlakyRelay, port: int) -> tuple[ThreadedServer, Controller]:
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    settings = site.settings().model_copy(
        update={
            "mail": site.settings().mail.model_copy(
                update={
                    "transport": "smtp", "relay_host": "127.0.0.1", "relay_port": port, "relay_tls": "none",
                    "retry_delays": (0.3,),
                }
            )
        }
    )
    return ThreadedServer(settings).start(), controller


def submit_empty_fax(site: Site) -> None:
    with smtplib.SMTP("127.0.0.1", site.ports["mx"], timeout=30) as connection:
        connection.ehlo("client.example.com")
        blank = fax_message("alice@example.com", f"+12125550100@{FAX_DOMAIN}", subject="Blank", body="")
        connection.send_message(blank)


def test_notices_are_retried_while_the_relay_defers_then_delivered(site):
    register(site, "alice@example.com")
    relay = FlakyRelay(failures=2, failure_reply="451 4.3.0 Try again later")
    server, controller = run_with_relay(site, relay, free_port())
    try:
        submit_empty_fax(site)
        wait_for(lambda: relay.delivered, timeout=30, what="the relay to receive the notice")
        assert relay.attempts == 3
        notice = message_from_bytes(relay.delivered[0])
        assert notice["To"] == "alice@example.com" and notice["Subject"] == "Not sent: Blank"
        # The runner records the delivery right after the relay's 250.
        mail_job = wait_for(
            lambda: (rows := site.query("SELECT * FROM jobs WHERE queue = 'mail' AND state = 'done'")) and rows[0],
            what="the notice to be recorded as delivered",
        )
        assert mail_job["attempts"] == 3
    finally:
        server.stop()
        controller.stop()


def test_a_permanent_relay_refusal_ends_the_mail_in_failed_with_the_reply(site):
    register(site, "alice@example.com")
    relay = FlakyRelay(failures=99, failure_reply="554 5.7.1 Rejected by policy")
    server, controller = run_with_relay(site, relay, free_port())
    try:
        submit_empty_fax(site)
        mail_job = wait_for(
            lambda: (rows := site.query("SELECT * FROM jobs WHERE queue = 'mail' AND state = 'failed'")) and rows[0],
            timeout=30,
            what="the notice to fail",
        )
        assert "554" in mail_job["last_error"] and "Rejected by policy" in mail_job["last_error"]
        assert relay.attempts == 1
    finally:
        server.stop()
        controller.stop()
