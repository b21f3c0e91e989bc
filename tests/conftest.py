"""Fixtures shared by the whole suite: a site on free ports, a running server,
registered customers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bridge import schema
from bridge.accounts import create_account
from bridge.db import Database
from tests.support import Site, ThreadedServer


@pytest.fixture
def site(tmp_path) -> Site:
    return Site(tmp_path).write()


@pytest.fixture
def server(site: Site) -> Iterator[ThreadedServer]:
    running = ThreadedServer(site.settings()).start()
    try:
        yield running
    finally:
        running.stop()


def register(site: Site, *senders: str, pin: str | None = None, state: str = "active", plan: str = "plus") -> int:
    """Register an account straight in the database; returns its id."""
    settings = site.settings()
    schema.upgrade(settings.database.url)

    async def work() -> int:
        db = Database(settings.database.url)
        try:
            async with db.transaction() as tx:
                account = await create_account(tx, senders=list(senders), plan=plan, pin=pin)
                account.state = state
            return account.id
        finally:
            await db.close()

    return asyncio.run(work())


@pytest.fixture
def alice(site: Site) -> str:
    register(site, "alice@example.com", pin="2468")
    return "alice@example.com"
