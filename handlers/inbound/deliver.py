"""Inbound step `deliver`: mail the fax to the account's delivery addresses and charge
it (R-MAIL-3, R-USE-1).

Where it sits: last step of the inbound pipeline. `process` builds one mail per working
delivery address (at most 5; addresses marked failing are skipped), each with its own
VERP envelope sender `bounces+TOKEN@` so a bounce names the address that failed
(R-ACCT-5 (ii)), and has them signed and stored in an inbound worker process
(bridge.inbound.workpool), outside any transaction.
`record`, inside the runner's batch commit, queues those mails, charges the faxes of
the batch (bridge.money's `charge_receptions`) and marks their rows `delivered`,
together: a fax is charged exactly when its mails are queued.

The account must still be active at the commit: a fax never reaches an account closed
or suspended since it arrived (R-NUM-2). Safe to run again: the mails are stored under
ids made from the fax's, so a second run replaces its own files; a row already
`delivered` makes `record` do nothing (and a delivered fax's job ends in that same
commit, so it is not claimed again).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import Account
from bridge.core.models import utcnow
from bridge.inbound.accounts import AccountView, verp_sender
from bridge.inbound.jobs import InboundFaxJob
from bridge.inbound.messages import fax_mail
from bridge.inbound.models import DELIVERED, InboundFaxRecord
from bridge.inbound.pipeline import InboundContext, InboundMetering, InboundRecordingStep, RejectInbound
from bridge.inbound.workpool import WorkContext
from bridge.mail.kinds import MailKind
from bridge.mail.mime import Attachment
from bridge.mail.outbox import StoredMail
from bridge.money.meter import Reception

log = logging.getLogger("bridge.inbound")


class Deliver(InboundRecordingStep):
    """Store the fax mail for every working delivery address; queue them and charge."""

    name = "deliver"

    def __init__(self, context: InboundContext) -> None:
        self.services = context.services
        self.metering: InboundMetering | None = context.metering
        self.work = context.work
        self.accounts = context.accounts

    async def process(self, job: InboundFaxJob) -> None:
        account = await self.accounts.get(job.account_id)
        refusal = _refusal(account.state if account else None)
        if refusal is not None:
            raise refusal
        assert account is not None
        recipients = [
            (address, verp_sender(self.services.settings, account.bounce_tokens[address]))
            for address in account.addresses
        ]
        job.mails = await self.work.run(store_fax_mails, job, recipients, account) if recipients else []

    async def record(self, tx: AsyncSession, faxes: Sequence[InboundFaxJob]) -> dict[str, RejectInbound]:
        """Queue the stored mails, charge and mark delivered every fax of the batch whose
        account is still active; the others are refused (R-NUM-2), nothing written."""
        refused: dict[str, RejectInbound] = {}
        deliverable: list[tuple[InboundFaxJob, InboundFaxRecord | None]] = []
        for fax in faxes:
            row = await tx.get(InboundFaxRecord, fax.id)
            if row is not None and row.state == DELIVERED:
                continue  # an earlier run committed
            account = await tx.get(Account, fax.account_id)
            refusal = _refusal(account.state if account is not None else None)
            if refusal is not None:
                refused[fax.id] = refusal
                continue
            deliverable.append((fax, row))
        charged: dict[str, int] = {}
        if self.metering is not None and deliverable:
            charged = await self.metering.charge_receptions(tx, [
                Reception(fax.account_id, fax.id, fax.pages, fax.line_seconds, fax.number_kind)
                for fax, _ in deliverable
            ])
        for fax, row in deliverable:
            for stored in fax.mails:
                self.services.outbox.queue_stored(tx, stored)
            if row is not None:
                row.state = DELIVERED
                row.delivered_at = utcnow()
                row.charged_minor = charged.get(fax.id, 0)
                row.detail = "" if fax.mails else "no working delivery address; kept in the message center"
            if not fax.mails:
                log.warning("account %s has no working delivery address; fax %s is only in the message center",
                            fax.account_id, fax.id)
        return refused


def store_fax_mails(
    context: WorkContext, job: InboundFaxJob, recipients: list[tuple[str, str]], account: AccountView
) -> list[StoredMail]:
    """In a worker: build, sign and store one fax mail per (address, envelope sender)."""
    attachment = _attachment(job, as_tiff=account.inbound_format == "tiff")
    return [
        context.mails.store(
            fax_mail(context.settings, job, to=address, envelope_from=envelope_from,
                     time_zone=account.time_zone, attachment=attachment),
            kind=MailKind.INBOUND_FAX, about_job=job.id, mail_id=f"M{job.id[1:]}-{n}",
            sync=False,  # the runner fsyncs the batch's files and directories before its commit
        )
        for n, (address, envelope_from) in enumerate(recipients, start=1)
    ]


def _refusal(account_state: str | None) -> RejectInbound | None:
    """R-NUM-2: never deliver to an account that is no longer the number's holder."""
    if account_state == "active":
        return None
    return RejectInbound(f"the account is {account_state or 'gone'}")


def _attachment(job: InboundFaxJob, *, as_tiff: bool) -> Attachment:
    name = f"fax-{job.received_at:%Y%m%d-%H%M%S}-{(job.caller_number or 'unknown').lstrip('+')}"
    if as_tiff or not job.pdf_path:
        path = Path(job.stored_tiff or job.tiff_path)
        return Attachment(path.read_bytes(), "image", "tiff", f"{name}.tif")
    return Attachment(Path(job.pdf_path).read_bytes(), "application", "pdf", f"{name}.pdf")
