"""Fixtures for the account state tests: the money tests' books (a migrated SQLite
database, the billing cycle, the offline processor) and the abuse pipeline run on
reports handed to it directly, without an IMAP server."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.abuse.pipeline import AbuseContext, AbuseJob, build_context
from bridge.core import schema
from bridge.core.db import Database
from bridge.settings import Settings
from handlers.abuse.act import Act
from handlers.abuse.classify import Classify
from handlers.abuse.match import MatchNumbers
from tests.abuse import reports
from tests.money.support import Books, MovableClock
from tests.support import Site


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path).write()


@pytest.fixture
def settings(site: Site) -> Settings:
    settings = site.settings()
    schema.upgrade(settings.database.url)  # blocking (Alembic runs its own loop): before the test's loop
    return settings


@pytest.fixture
async def books(settings: Settings) -> AsyncIterator[Books]:
    db = Database(settings.database.url)
    try:
        yield Books(settings, db, MovableClock(datetime.now(UTC)))
    finally:
        await db.close()


class AbuseDesk:
    """The abuse pipeline's steps (classify, match, act) over the books' database and
    outbox, for reports handed over the way the poller hands them."""

    def __init__(self, context: AbuseContext) -> None:
        self.context = context
        self.steps = (Classify(context), MatchNumbers(context), Act(context))
        self._uids = itertools.count(1)

    async def report(self, reporter: str, number_text: str) -> AbuseJob:
        uid = next(self._uids)
        raw = reports.inline(reporter, number_text)
        job = AbuseJob(id=f"Atest{uid}", mailbox="INBOX", uidvalidity=1, uid=uid, raw=raw,
                       sha256=hashlib.sha256(raw).hexdigest())
        for step in self.steps:
            await step.process(job)
        assert job.outcome == "matched", (job.outcome, job.reason)
        return job

    async def reach_threshold(self, number_text: str) -> int:
        """Distinct reporters until the case suspends (R-ABUSE-3); returns the case id."""
        for n in range(self.context.abuse.suspend_threshold):
            job = await self.report(f"reporter{n}@example.net", number_text)
        [case_id] = job.case_ids
        return case_id


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="abuse-test")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True)


@pytest.fixture
def abuse(settings: Settings, books: Books, executor: ThreadPoolExecutor) -> AbuseDesk:
    return AbuseDesk(build_context(settings, books.db, books.outbox, executor))
