"""The inbound runner commits received faxes in batches (bridge/inbound/pipeline.py):
each fax is still delivered and charged exactly once, an account closed meanwhile
gets nothing (R-NUM-2), one fax whose books cannot be written does not hold back the
others, and a crash before the commit repeats work, never mail or money (R-USE-1,
Non-negotiable 2).

These tests drive the real component (intake, steps, worker processes, metering) over
a real database, SQLite and PostgreSQL each, and hand the runner its batch directly, so
that what is in a batch is known.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import handlers.inbound
from bridge.accounts.models import Account, FaxNumber
from bridge.accounts.senders import create_account
from bridge.core.component import Provided
from bridge.core.db import Database
from bridge.core.models import Job
from bridge.core.pipeline import steps_in
from bridge.core.queue import DONE, FAILED, REJECTED, JobQueue
from bridge.core.spool import Spool
from bridge.faxline.base import InboundFax
from bridge.inbound import intake as intake_module
from bridge.inbound.component import InboundComponent
from bridge.inbound.jobs import QUEUE_INBOUND
from bridge.inbound.models import BLOCKED, DELIVERED, QUEUED, UNDELIVERABLE, UNROUTED, BlockedSender, InboundFaxRecord
from bridge.inbound.pipeline import InboundRunner, InboundStep
from bridge.mail.jobs import QUEUE_MAIL
from bridge.money.meter import METERING, Metering, Reception
from bridge.money.models import UsageRecord
from bridge.services import Services
from tests.support import Site


class BooksUnavailable(Exception):
    pass


class FlakyMetering:
    """The real metering, except that charging `failing` raises until `heal()`."""

    def __init__(self, real: Metering) -> None:
        self.real = real
        self.failing: set[str] = set()

    def heal(self) -> None:
        self.failing.clear()

    async def charge_receptions(self, tx: AsyncSession, receptions: Sequence[Reception]) -> dict[str, int]:
        if self.failing & {r.fax_id for r in receptions}:
            raise BooksUnavailable("the books cannot be written just now")
        return await self.real.charge_receptions(tx, receptions)


@dataclass
class Inbound:
    site: Site
    db: Database
    queue: JobQueue
    spool: Spool
    component: InboundComponent
    metering: FlakyMetering
    fax: Path

    @property
    def runner(self) -> InboundRunner:
        return self.component.runner

    async def account(self, n: int, plan: str = "plus") -> tuple[int, str]:
        number = f"+1555030{n:04d}"
        async with self.db.transaction() as tx:
            account = await create_account(tx, senders=[f"customer{n}@example.com"], plan=plan)
            tx.add(FaxNumber(e164=number, kind="local", account_id=account.id, state="assigned"))
        return account.id, number

    async def receive(self, number: str, caller: str = "+15550100777", station: str = "ACME SALES") -> str:
        copy = self.site.root / f"line-{uuid.uuid4().hex}.tif"
        shutil.copyfile(self.fax, copy)
        return await self.component.intake.accept(InboundFax(
            to_number=number, caller_number=caller, remote_station_id=station, tiff_path=copy,
            pages=3, line_seconds=95.0, received_at=datetime.now(UTC)))

    async def close(self, account_id: int) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(update(Account).where(Account.id == account_id).values(state="closed"))

    async def run_batch(self, expected: int) -> None:
        jobs = await self.queue.claim_many(QUEUE_INBOUND, 16)
        assert len(jobs) == expected
        await self.runner.handle_batch(jobs)

    async def job(self, job_id: str) -> Job:
        async with self.db.reading() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            return job

    async def row(self, fax_id: str) -> InboundFaxRecord:
        async with self.db.reading() as session:
            row = await session.get(InboundFaxRecord, fax_id)
            assert row is not None
            return row

    async def usage(self, fax_id: str) -> int:
        async with self.db.reading() as session:
            return await session.scalar(select(func.count()).select_from(UsageRecord)
                                        .where(UsageRecord.source_key == f"inbound:{fax_id}")) or 0

    async def mails_about(self, fax_id: str) -> int:
        async with self.db.reading() as session:
            jobs = await session.scalars(select(Job).where(Job.queue == QUEUE_MAIL))
            return sum(1 for job in jobs if job.payload.get("about_job") == fax_id)

    def stored_mails(self) -> list[Path]:
        return sorted(self.spool.outgoing.glob("*.eml"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def inbound(request: pytest.FixtureRequest, tmp_path: Path, three_pages: Path) -> AsyncIterator[Inbound]:
    site = Site(tmp_path).write()
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").new_database()
        sqlite = f'url = "sqlite+aiosqlite:///{site.db_path}"'
        site.config.write_text(site.config.read_text().replace(sqlite, f'url = "{url}"'))
    settings = site.settings()
    services = await Services.open(settings, upgrade=True)
    metering = FlakyMetering(Metering(settings, services.db))
    provided = Provided()
    provided.provide(METERING, metering)  # type: ignore[arg-type]  # a Metering that fails on demand
    component = InboundComponent(services, provided, steps_in(handlers.inbound, InboundStep))
    await component.start()
    try:
        yield Inbound(site, services.db, services.queue, services.spool, component, metering, three_pages)
    finally:
        await component.stop()
        await services.db.close()


async def test_a_batch_delivers_each_fax_once_and_nothing_to_an_account_closed_meanwhile_r_num_2(
    inbound: Inbound, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, kept_number = await inbound.account(1)
    closed_early, early_number = await inbound.account(2)
    closed_late, late_number = await inbound.account(3)
    delivered = [await inbound.receive(kept_number) for _ in range(3)]
    early = await inbound.receive(early_number)
    late = await inbound.receive(late_number)
    await inbound.close(closed_early)  # before the batch starts: its steps refuse the fax

    commit = InboundRunner._commit

    async def close_just_before_the_commit(self, tx, worked, *, isolated=False):  # type: ignore[no-untyped-def]
        # Another writer closed the account after the steps ran, before the commit.
        await tx.execute(update(Account).where(Account.id == closed_late).values(state="closed"))
        return await commit(self, tx, worked, isolated=isolated)

    monkeypatch.setattr(InboundRunner, "_commit", close_just_before_the_commit)
    await inbound.run_batch(5)

    for fax_id in delivered:
        assert (await inbound.job(fax_id)).state == DONE
        assert (await inbound.row(fax_id)).state == DELIVERED
        assert await inbound.usage(fax_id) == 1
        assert await inbound.mails_about(fax_id) == 1
    for fax_id in (early, late):
        assert (await inbound.job(fax_id)).state == REJECTED
        row = await inbound.row(fax_id)
        assert (row.state, row.detail) == (UNDELIVERABLE, "the account is closed")
        assert await inbound.usage(fax_id) == 0  # R-USE-1: not delivered, not charged
        assert await inbound.mails_about(fax_id) == 0
    # The mail the late fax's steps had stored was removed with its refusal.
    assert len(inbound.stored_mails()) == len(delivered)


async def test_faxes_handed_over_together_are_each_routed_by_their_own_number_caller_and_station(
    inbound: Inbound,
) -> None:
    """The intake reads the routes of faxes that arrive together in one query: each fax
    still goes where its own number, caller and station say (junk filter, R-NUM-2)."""
    _, open_number = await inbound.account(1)
    picky, picky_number = await inbound.account(2)
    closed, closed_number = await inbound.account(3)
    async with inbound.db.transaction() as tx:
        tx.add(BlockedSender(account_id=picky, kind="station", value="JUNK CO"))
        tx.add(BlockedSender(account_id=picky, kind="caller", value="+15550109999"))
    await inbound.close(closed)

    arrivals = {
        "to an open account": (open_number, "+15550109999", "JUNK CO"),  # blocked elsewhere, not here
        "blocked station": (picky_number, "+15550100777", "JUNK CO"),
        "blocked caller": (picky_number, "+15550109999", "ACME SALES"),
        "neither blocked": (picky_number, "+15550100777", "ACME SALES"),
        "closed account": (closed_number, "+15550100777", "ACME SALES"),
        "not our number": ("+15550309999", "+15550100777", "ACME SALES"),
    }
    ids = await asyncio.gather(*(inbound.receive(*arrival) for arrival in arrivals.values()))
    states = {name: (await inbound.row(fax_id)).state for name, fax_id in zip(arrivals, ids, strict=True)}
    assert states == {
        "to an open account": QUEUED,
        "blocked station": BLOCKED,
        "blocked caller": BLOCKED,
        "neither blocked": QUEUED,
        "closed account": UNROUTED,
        "not our number": UNROUTED,
    }
    queued = await inbound.queue.claim_many(QUEUE_INBOUND, 16)
    assert {job.id for job in queued} == {ids[0], ids[3]}


@pytest.mark.parametrize("failing", ["the commit", "the fsync of the moved file"])
async def test_a_fax_the_intake_cannot_take_goes_back_to_the_line_and_is_taken_when_offered_again(
    inbound: Inbound, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """Non-negotiable 2: when accept raises, nothing of the fax is recorded and its file
    is where the line left it, so the line's next offer (bridge.faxline) takes it whole."""
    _, number = await inbound.account(1)
    line_file = inbound.site.root / "received-on-the-line.tif"
    shutil.copyfile(inbound.fax, line_file)
    fax = InboundFax(to_number=number, caller_number="+15550100777", remote_station_id="ACME SALES",
                     tiff_path=line_file, pages=3, line_seconds=95.0, received_at=datetime.now(UTC))
    if failing == "the commit":
        commits = inbound.component.intake.commits
        real_insert = commits.insert

        async def disk_full_once(rows, *, sync_directories=()):  # type: ignore[no-untyped-def]
            monkeypatch.setattr(commits, "insert", real_insert)
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(commits, "insert", disk_full_once)
    else:
        real_fsync = intake_module.fsync_file

        def disk_full_once(path: Path) -> None:
            monkeypatch.setattr(intake_module, "fsync_file", real_fsync)
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(intake_module, "fsync_file", disk_full_once)
    with pytest.raises(OSError, match="No space left"):
        await inbound.component.intake.accept(fax)
    assert line_file.exists() and line_file.read_bytes() == inbound.fax.read_bytes()
    async with inbound.db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(InboundFaxRecord)) == 0
    assert list((inbound.spool.root / "inbound").glob("*.tif")) == []

    fax_id = await inbound.component.intake.accept(fax)  # the line offers it again
    assert not line_file.exists()
    assert (await inbound.row(fax_id)).state == QUEUED
    await inbound.run_batch(1)
    assert (await inbound.row(fax_id)).state == DELIVERED and await inbound.mails_about(fax_id) == 1


