"""Inbound intake: a fax the line received becomes a durable `inbound` job.

Where it sits: fax line in -> *intake* -> inbound pipeline. The fax line awaits
`accept(fax)` once the pages are on disk; accept moves the TIFF into the spool
(spool/inbound/<id>.tif, fsynced) and, in one transaction, records the fax in
`inbound_faxes` and queues its job. When it returns the fax is safe: a crash after
that loses nothing. When it raises, the fax was not taken and its file is back where
the line left it (the line offers it again). Faxes that several lines hand over
together share that commit (bridge.core.db.GroupCommit).

Routing is decided here, by the number's holder at the moment the fax arrived (read
in one query for the faxes handed over together: a `Coalescer`, as the commit):
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
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, bindparam, or_, select

from bridge.accounts.models import Account, FaxNumber
from bridge.core.db import Coalescer, Database, GroupCommit
from bridge.core.ids import new_id
from bridge.core.logcontext import current_job
from bridge.core.models import Job
from bridge.core.queue import JobQueue
from bridge.core.spool import fsync_file
from bridge.faxline.base import InboundFax
from bridge.inbound.jobs import QUEUE_INBOUND, InboundFaxJob
from bridge.inbound.models import (
    BLOCKED,
    QUEUED,
    UNROUTED,
    BlockedSender,
    InboundFaxRecord,
)

if TYPE_CHECKING:
    from bridge.services import Services

log = logging.getLogger("bridge.inbound.intake")


class InboundIntake:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.inbound
        self.spool_dir = services.spool.root / "inbound"
        self.held_dir = self.spool_dir / "held"
        # urgent: the fax line waits for this answer, like an SMTP client for its 250.
        self.commits = GroupCommit(services.db, urgent=True)
        self.routes: Coalescer[RouteKey, Route | None] = Coalescer(partial(_read_routes, services.db),
                                                                   name="inbound-routes")

    async def accept(self, fax: InboundFax) -> str:
        """Take a received fax into the service; returns its id."""
        fax_id = new_id("R")
        token = current_job.set(fax_id)
        try:
            return await self._accept(fax_id, fax)
        finally:
            current_job.reset(token)

    async def _accept(self, fax_id: str, fax: InboundFax) -> str:
        station = fax.remote_station_id.strip()
        route = await self.routes((fax.to_number, fax.caller_number, station))
        if route is None or route.state != "assigned" or route.account_state != "active":
            state = UNROUTED
        else:
            state = BLOCKED if route.blocked else QUEUED
        keep = state == QUEUED or (state == UNROUTED and self.settings.unrouted == "hold")
        target = (self.spool_dir if state == QUEUED else self.held_dir) / f"{fax_id}.tif"
        record = dict(
            id=fax_id,
            account_id=route.account_id if route is not None and state != UNROUTED else None,
            to_number=fax.to_number,
            number_kind=route.kind if route is not None else "",
            caller_number=fax.caller_number,
            remote_station_id=station,
            pages=fax.pages,
            line_seconds=fax.line_seconds,
            received_at=fax.received_at,
            state=state,
            detail=_why(state, route),
            tiff_path=str(target) if keep else "",
            pdf_path="",
            charged_minor=0,
            delivered_at=None,
            purged_at=None,
        )
        # The type: ignores: SQLAlchemy types a model's __table__ as any FromClause (a
        # class may be mapped to a join); these models are mapped to Tables.
        rows: dict[Table, list[dict[str, Any]]] = {InboundFaxRecord.__table__: [record]}  # type: ignore[dict-item]
        if state == QUEUED:
            # Queued only for a number assigned to an active account: it has a holder.
            assert route is not None and route.account_id is not None
            job = InboundFaxJob(
                id=fax_id, account_id=route.account_id, to_number=fax.to_number, number_kind=route.kind,
                caller_number=fax.caller_number, remote_station_id=station, pages=fax.pages,
                line_seconds=fax.line_seconds, received_at=fax.received_at, tiff_path=str(target),
            )
            rows[Job.__table__] = [JobQueue.new_row(QUEUE_INBOUND, job, job_id=fax_id)]  # type: ignore[index]
        try:
            if keep:
                await asyncio.to_thread(_move_durably, fax.tiff_path, target)
            await self.commits.insert(rows, sync_directories=[target.parent] if keep else [])
        except Exception:
            # Nothing of the fax was written: it goes back where the line left it, so
            # that the line can offer it again (or an operator find it there).
            if keep:
                await asyncio.to_thread(_put_back, target, fax.tiff_path)
            raise
        if state == QUEUED:
            self.services.queue.wake(QUEUE_INBOUND)
            log.info("fax from %s to %s, %d page(s): queued for account %s",
                     fax.caller_number or "unknown", fax.to_number, fax.pages, record["account_id"])
        else:
            if not keep:
                await asyncio.to_thread(fax.tiff_path.unlink, True)
            log.info("fax from %s to %s, %d page(s): %s (%s)%s", fax.caller_number or "unknown", fax.to_number,
                     fax.pages, state, record["detail"], f"; held at {target}" if keep else "; discarded")
        return fax_id


@dataclass(frozen=True)
class Route:
    """Where a fax to a number goes: the number, its holder and the holder's state, and
    whether the holder blocked the fax's caller or station."""

    kind: str
    state: str
    account_id: int | None
    account_state: str | None
    blocked: bool


