"""Alembic environment: runs the migrations in versions/ against the configured database.

Where it sits: called by `bridge.core.schema.upgrade()` (`faxbridge db upgrade`, and at the
start of `faxbridge serve`), which passes the database URL in the Alembic config.
"""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bridge.core.db import Database
from bridge.core.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds tables.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    database = Database(config.get_main_option("sqlalchemy.url"))
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await database.close()


if context.is_offline_mode():
    raise SystemExit("faxbridge migrations run online only: use `faxbridge db upgrade`")
asyncio.run(run_async_migrations())
