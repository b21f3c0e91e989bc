"""Inbound step `store`: file the received fax in the message center (R-STORE-1).

Where it sits: first step of the inbound pipeline (fax line in -> intake -> *store* ->
to-pdf -> decorate -> deliver). The intake left the TIFF in spool/inbound/; this moves
it to <store_dir>/<account id>/<fax id>.tif, durably, and records the path on the
fax's row, where the customer can list it and the retention purge finds it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from bridge.inbound.jobs import InboundFaxJob
from bridge.inbound.models import InboundFaxRecord
from bridge.inbound.pipeline import InboundContext
from bridge.spool import fsync_directory

log = logging.getLogger("bridge.inbound")


class Store:
    """Move the received TIFF into the account's part of the message center."""

    name = "store"

    def __init__(self, context: InboundContext) -> None:
        self.db = context.services.db
        self.store_dir = context.store_dir

    async def process(self, job: InboundFaxJob) -> None:
        target = self.store_dir / str(job.account_id) / f"{job.id}.tif"
        await asyncio.to_thread(_move, Path(job.tiff_path), target)
        job.stored_tiff = str(target)
        async with self.db.transaction() as tx:
            record = await tx.get(InboundFaxRecord, job.id)
            if record is not None:
                record.tiff_path = str(target)
        log.debug("stored at %s", target)


def _move(source: Path, target: Path) -> None:
    if target.exists() and not source.exists():
        return  # moved by an earlier run of this step
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)  # same file system: the store lives beside the spool
    fsync_directory(target.parent)
    fsync_directory(source.parent)
