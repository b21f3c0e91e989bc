"""Inbound step `store`: file the received fax in the message center (R-STORE-1).

Where it sits: first step of the inbound pipeline (fax line in -> intake -> *store* ->
to-pdf -> decorate -> deliver). The intake left the TIFF in spool/inbound/; this moves
it to <store_dir>/<account id>/<fax id>.tif. The runner fsyncs both directories and
records the new path on the fax's row in its batch commit, where the customer can list
it and the retention purge finds it. Run again after a crash, it finds the file
already moved (or, if the move was lost with the power, moves it again).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bridge.core.spool import fsync_directory
from bridge.inbound.jobs import InboundFaxJob
from bridge.inbound.pipeline import InboundContext, InboundStep
from bridge.inbound.workpool import WorkContext

log = logging.getLogger("bridge.inbound")


class Store(InboundStep):
    """Move the received TIFF into the account's part of the message center."""

    name = "store"

    def __init__(self, context: InboundContext) -> None:
        self.store_dir = context.store_dir
        self.work = context.work

    async def process(self, job: InboundFaxJob) -> None:
        target = self.store_dir / str(job.account_id) / f"{job.id}.tif"
        await self.work.run(move_into_store, job.tiff_path, str(target))
        job.stored_tiff = str(target)
        log.debug("stored at %s", target)


def move_into_store(_context: WorkContext, source: str, target: str) -> None:
    """In a worker (its blocking fsyncs stay out of the server's threads)."""
    _move(Path(source), Path(target))


def _move(source: Path, target: Path) -> None:
    if target.exists() and not source.exists():
        return  # moved by an earlier run of this step
    if not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fsync_directory(target.parent.parent)  # the account's new folder is a name too
    # Same file system: the store lives beside the spool. Both directories are fsynced
    # by the runner, once per batch, before the commit that records the new path.
    os.replace(source, target)