RouteKey = tuple[str, str, str]  # (number dialled, caller ID, station ID)

# The numbers of a group of faxes with their holders, and the holders' blocked senders
# among the group's callers and stations (one query; built once, run with bound values).
_ROUTES = (
    select(FaxNumber.e164, FaxNumber.kind, FaxNumber.state, FaxNumber.account_id,
           Account.state.label("account_state"), BlockedSender.kind.label("blocked_kind"),
           BlockedSender.value.label("blocked_value"))
    .outerjoin(Account, Account.id == FaxNumber.account_id)
    .outerjoin(BlockedSender, and_(
        BlockedSender.account_id == FaxNumber.account_id,
        or_(
            (BlockedSender.kind == "caller") & BlockedSender.value.in_(bindparam("callers", expanding=True)),
            (BlockedSender.kind == "station") & BlockedSender.value.in_(bindparam("stations", expanding=True)),
        ),
    ))
    .where(FaxNumber.e164.in_(bindparam("numbers", expanding=True)))
)


async def _read_routes(db: Database, keys: list[RouteKey]) -> list[Route | None]:
    """The route of each (number, caller, station), or None for a number not ours."""
    async with db.reading() as session:
        rows = (await session.execute(_ROUTES, {
            "numbers": sorted({number for number, _, _ in keys}),
            "callers": sorted({caller for _, caller, _ in keys}),
            "stations": sorted({station for _, _, station in keys}),
        })).all()
    numbers = {row.e164: row for row in rows}
    blocks = {(row.e164, row.blocked_kind, row.blocked_value) for row in rows if row.blocked_kind}
    routes: list[Route | None] = []
    for number, caller, station in keys:
        row = numbers.get(number)
        routes.append(None if row is None else Route(
            kind=row.kind, state=row.state, account_id=row.account_id, account_state=row.account_state,
            blocked=(number, "caller", caller) in blocks or (number, "station", station) in blocks,
        ))
    return routes


def _why(state: str, route: Route | None) -> str:
    if state == QUEUED:
        return ""
    if state == BLOCKED:
        return "caller or station blocked by the account (junk filter)"
    if route is None:
        return "not one of our numbers"
    if route.account_id is None or route.account_state is None:
        return "the number has no holder"
    if route.state != "assigned":
        return f"the number is {route.state}"
    return f"the account is {route.account_state}"


def _put_back(target: Path, source: Path) -> None:
    """Undo `_move_durably` (or what of it happened) for a fax that was not taken."""
    if target.exists():
        shutil.move(target, source)


def _move_durably(source: Path, target: Path) -> None:
    """Move the received file into the spool and make its bytes durable (the line wrote
    it without fsync). Its new name is made durable by the group commit, which fsyncs
    the spool directory once for all the faxes it commits."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError:  # another file system: copy, then drop the original
        shutil.copyfile(source, target)
        source.unlink()
    fsync_file(target)
