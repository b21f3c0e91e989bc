"""Fixtures of the abuse mailbox tests: a private Dovecot, a site that reads it, the
running server, and accounts holding fax numbers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bridge.abuse.component import AbuseComponent
from bridge.abuse.poller import AbusePoller
from bridge.accounts.models import FaxNumber
from bridge.core import schema
from bridge.core.db import Database
from tests.abuse.dovecot import PASSWORD, USER, Dovecot
from tests.conftest import register
from tests.support import Site, ThreadedServer, wait_for


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot.create().start()
    try:
        yield server
    finally:
        server.remove()


def abuse_section(dovecot: Dovecot, **overrides: object) -> str:
    values: dict[str, object] = {
        "enabled": True,
        "imap_host": "127.0.0.1",
        "imap_port": dovecot.imaps_port,
        "imap_user": USER,
        "imap_password": PASSWORD,
        "imap_tls_verify": "insecure",
        "imap_timeout_seconds": 5,
        # Long: a report must arrive through IDLE, not through the fallback poll.
        "poll_seconds": 30,
        "reconnect_min_seconds": 0.1,
        "reconnect_max_seconds": 0.5,
        "suspend_threshold": 3,
        **overrides,
    }
    lines = ["[abuse]"]
    for key, value in values.items():
        shown = str(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, str) else value
        lines.append(f"{key} = {shown}")
    return "\n".join(lines).replace("'", '"') + "\n"


@pytest.fixture
def abuse_site(site: Site, dovecot: Dovecot) -> Site:
    site.extra = abuse_section(dovecot)
    return site.write()


@pytest.fixture
def abuse_server(abuse_site: Site) -> Iterator[ThreadedServer]:
    running = ThreadedServer(abuse_site.settings()).start()
    try:
        wait_for(lambda: poller_of(running).connections >= 1, timeout=20, what="the poller to log in")
        yield running
    finally:
        running.stop()


def poller_of(server: ThreadedServer) -> AbusePoller:
    component = next(c for c in server.app.components if isinstance(c, AbuseComponent))
    assert component.poller is not None
    return component.poller


def add_number(site: Site, e164: str, account_id: int | None) -> None:
    settings = site.settings()
    schema.upgrade(settings.database.url)

    async def work() -> None:
        db = Database(settings.database.url)
        try:
            async with db.transaction() as tx:
                tx.add(FaxNumber(e164=e164, account_id=account_id, state="assigned" if account_id else "available"))
        finally:
            await db.close()

    asyncio.run(work())


@pytest.fixture
def holders(abuse_site: Site) -> dict[str, int]:
    """Two customers, each with a number, and one number the service has not given out."""
    alice = register(abuse_site, "alice@example.com")
    bob = register(abuse_site, "bob@example.com")
    add_number(abuse_site, "+15550100001", alice)
    add_number(abuse_site, "+15550100002", bob)
    add_number(abuse_site, "+15550100009", None)
    return {"alice": alice, "bob": bob}
