"""A real PostgreSQL 15 for the tests that run faxbridge on it (TOOLING.md recipe):
started once per test session on loopback, one fresh database per test."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_databases = itertools.count(1)


def _pg_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    assert found, f"PostgreSQL's {tool} is installed by scripts/setup (Debian package postgresql)"
    return found[-1]


def _as_postgres(*command: str) -> None:
    result = subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"


@dataclass(frozen=True)
class PostgresServer:
    port: int

    @property
    def url(self) -> str:
        """The `postgres` database (tests that own the whole server)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"faxbridge_test_{os.getpid()}_{next(_databases)}"
        _as_postgres(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    # Not under pytest's tmp directory: that one is root's alone (0700), and the
    # server runs as the postgres user.
    from tests.support import free_port

    root = Path(tempfile.mkdtemp(prefix="faxbridge-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    postgres_user = pwd.getpwnam("postgres")
    for path in (root, sockets):
        os.chown(path, postgres_user.pw_uid, postgres_user.pw_gid)
    port = free_port()
    _as_postgres(_pg_bin("initdb"), "-D", str(data), "--auth=trust", "--no-sync", "-U", "postgres")
    _as_postgres(
        _pg_bin("pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
        "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
    )
    try:
        yield PostgresServer(port)
    finally:
        _as_postgres(_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
