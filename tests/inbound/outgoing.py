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
  fee-declined         the billing cycle: the card declines the fee, the deposit pays (R-DEP-5)
  account-suspended    the billing cycle: a declined fee the deposit cannot cover (R-DEP-8)
  charge-declined      metering: received pages overdraw an account whose card declines
                       the top-up (R-DEP-8)
  fair-use             the billing cycle: a Free number over 20 pages in 30 days (R-USE-4)
  fair-use-overage     the billing cycle: a Plus account far above the others (R-USE-5/6)
  abuse-ack            the abuse pipeline: the reporter's answer (R-ABUSE-3)
  abuse-notice         the abuse pipeline: the account holder is shown the report
  abuse-suspension     the abuse pipeline: the third distinct reporter suspends the account

Each sample carries the kind (bridge.mail.kinds.MailKind) its code path queued it as,
read back from the mail queue; the tests fail for a kind that has no sample.
"""

from __future__ import annotations

import hashlib
import smtplib
import urllib.request
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

from bridge.abuse.component import AbuseComponent
from bridge.abuse.models import MATCHED
from bridge.abuse.pipeline import AbuseJob, AbusePipeline, build_context
from bridge.core.ids import new_id
from bridge.core.models import utcnow
from bridge.core.pipeline import build_pipeline
from bridge.core.queue import QueueName
from bridge.mail.jobs import OutgoingMail as QueuedMail
from bridge.mail.kinds import MailKind
from bridge.money.component import MoneyComponent
from bridge.money.meter import Reception
from bridge.money.payments import put_card_on_file
from bridge.outbound.jobs import FaxJob, RenderedDocument
from tests.abuse import reports
from tests.conftest import register
from tests.inbound.dsn_fixtures import HARD_USER_UNKNOWN, dsn
from tests.inbound.support import Running, customer, execute
from tests.money.support import DECLINES
from tests.support import FAX_DOMAIN, fax_message, text_pdf, wait_for

REMOTE = "+15550100001"  # a virtual remote fax machine (faxline.virtual.remote_machines)


@dataclass(frozen=True)
class Sample:
    kind: MailKind  # as its code path queued it
    raw: bytes  # the message as delivered


@dataclass(frozen=True)
class OutgoingMail:
    samples: dict[str, Sample]  # what the sample shows ("fax-with-promo") -> the mail
    dns_records: list[tuple[str, str]]  # the signer's TXT records

    @property
    def templates(self) -> dict[str, bytes]:
        return {name: sample.raw for name, sample in self.samples.items()}

    def of_kind(self, kind: MailKind) -> dict[str, bytes]:
        """The samples of `kind` by name; a kind without one fails the test that asks."""
        found = {name: sample.raw for name, sample in self.samples.items() if sample.kind == kind}
        assert found, f"no sample of {kind.value!r} mail: make one in tests/inbound/outgoing.py by its real code path"
        return found


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
    invoice_pdf = text_pdf("Invoice 2291", "Total due: 120.00")
    invoice = fax_message("alice@example.com", f"{REMOTE}@{FAX_DOMAIN}", subject="Invoice 2291",
                          body="Please find our invoice attached.",
                          attachments=[("invoice.pdf", "application/pdf", invoice_pdf)])
    _smtp(running, "alice@example.com", f"{REMOTE}@{FAX_DOMAIN}", invoice.as_bytes())
    receipt = _one(running, "alice@example.com", "Sent: Invoice 2291", timeout=120)

    # The billing cycle's notices, from the server's own cycle and metering, driven the
    # way tests/money drive them, with the offline processor's test cards.
    money = next(c for c in running.server.app.components if isinstance(c, MoneyComponent))
    fees = register(site, "fees@example.com", plan="plus")
    running.run(_pay_first_deposit(money, fees))  # USD 10.00 from the card that works
    running.run(_put_card(money, fees, DECLINES))
    register(site, "unpaid@example.com", plan="plus", card=DECLINES)  # and no deposit
    running.run(money.cycle.charge_fees())
    fee_declined = _one(running, "fees@example.com", "Your card was declined: fee paid from your deposit")
    suspended = _one(running, "unpaid@example.com", "Your fax account is suspended")
    # Pages beyond the Plus allowance overdraw the account; the top-up, made by the
    # money component's loop, is declined.
    overdrawn = register(site, "overdrawn@example.com", plan="plus", card=DECLINES)
    running.run(_receive(money, overdrawn, "Foverdrawn", pages=160))
    charge_declined = _one(running, "overdrawn@example.com", "Your card was declined")
    # Fair use: the others received a page or two each, so the Plus line is its floor (130).
    crowded = register(site, "crowded@example.com", plan="free")
    heavy = register(site, "heavy@example.com", plan="plus")
    running.run(_receive(money, crowded, "Fcrowded", pages=21))
    running.run(_receive(money, heavy, "Fheavy", pages=140))
    running.run(money.cycle.fair_use())
    fair_use = _one(running, "crowded@example.com", "Your free fax number is over its fair-use limit")
    overage = _one(running, "heavy@example.com", "Fair-use overage charged")

    # The abuse desk, without the IMAP mailbox: three people report spam that gives one
    # customer's number; each is answered, the customer is told each time, and the
    # third distinct reporter suspends the account (abuse.suspend_threshold = 3).
    customer(site, "holder@example.com", "+15550100030", plan="plus")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="abuse-samples") as executor:
        running.run(_report_abuse(running, executor, "+1 555 010 0030"))
    abuse_ack = _one(running, "first@example.net", "Re: Spam using one of your fax numbers")
    abuse_notice = _one(running, "holder@example.com", "Abuse report about your fax number")
    abuse_suspension = _one(running, "holder@example.com", "Your fax account is suspended")

    made = {
        "fax-with-promo": with_promo,
        "fax-without-promo": without_promo,
        "opt-out-notice": opt_out,
        "idle-notice": idle_notice,
        "bounce-notice": bounce_notice,
        "announcement": announcement,
        "rejection": rejection,
        "receipt": receipt,
        "fee-declined": fee_declined,
        "account-suspended": suspended,
        "charge-declined": charge_declined,
        "fair-use": fair_use,
        "fair-use-overage": overage,
        "abuse-ack": abuse_ack,
        "abuse-notice": abuse_notice,
        "abuse-suspension": abuse_suspension,
    }
    queued = _queued_kinds(running)
    signer = running.signer
    assert signer is not None
    return OutgoingMail(
        samples={name: Sample(queued[_as_stored(raw)], raw) for name, raw in made.items()},
        dns_records=signer.dns_records(),
    )


def _as_stored(raw: bytes) -> bytes:
    """The spool's copy of a delivered mail: the Maildir adds only the Return-Path line."""
    assert raw.startswith(b"Return-Path:"), raw[:80]
    return raw.split(b"\n", 1)[1]


