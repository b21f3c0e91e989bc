"""Inbound intake: a fax the line received becomes a durable `inbound` job.

Where it sits: fax line in -> *intake* -> inbound pipeline. The fax line awaits
`accept(fax)` once the pages are on disk; accept moves the TIFF into the spool
(spool/inbound/<id>.tif, fsynced) and, in one transaction, records the fax in
`inbound_faxes` and queues its job. When it returns the fax is safe: a crash after
that loses nothing.

Routing is decided here, by the number's holder at the moment the fax arrived:
  * the number is assigned and its account active -> queued for delivery;
  * a caller ID or station ID the account blocked -> recorded as `blocked`: neither
    delivered nor counted as usage (junk filter);
  * anything else (no holder, a suspended number or account, a closed account) ->
    `unrouted`, per `inbound.unrouted`: discarded, or held in spool/inbound/held/ for
    an operator. It is never delivered to a former holder (R-NUM-2).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

from sqlalchemy import or_, select

from bridge.components import Services
from bridge.faxline.base import InboundFax
from bridge.inbound.jobs import QUEUE_INBOUND, InboundFaxJob
from bridge.inbound.models import BLOCKED, QUEUED, UNROUTED, BlockedSender, InboundFaxRecord
from bridge.jobs import new_id
from bridge.logcontext import current_job
from bridge.models import Account, FaxNumber
from bridge.queue import JobQueue
from bridge.spool import fsync_directory

log = logging.getLogger("bridge.inbound.intake")


class InboundIntake:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.inbound
        self.spool_dir = services.spool.root / "inbound"
        self.held_dir = self.spool_dir / "held"

    async def accept(self, fax: InboundFax) -> str:
        """Take a received fax into the service; returns its id."""
        fax_id = new_id("R")
        token = current_job.set(fax_id)
        try:
            return await self._accept(fax_id, fax)
        finally:
            current_job.reset(token)

    async def _accept(self, fax_id: str, fax: InboundFax) -> str:
        db = self.services.db
        async with db.reading() as session:
            number = await session.scalar(select(FaxNumber).where(FaxNumber.e164 == fax.to_number))
            account = await session.get(Account, number.account_id) if number and number.account_id else None
            blocked = False
            if account is not None:
                blocked = await session.scalar(
                    select(BlockedSender.id).where(
                        BlockedSender.account_id == account.id,
                        or_(
                            (BlockedSender.kind == "caller") & (BlockedSender.value == fax.caller_number),
                            (BlockedSender.kind == "station") & (BlockedSender.value == fax.remote_station_id.strip()),
                        ),
                    ).limit(1)
                ) is not None
        routable = (
            number is not None and number.state == "assigned" and account is not None and account.state == "active"
        )
        state = QUEUED if routable and not blocked else BLOCKED if routable else UNROUTED
        keep = state == QUEUED or (state == UNROUTED and self.settings.unrouted == "hold")
        target = (self.spool_dir if state == QUEUED else self.held_dir) / f"{fax_id}.tif"
        if keep:
            await asyncio.to_thread(_move_durably, fax.tiff_path, target)
        record = InboundFaxRecord(
            id=fax_id,
            account_id=account.id if account is not None and state != UNROUTED else None,
            to_number=fax.to_number,
            number_kind=number.kind if number is not None else "",
            caller_number=fax.caller_number,
            remote_station_id=fax.remote_station_id.strip(),
            pages=fax.pages,
            line_seconds=fax.line_seconds,
            received_at=fax.received_at,
            state=state,
            tiff_path=str(target) if keep else "",
            detail=_why(state, number, account),
        )
        async with db.transaction() as tx:
            tx.add(record)
            if state == QUEUED:
                assert account is not None and number is not None
                job = InboundFaxJob(
                    id=fax_id, account_id=account.id, to_number=fax.to_number, number_kind=number.kind,
                    caller_number=fax.caller_number, remote_station_id=fax.remote_station_id.strip(),
                    pages=fax.pages, line_seconds=fax.line_seconds, received_at=fax.received_at,
                    tiff_path=str(target),
                )
                JobQueue.add(tx, QUEUE_INBOUND, job, job_id=fax_id)
        if state == QUEUED:
            self.services.queue.wake(QUEUE_INBOUND)
            log.info("fax from %s to %s, %d page(s): queued for account %s",
                     fax.caller_number or "unknown", fax.to_number, fax.pages, record.account_id)
        else:
            if not keep:
                await asyncio.to_thread(fax.tiff_path.unlink, True)
            log.info("fax from %s to %s, %d page(s): %s (%s)%s", fax.caller_number or "unknown", fax.to_number,
                     fax.pages, state, record.detail, f"; held at {target}" if keep else "; discarded")
        return fax_id


def _why(state: str, number: FaxNumber | None, account: Account | None) -> str:
    if state == QUEUED:
        return ""
    if state == BLOCKED:
        return "caller or station blocked by the account (junk filter)"
    if number is None:
        return "not one of our numbers"
    if number.account_id is None or account is None:
        return "the number has no holder"
    if number.state != "assigned":
        return f"the number is {number.state}"
    return f"the account is {account.state}"


def _move_durably(source: Path, target: Path) -> None:
    """Move the received file into the spool and make both the bytes and the name
    durable (the line wrote it without fsync)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError:  # another file system: copy, then drop the original
        shutil.copyfile(source, target)
        source.unlink()
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(target.parent)
