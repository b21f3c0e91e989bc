"""Fixtures shared by the whole suite: a site on free ports, a running server,
registered customers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bridge.accounts.senders import create_account
from bridge.core import schema
from bridge.core.db import Database
from bridge.core.models import utcnow
from bridge.money.meter import Metering
from bridge.money.payments import put_card_on_file
from tests.accounts.support import put_in_state
from tests.postgres import postgres_server  # noqa: F401  (a session fixture for every test package)
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


# The offline development processor's card that always approves (bridge.money.processor).
APPROVING_CARD = "4242424242424242"


def register(
    site: Site, *senders: str, pin: str | None = None, state: str = "active", plan: str = "plus",
    card: str | None = APPROVING_CARD,
) -> int:
    """Register an account straight in the database, with a card on file for its
    deposit (R-DEP-1) unless `card` is None; returns its id."""
    settings = site.settings()
    schema.upgrade(settings.database.url)

    async def work() -> int:
        db = Database(settings.database.url)
        try:
            async with db.transaction() as tx:
                account = await create_account(tx, senders=list(senders), plan=plan, pin=pin)
                await put_in_state(tx, account, state)
            if card:
                processor = Metering(settings, db).processor
                token = await processor.tokenize(card)
                async with db.transaction() as tx:
                    await put_card_on_file(
                        tx, account_id=account.id, processor_name=processor.name, token=token, at=utcnow()
                    )
            return account.id
        finally:
            await db.close()

    return asyncio.run(work())


@pytest.fixture
def alice(site: Site) -> str:
    register(site, "alice@example.com", pin="2468")
    return "alice@example.com"