def _queued_kinds(running: Running) -> dict[bytes, MailKind]:
    """Every mail the server queued, as stored, with the kind it was queued as."""
    kinds = {}
    for row in running.site.query("SELECT payload FROM jobs WHERE queue = ?", QueueName.MAIL.value):
        mail = QueuedMail.model_validate_json(row["payload"])
        kinds[Path(mail.eml_path).read_bytes()] = mail.kind
    return kinds


async def _pay_first_deposit(money: MoneyComponent, account_id: int) -> None:
    """The first deposit (R-DEP-1), charged as for a one-page fax that then ends."""
    job = FaxJob(
        id=f"Fdeposit{account_id}", submission_id=f"Fdeposit{account_id}", account_id=account_id,
        envelope_from="fees@example.com", from_header="fees@example.com", recipients=["+12125550100"],
        received_at=utcnow(), raw_path="/dev/null", work_dir="/tmp",
        rendered=RenderedDocument(tiff_path="/dev/null", pdf_path="/dev/null", page_count=1),
    )
    await money.metering.authorise(job)
    async with money.metering.db.transaction() as tx:
        await money.metering.settle(tx, job=job)


async def _put_card(money: MoneyComponent, account_id: int, number: str) -> None:
    processor = money.metering.processor
    token = await processor.tokenize(number)
    async with money.metering.db.transaction() as tx:
        await put_card_on_file(tx, account_id=account_id, processor_name=processor.name, token=token, at=utcnow())


async def _receive(money: MoneyComponent, account_id: int, fax_id: str, *, pages: int) -> None:
    """Charge a received fax as inbound delivery does (R-USE-1, R-PLAN-2)."""
    async with money.metering.db.transaction() as tx:
        await money.metering.charge_receptions(tx, [Reception(account_id, fax_id, pages, 0.0, "local")])


async def _report_abuse(running: Running, executor: Executor, number_text: str) -> None:
    """What the abuse component's poller does with each new message (bridge.abuse.component)."""
    services = running.server.app.services
    abuse = next(c for c in running.server.app.components if isinstance(c, AbuseComponent))
    context = build_context(services.settings, services.db, services.outbox, executor)
    steps = build_pipeline(abuse.pipeline_setting, services.settings.abuse.pipeline, abuse.steps, context)
    pipeline = AbusePipeline(context, steps)
    made = (reports.attached("first@example.net", number_text), reports.inline("second@example.net", number_text),
            reports.arf("third@example.net", number_text))
    for uid, raw in enumerate(made, start=1):
        job = AbuseJob(new_id("A"), "INBOX", 1, uid, raw, hashlib.sha256(raw).hexdigest())
        await pipeline.process(job)
        assert job.outcome == MATCHED, (job.outcome, job.reason)


async def _announce(running: Running, to: str) -> None:
    from bridge.inbound.messages import account_notice

    services = running.server.app.services
    notice = account_notice(
        services.settings, to=[to], subject="Maintenance on Sunday 6 December",
        body="On Sunday 6 December from 06:00 to 07:00 UTC faxes to your number may arrive\n"
             "a few minutes late. Nothing is lost, and you do not need to do anything.\n",
    )
    async with services.db.transaction() as tx:
        await services.outbox.enqueue(tx, notice, kind=MailKind.ANNOUNCEMENT)