async def test_a_fax_whose_books_fail_is_parked_alone_and_delivered_once_when_retried(inbound: Inbound) -> None:
    _, number = await inbound.account(1)
    faxes = [await inbound.receive(number) for _ in range(4)]
    stuck = faxes[2]
    inbound.metering.failing = {stuck}

    await inbound.run_batch(4)

    job = await inbound.job(stuck)
    assert job.state == FAILED and "BooksUnavailable" in (job.last_error or "")
    assert (await inbound.row(stuck)).state != DELIVERED
    assert await inbound.usage(stuck) == 0 and await inbound.mails_about(stuck) == 0
    for fax_id in faxes:
        if fax_id != stuck:
            # Written once, though the batch's first transaction was dropped.
            assert (await inbound.job(fax_id)).state == DONE
            assert await inbound.usage(fax_id) == 1 and await inbound.mails_about(fax_id) == 1

    inbound.metering.heal()
    await inbound.queue.retry(stuck)  # what `faxbridge jobs retry` does
    await inbound.run_batch(1)
    assert (await inbound.job(stuck)).state == DONE
    assert (await inbound.row(stuck)).state == DELIVERED
    assert await inbound.usage(stuck) == 1 and await inbound.mails_about(stuck) == 1
    assert len(inbound.stored_mails()) == len(faxes)


