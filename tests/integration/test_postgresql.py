"""faxbridge on PostgreSQL instead of SQLite: the same server, a real PostgreSQL 15 that
the test starts on loopback (TOOLING.md recipe)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import register
from tests.integration.test_transmit import REMOTE, receipt_of, send_fax
from tests.support import Site, ThreadedServer, free_port


def _pg_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    assert found, f"PostgreSQL's {tool} is installed by scripts/setup (Debian package postgresql)"
    return found[-1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    # Not under pytest's tmp directory: that one is root's alone (0700), and the
    # server runs as the postgres user.
    root = Path(tempfile.mkdtemp(prefix="faxbridge-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    postgres_user = pwd.getpwnam("postgres")
    for path in (root, sockets):
        os.chown(path, postgres_user.pw_uid, postgres_user.pw_gid)
    port = free_port()

    def as_postgres(*command: str) -> None:
        result = subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"

    as_postgres(_pg_bin("initdb"), "-D", str(data), "--auth=trust", "--no-sync", "-U", "postgres")
    as_postgres(
        _pg_bin("pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
        "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
    )
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


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
