"""How an area of faxbridge plugs into the running app.

Where it sits: `bridge.app` builds the shared `Services` once, then asks each
component factory in `COMPONENTS` (bridge/app.py) for its component: the fax lines and
transmit queue, inbound fax delivery, billing, the abuse mailbox. A component brings
runners (the app starts and stops them with the others), SMTP service addresses it
answers (`unsubscribe+TOKEN@`, `bounces+TOKEN@`, ...), and its own start/stop for
anything else it runs (an HTTP endpoint, an IMAP poller).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bridge.core import schema
from bridge.core.db import Database
from bridge.core.queue import JobQueue
from bridge.core.runner import Runner
from bridge.core.spool import Spool
from bridge.mail.outbox import Outbox
from bridge.outbound.notices import Notices
from bridge.settings import Settings
from bridge.smtp.recipients import ServiceRecipient


@dataclass(frozen=True)
class Services:
    """What every component may use; built once per app."""

    settings: Settings
    db: Database
    queue: JobQueue
    spool: Spool
    outbox: Outbox
    notices: Notices

    @classmethod
    async def open(cls, settings: Settings, *, upgrade: bool) -> Services:
        """The spool (created), the database (migrated first when `upgrade`), the queue,
        the outbox and the notices of `settings`: what the app, the benchmarks and the
        component tests run on. The caller closes `db`."""
        settings.paths.var_dir.mkdir(parents=True, exist_ok=True)
        spool = Spool(settings.paths.spool_dir)
        spool.create()
        if upgrade:
            await asyncio.to_thread(schema.upgrade, settings.database.url)
        db = Database(settings.database.url)
        queue = JobQueue(db, lease_seconds=settings.queue.lease_seconds)
        outbox = Outbox(spool, queue, mail_domain=settings.service.primary_domain)
        return cls(settings, db, queue, spool, outbox, Notices(settings))


class ServiceMailHandler(Protocol):
    """Takes mail sent to one service address (the local part before any +TOKEN).

    Called at DATA with the whole message. It must store what it needs durably before
    it returns a 2xx reply; it returns the full SMTP reply line.
    """

    async def handle(self, recipient: ServiceRecipient, envelope_from: str, content: bytes) -> str: ...


class Component(Protocol):
    name: str

    def runners(self) -> Sequence[Runner]: ...

    def service_mail_handlers(self) -> Mapping[str, ServiceMailHandler]: ...

    async def start(self) -> None:
        """Called after the runners started and before the SMTP listeners open."""

    async def stop(self) -> None:
        """Called after the listeners closed and the runners stopped (their in-flight
        work had its grace period), before the database closes."""


ComponentFactory = Callable[[Services], Component]