class Crash(BaseException):
    """The process dies: nothing after this point runs (not an Exception: no handler
    of the runner may catch it)."""


async def test_a_crash_before_the_commit_repeats_the_work_but_no_mail_and_no_charge(
    inbound: Inbound, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, number = await inbound.account(1)
    faxes = [await inbound.receive(number) for _ in range(3)]
    commit = InboundRunner._commit

    async def die(self, tx, worked, *, isolated=False):  # type: ignore[no-untyped-def]
        raise Crash()

    monkeypatch.setattr(InboundRunner, "_commit", die)
    with pytest.raises(Crash):
        await inbound.run_batch(3)
    # The steps ran: the mails are stored, but nothing is queued or charged.
    assert len(inbound.stored_mails()) == 3
    assert [await inbound.usage(f) for f in faxes] == [0, 0, 0]

    monkeypatch.setattr(InboundRunner, "_commit", commit)
    await inbound.queue.release_mine()  # what the next start does with a dead worker's jobs
    await inbound.run_batch(3)

    for fax_id in faxes:
        assert (await inbound.job(fax_id)).state == DONE
        assert await inbound.usage(fax_id) == 1 and await inbound.mails_about(fax_id) == 1
    # The second run stored its mails under the same names: no orphan beside them.
    assert len(inbound.stored_mails()) == 3
