"""faxbridge on PostgreSQL instead of SQLite: the same server, a real PostgreSQL 15 that
the tests start on loopback (tests/postgres.py). The inbound batch tests run on it too
(tests/inbound/test_batches.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import register
from tests.integration.test_transmit import REMOTE, receipt_of, send_fax
from tests.postgres import PostgresServer
from tests.support import Site, ThreadedServer


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> str:
    return postgres_server.new_database()


def test_a_fax_goes_through_end_to_end_with_postgresql(tmp_path, postgres):
    site = Site(tmp_path).write()
    site.config.write_text(site.config.read_text().replace(
        f'url = "sqlite+aiosqlite:///{site.db_path}"', f'url = "{postgres}"'
    ))
    upgraded = site.cli("db", "upgrade")
    assert "database at revision" in upgraded.stdout
    register(site, "alice@example.com")
    server = ThreadedServer(site.settings()).start()
    try:
        job_id = send_fax(site, "alice@example.com", [REMOTE], pages=1)
        receipt = receipt_of(site, "alice@example.com", job_id)
        assert receipt["Subject"] == "Sent: Invoice"
        listed = site.cli("jobs", "list").stdout
        assert job_id in listed and "done" in listed
        assert not Path(site.db_path).exists(), "nothing was written to SQLite"
    finally:
        server.stop()
