"""Fixtures for the money tests: a real SQLite database at the newest schema, a clock
the test moves, the offline processor (the one payment processor faxbridge ships,
behind the real interface), and the billing cycle with a real outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bridge.core import schema
from bridge.core.db import Database
from bridge.settings import Settings
from tests.money.support import Books, MovableClock
from tests.support import Site


@pytest.fixture
def site(tmp_path) -> Site:
    return Site(tmp_path).write()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(site: Site) -> Settings:
    settings = site.settings()
    schema.upgrade(settings.database.url)  # blocking (Alembic runs its own loop): before the test's loop
    return settings


@pytest.fixture
async def books(settings: Settings, clock: MovableClock) -> AsyncIterator[Books]:
    db = Database(settings.database.url)
    try:
        yield Books(settings, db, clock)
    finally:
        await db.close()
