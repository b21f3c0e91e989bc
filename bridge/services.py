"""The shared services of one running faxbridge, each built once by the composition root.

Where it sits: under bridge.app (the server), the benchmarks and the component tests,
which all open them the same way with `Services.open(settings)`: the spool (created),
the database (migrated first when asked), the job queue, the DKIM signer (when [dkim]
is on: keys are read, or made on the first start, before anything is stored) and the
one outbox that signs with it. Components are handed this object; they use its
services and change none of them. The services components provide to one another
(one Metering, the fax line, the receiver of inbound faxes) travel as typed keys
(bridge.core.component.Provided), filled in by bridge.app.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge.core import schema
from bridge.core.db import Database
from bridge.core.queue import JobQueue
from bridge.core.spool import Spool
from bridge.mail.dkim import DkimSigner
from bridge.mail.outbox import Outbox, signed_outbox

if TYPE_CHECKING:
    from bridge.settings import Settings


@dataclass(frozen=True)
class Services:
    """What every component may use; built once per app."""

    settings: Settings
    db: Database
    queue: JobQueue
    spool: Spool
    outbox: Outbox
    signer: DkimSigner | None

    @classmethod
    async def open(cls, settings: Settings, *, upgrade: bool) -> Services:
        """The services of `settings`; the caller closes `db`."""
        settings.paths.var_dir.mkdir(parents=True, exist_ok=True)
        spool = Spool(settings.paths.spool_dir)
        spool.create()
        if upgrade:
            await asyncio.to_thread(schema.upgrade, settings.database.url)
        db = Database(settings.database.url)
        queue = JobQueue(db, lease_seconds=settings.queue.lease_seconds)
        outbox, signer = await asyncio.to_thread(
            signed_outbox, spool, queue, dkim=settings.dkim, var_dir=settings.paths.var_dir,
            mail_domain=settings.service.primary_domain,
        )
        return cls(settings, db, queue, spool, outbox, signer)
