"""The command-line kit every room's commands use.

Where it sits: under bridge.cli (the `faxbridge` entry point) and the commands each
component adds to it (bridge/money/cli.py, bridge/inbound/cli.py, ...). A command that
cannot do what was asked raises `CommandError` with a sentence for the operator; the
entry point prints it and exits 1, never a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bridge.core import schema
from bridge.core.db import Database
from bridge.core.settings import DatabaseSettings


class CommandError(Exception):
    """A command cannot do what was asked; the message tells the operator why."""


def with_db(database: DatabaseSettings, work: Callable[[Database], Awaitable[int]]) -> int:
    """Run `work` on the configured database, migrated first (a fresh install needs no
    extra step); its return value is the command's exit status."""
    schema.upgrade(database.url)

    async def run() -> int:
        db = Database(database.url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())
