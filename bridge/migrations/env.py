"""Alembic environment: runs the migrations in versions/, or autogenerates a new one,
against the configured database.

Where it sits: under `bridge.core.schema` (`faxbridge db upgrade`, the start of
`faxbridge serve`, `faxbridge db revision`), which opens the connection and passes it in
`config.attributes["connection"]`. The target metadata is the whole product's, from
bridge/migrations/models.py, so autogenerate compares every flow's tables.
"""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bridge.core.db import Database
from bridge.migrations.models import COMPARE_OPTIONS, target_metadata

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        # SQLite cannot ALTER most things in place; batch mode rebuilds tables.
        render_as_batch=connection.dialect.name == "sqlite",
        **COMPARE_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no sqlalchemy.url in the Alembic config: use `faxbridge db upgrade`")
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await database.close()


if context.is_offline_mode():
    raise SystemExit("faxbridge migrations run online only: use `faxbridge db upgrade`")
given = config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    # Alembic driven some other way (its own command line): open the database here.
    asyncio.run(run_async_migrations())
