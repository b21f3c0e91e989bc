"""Every kind of mail faxbridge sends, each made by its real code path on a running
server and read back from the Maildir exactly as delivered (signed as stored).

Used by the DKIM and spam-score tests (R-MAIL-1/2/3). The templates:
  fax-with-promo       a fax to a Free account: promotional footer + List-Unsubscribe
  fax-without-promo    a fax to a paying account that opted out: postal address only
  opt-out-notice       the R-ACCT-5 (iii) notice after a one-click unsubscribe (HTTP POST)
  idle-notice          the R-ACCT-5 (i) notice: a Free account without a fax for 30 days
  bounce-notice        "faxes cannot be delivered to ..." after a hard DSN over SMTP
  announcement         a service announcement (R-MAIL-2) through the outbox
  rejection            bridge.outbound.notices: an empty fax submitted over SMTP is refused
  receipt              bridge.outbound.notices: a fax sent over the virtual line, with its PDF
"""

from __future__ import annotations

import smtplib
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

from tests.conftest import register
from tests.inbound.dsn_fixtures import HARD_USER_UNKNOWN, dsn
from tests.inbound.support import Running, customer, execute
from tests.support import FAX_DOMAIN, fax_message, text_pdf, wait_for

REMOTE = "+15550100001"  # a virtual remote fax machine (faxline.virtual.remote_machines)


@dataclass(frozen=True)
class OutgoingMail:
    templates: dict[str, bytes]  # name -> the message as delivered
    dns_records: list[tuple[str, str]]  # the signer's TXT records


def _subject(raw: bytes) -> str:
    return str(BytesParser(policy=policy.default).parsebytes(raw)["Subject"])


def _one(running: Running, address: str, subject_start: str, timeout: float = 60) -> bytes:
    def find() -> bytes | None:
        return next((raw for raw in running.site.mailbox(address) if _subject(raw).startswith(subject_start)), None)

    return wait_for(find, timeout=timeout, what=f"mail {subject_start!r} to {address}")


def _smtp(running: Running, mail_from: str, rcpt: str, content: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", running.site.ports["mx"], timeout=30) as smtp:
        smtp.ehlo("client.example.com")
        smtp.mail(mail_from)
        code, reply = smtp.rcpt(rcpt)
        assert code == 250, reply
        code, reply = smtp.data(content)
        assert code == 250, reply


def make_every_template(running: Running, one_page: Path) -> OutgoingMail:
    site = running.site
    # Inbound fax mail with the promotional footer, then the opt-out that closes the
    # Free account and tells it so.
    customer(site, "free@example.com", "+15550300010", plan="free")
    running.fax_to("+15550300010", one_page)
    with_promo = _one(running, "free@example.com", "Fax from")
    [token] = site.query("SELECT token FROM mail_tokens WHERE purpose = 'unsubscribe'")
    request = urllib.request.Request(f"{running.http_base}/u/{token['token']}", data=b"List-Unsubscribe=One-Click",
                                     method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
    opt_out = _one(running, "free@example.com", "Your faxbridge account is closed")

    # A Free account that received no fax for 31 days closes itself (R-ACCT-5 (i)).
    month_ago = (datetime.now(UTC) - timedelta(days=31)).strftime("%Y-%m-%d %H:%M:%S.%f")
    customer(site, "idle@example.com", "+15550300013", plan="free", created_at=month_ago)
    running.run(running.inbound.idle.close_once())
    idle_notice = _one(running, "idle@example.com", "Your faxbridge account is closed")

    # Inbound fax mail without promotion.
    customer(site, "paid@example.com", "+15550300011", plan="plus", promo_opt_in=False)
    running.fax_to("+15550300011", one_page)
    without_promo = _one(running, "paid@example.com", "Fax from")

    # A hard bounce on one of two addresses: the other is told.
    account = customer(site, "main@example.com", "+15550300012", plan="plus")
    execute(site, "INSERT INTO account_addresses (account_id, address, kind) VALUES (?, ?, 'delivery')",
            account, "old@example.com")
    running.fax_to("+15550300012", one_page)
    _one(running, "old@example.com", "Fax from")
    [bounce] = site.query("SELECT token FROM mail_tokens WHERE purpose = 'bounce' AND address = 'old@example.com'")
    _smtp(running, "<>", f"bounces+{bounce['token']}@{FAX_DOMAIN}", dsn("old@example.com", HARD_USER_UNKNOWN))
    bounce_notice = _one(running, "main@example.com", "Faxes cannot be delivered")

    # A service announcement (R-MAIL-2).
    running.run(_announce(running, "paid@example.com"))
    announcement = _one(running, "paid@example.com", "Maintenance")

    # The lead's notices (bridge/notices.py) through the front door: a refused
    # submission and a fax sent to a remote machine.
    register(site, "alice@example.com")
    with smtplib.SMTP("127.0.0.1", site.ports["mx"], timeout=30) as smtp:
        smtp.ehlo("client.example.com")
        smtp.send_message(fax_message("alice@example.com", f"+12125550100@{FAX_DOMAIN}", subject="Blank", body=""))
    rejection = _one(running, "alice@example.com", "Not sent: Blank")
    invoice = fax_message("alice@example.com", f"{REMOTE}@{FAX_DOMAIN}", subject="Invoice 2291",
                          body="Please find our invoice attached.",
                          attachments=[("invoice.pdf", "application/pdf", text_pdf("Invoice 2291", "Total due: 120.00"))])
    _smtp(running, "alice@example.com", f"{REMOTE}@{FAX_DOMAIN}", invoice.as_bytes())
    receipt = _one(running, "alice@example.com", "Sent: Invoice 2291", timeout=120)

    signer = running.signer
    assert signer is not None
    return OutgoingMail(
        templates={
            "fax-with-promo": with_promo,
            "fax-without-promo": without_promo,
            "opt-out-notice": opt_out,
            "idle-notice": idle_notice,
            "bounce-notice": bounce_notice,
            "announcement": announcement,
            "rejection": rejection,
            "receipt": receipt,
        },
        dns_records=signer.dns_records(),
    )


async def _announce(running: Running, to: str) -> None:
    from bridge.inbound.messages import account_notice

    services = running.server.app.services
    notice = account_notice(
        services.settings, to=[to], subject="Maintenance on Sunday 6 December",
        body="On Sunday 6 December from 06:00 to 07:00 UTC faxes to your number may arrive\n"
             "a few minutes late. Nothing is lost, and you do not need to do anything.\n",
    )
    async with services.db.transaction() as tx:
        await services.outbox.enqueue(tx, notice, kind="announcement")
