"""Inbound step `deliver`: mail the fax to the account's delivery addresses and charge
it, in one transaction (R-MAIL-3, R-USE-1).

Where it sits: last step of the inbound pipeline; the outbox stores and queues the
mails, the mail runner relays them. One mail per delivery address (at most 5), each
with its own VERP envelope sender `bounces+TOKEN@`, so a bounce names the address
that failed (R-ACCT-5 (ii)); addresses marked failing are skipped. The account must
still be active: a fax never reaches an account closed or suspended since it arrived.
The fax's row turning `delivered` in the same transaction makes the step safe to run
again: a second run sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bridge.inbound.accounts import token_for, verp_sender, working_addresses
from bridge.inbound.jobs import InboundFaxJob
from bridge.inbound.messages import Attachment, fax_mail
from bridge.inbound.models import DELIVERED, InboundFaxRecord
from bridge.inbound.pipeline import InboundContext, InboundMetering, RejectInbound
from bridge.models import Account, utcnow

log = logging.getLogger("bridge.inbound")


class Deliver:
    """Queue the fax mail for every working delivery address and charge the fax."""

    name = "deliver"

    def __init__(self, context: InboundContext) -> None:
        self.services = context.services
        self.metering: InboundMetering | None = context.metering

    async def process(self, job: InboundFaxJob) -> None:
        settings = self.services.settings
        db = self.services.db
        async with db.reading() as session:
            account = await session.get(Account, job.account_id)
            as_tiff = account is not None and account.inbound_format == "tiff"
        attachment = await asyncio.to_thread(_attachment, job, as_tiff)
        async with db.transaction() as tx:
            record = await tx.get(InboundFaxRecord, job.id)
            if record is not None and record.state == DELIVERED:
                return  # an earlier run committed; nothing to send twice
            account = await tx.get(Account, job.account_id, populate_existing=True)
            if account is None or account.state != "active":
                # R-NUM-2: never deliver to an account that is no longer the holder.
                raise RejectInbound(f"the account is {account.state if account else 'gone'}")
            addresses = await working_addresses(tx, account)
            mail_ids = []
            for address in addresses:
                bounce_token = await token_for(tx, "bounce", account.id, address)
                message = fax_mail(settings, job, to=address, envelope_from=verp_sender(settings, bounce_token),
                                   time_zone=account.time_zone, attachment=attachment)
                mail_ids.append(await self.services.outbox.enqueue(tx, message, kind="inbound-fax", about_job=job.id))
            charged = 0
            if self.metering is not None:
                charged = await self.metering.charge_inbound(
                    tx, account_id=account.id, fax_id=job.id, pages=job.pages,
                    line_seconds=job.line_seconds, number_kind=job.number_kind,
                )
            if record is not None:
                record.state = DELIVERED
                record.delivered_at = utcnow()
                record.charged_minor = charged
                record.detail = "" if addresses else "no working delivery address; kept in the message center"
        job.mail_ids = mail_ids
        if not addresses:
            log.warning("account %s has no working delivery address; the fax is only in the message center", account.id)
        else:
            log.info("mailed to %s", ", ".join(addresses))


def _attachment(job: InboundFaxJob, as_tiff: bool) -> Attachment:
    name = f"fax-{job.received_at:%Y%m%d-%H%M%S}-{(job.caller_number or 'unknown').lstrip('+')}"
    if as_tiff or not job.pdf_path:
        path = Path(job.stored_tiff or job.tiff_path)
        return Attachment(path.read_bytes(), "image", "tiff", f"{name}.tif")
    return Attachment(Path(job.pdf_path).read_bytes(), "application", "pdf", f"{name}.pdf")
