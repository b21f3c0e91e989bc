"""The schema's history (bridge/migrations, bridge.core.schema): one line of migrations,
old databases brought onto it, `faxbridge db revision`, and migrations that agree with
the models on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import bridge
import handlers
from bridge.cli import main as faxbridge
from bridge.core import schema
from bridge.core.db import Database
from bridge.core.models import Base
from bridge.migrations.models import COMPARE_OPTIONS, MODEL_MODULES, target_metadata
from tests.postgres import PostgresServer
from tests.support import Site

# What `faxbridge db upgrade` left in alembic_version while money, inbound and abuse
# were three branches from 0001 (before issue 13).
FORMER_BRANCH_HEADS = ("0002_money", "0003_inbound", "0004_abuse")


def head() -> str:
    found = ScriptDirectory.from_config(schema.alembic_config("sqlite://")).get_heads()
    assert len(found) == 1, f"the migrations have one head, not {found}"
    return found[0]


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def recorded_versions(db: Path) -> set[str]:
    with sqlite3.connect(db) as connection:
        return {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}


def database_left_by_the_former_branches(db: Path, heads: tuple[str, ...]) -> None:
    """The tables of 0001 and of `heads`, with the version rows the old upgrade wrote,
    and a customer in it."""
    command.upgrade(schema.alembic_config(sqlite_url(db)), "0004_abuse")
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM alembic_version")
        connection.executemany("INSERT INTO alembic_version VALUES (?)", [(h,) for h in heads])
        connection.execute(
            "INSERT INTO accounts (id, name, plan, state, created_at, promo_opt_in, paper_size,"
            " time_zone, inbound_format) VALUES (7, 'Ada', 'plus', 'active',"
            " '2026-11-01 09:00:00', 0, 'a4', 'UTC', 'pdf')"
        )
        connection.execute(
            "INSERT INTO abuse_mailboxes (id, mailbox, uidvalidity, last_uid, updated_at)"
            " VALUES (1, 'INBOX', 42, 1001, '2026-11-01 09:00:00')"
        )
    connection.close()


def test_the_migrations_form_one_line():
    script = ScriptDirectory.from_config(schema.alembic_config("sqlite://"))
    line = [revision.revision for revision in script.walk_revisions()]
    assert line[-4:] == ["0004_abuse", "0003_inbound", "0002_money", "0001"]
    assert script.get_heads() == [line[0]]
    assert all(revision.branch_labels == set() for revision in script.walk_revisions())


def test_a_database_upgraded_with_the_three_branches_reaches_head_and_keeps_its_rows(tmp_path):
    db = tmp_path / "faxbridge.db"
    database_left_by_the_former_branches(db, FORMER_BRANCH_HEADS)

    schema.upgrade(sqlite_url(db))

    assert recorded_versions(db) == {head()}
    assert schema.current_revision(sqlite_url(db)) == head()
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT name, plan FROM accounts").fetchall() == [("Ada", "plus")]
        assert connection.execute("SELECT last_uid FROM abuse_mailboxes").fetchall() == [(1001,)]
    connection.close()
    schema.upgrade(sqlite_url(db))  # and again: nothing left to do
    assert recorded_versions(db) == {head()}


def test_a_database_that_never_ran_a_middle_branch_is_refused_and_left_as_it_was(tmp_path):
    # Abuse's tables without inbound's: one revision on the line cannot say that, and
    # stamping 0004_abuse would skip inbound's tables for good.
    db = tmp_path / "faxbridge.db"
    database_left_by_the_former_branches(db, ("0002_money", "0004_abuse"))

    with pytest.raises(schema.SchemaError, match="never ran 0003_inbound"):
        schema.upgrade(sqlite_url(db))

    assert recorded_versions(db) == {"0002_money", "0004_abuse"}


def test_a_database_made_by_the_one_line_at_an_older_revision_upgrades_to_head(tmp_path):
    # One version row on the line (0004_abuse) is a database the linear history made,
    # not one of the former branches that missed 0002 and 0003.
    db = tmp_path / "faxbridge.db"
    command.upgrade(schema.alembic_config(sqlite_url(db)), "0004_abuse")
    assert recorded_versions(db) == {"0004_abuse"}

    schema.upgrade(sqlite_url(db))

    assert recorded_versions(db) == {head()}


@pytest.fixture
def migrations_copy(tmp_path, monkeypatch) -> Iterator[Path]:
    """The product's migrations copied aside, and the schema module pointed at them, so
    a generated revision never lands in the tree."""
    copy = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(schema, "MIGRATIONS_DIR", copy)
    yield copy


def test_db_revision_on_a_fresh_checkout_writes_the_next_migration_after_head(
    site: Site, migrations_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not site.var.exists()
    before, newest = set((migrations_copy / "versions").glob("*.py")), head()

    assert faxbridge(["--config", str(site.config), "db", "revision", "-m", "probe"]) == 0

    made = set((migrations_copy / "versions").glob("*.py")) - before
    assert len(made) == 1, made
    probe = made.pop()
    assert str(probe) in capsys.readouterr().out
    number = int(newest.split("_")[0]) + 1
    assert probe.name == f"{number:04d}_probe.py"
    script = ScriptDirectory(str(migrations_copy))
    assert script.get_heads() == [probe.stem]
    assert script.get_revision(probe.stem).down_revision == newest
    # The models and the migrations agree, so there is nothing to migrate; and the file
    # loads and applies like any other.
    upgrade_body = probe.read_text().split("def upgrade() -> None:")[1].split("def downgrade")[0]
    statements = [line.strip() for line in upgrade_body.splitlines() if line.strip()]
    assert [line for line in statements if not line.startswith("#")] == ["pass"]
    schema.upgrade(sqlite_url(site.db_path))
    assert schema.current_revision(sqlite_url(site.db_path)) == probe.stem


def test_every_mapped_class_lives_in_a_module_the_migrations_list():
    for package in (bridge, handlers):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            # env.py and the versions run only under Alembic.
            if not module.name.startswith("bridge.migrations."):
                importlib.import_module(module.name)
    declared = {mapper.class_.__module__ for mapper in Base.registry.mappers}
    assert declared <= set(MODEL_MODULES), f"add to MODEL_MODULES: {declared - set(MODEL_MODULES)}"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "faxbridge.db")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()


def test_a_database_at_head_has_exactly_the_tables_the_models_declare(fresh_database):
    schema.upgrade(fresh_database)

    assert asyncio.run(differences_from_the_models(fresh_database)) == []


async def differences_from_the_models(url: str) -> list[object]:
    """What autogenerate would write for the database at `url` (env.py's comparison)."""
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts=dict(COMPARE_OPTIONS)), target_metadata()
                )
            )
    finally:
        await database.close()
