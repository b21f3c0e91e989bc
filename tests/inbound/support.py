"""Helpers for the inbound tests: a site with its web endpoint on a free port, a
running server, numbers in the inventory, real T.30 calls to them through the
server's own virtual line, and ways to read what arrived in the Maildir."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from bridge.faxline.base import CallRequest, CallResult
from bridge.inbound.component import InboundComponent
from bridge.mail.dkim import DkimSigner
from tests.conftest import register
from tests.support import Site, ThreadedServer, free_port, wait_for

CALLER = "+15550100777"
STATION = "ACME SALES"


def inbound_site(root: Path, extra: str = "") -> Site:
    """A site whose web endpoint listens on a known free port, so that the links in
    its mail (public_url) point at it. The common site already has an [http] table
    (port 0); TOML forbids a second one, so that table is rewritten in place."""
    port = free_port()
    site = Site(root, extra=extra).write()
    text = site.config.read_text()
    ours = f'[http]\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
    if "[http]\nport = 0\n" in text:
        text = text.replace("[http]\nport = 0\n", ours, 1)
    else:
        text += "\n" + ours
    site.config.write_text(text)
    return site


def add_number(site: Site, e164: str, account_id: int | None, *, state: str = "assigned", kind: str = "local") -> None:
    connection = sqlite3.connect(site.db_path, timeout=30)
    try:
        connection.execute(
            "INSERT INTO fax_numbers (e164, kind, account_id, state) VALUES (?, ?, ?, ?)",
            (e164, kind, account_id, state),
        )
        connection.commit()
    finally:
        connection.close()


def execute(site: Site, sql: str, *params: Any) -> None:
    connection = sqlite3.connect(site.db_path, timeout=30)
    try:
        connection.execute(sql, params)
        connection.commit()
    finally:
        connection.close()


def customer(site: Site, address: str, number: str, *, plan: str = "free", **columns: Any) -> int:
    account_id = register(site, address, plan=plan)
    for column, value in columns.items():
        execute(site, f"UPDATE accounts SET {column} = ? WHERE id = ?", value, account_id)
    add_number(site, number, account_id)
    return account_id


@dataclass
class Running:
    site: Site
    server: ThreadedServer

    @property
    def inbound(self) -> InboundComponent:
        return next(c for c in self.server.app.components if isinstance(c, InboundComponent))

    @property
    def signer(self) -> DkimSigner | None:
        """The app's one DKIM signer (built by the composition root)."""
        assert self.server.app.services is not None
        return self.server.app.services.signer

    @property
    def http_base(self) -> str:
        web = self.server.app.web
        assert web is not None and web.port
        return f"http://127.0.0.1:{web.port}"

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.server.loop).result(timeout)

    def fax_to(self, number: str, tiff: Path, *, caller: str = CALLER, station: str = STATION) -> CallResult:
        """A real T.30 call from a virtual fax machine to a service number."""
        line = self.server.app.line
        assert line is not None
        request = CallRequest(
            to_number=number, tiff_path=tiff, caller_number=caller, station_id=station, job_id="test-call"
        )
        return self.run(line.place_call(request))

    def mails(self, address: str) -> list[EmailMessage]:
        return [BytesParser(policy=policy.default).parsebytes(raw) for raw in self.site.mailbox(address)]

    def wait_for_mail(self, address: str, count: int = 1, timeout: float = 30) -> list[EmailMessage]:
        wait_for(
            lambda: len(self.site.mailbox(address)) >= count, timeout=timeout, what=f"{count} mail(s) to {address}"
        )
        return self.mails(address)

    def fax_rows(self) -> list[sqlite3.Row]:
        return self.site.query("SELECT * FROM inbound_faxes ORDER BY received_at")

    def wait_for_fax_state(self, state: str, count: int = 1, timeout: float = 30) -> list[sqlite3.Row]:
        def in_state() -> list[sqlite3.Row] | None:
            rows = [r for r in self.fax_rows() if r["state"] == state]
            return rows if len(rows) >= count else None

        return wait_for(in_state, timeout=timeout, what=f"{count} fax(es) {state}")


def opendkim_verdict(eml: bytes, dns_records: list[tuple[str, str]], folder: Path) -> str:
    """OpenDKIM's own verifier in test mode (its exit code is 0 either way)."""
    keys = folder / "keys.txt"
    keys.write_text("".join(f"{name} {value}\n" for name, value in dns_records))
    conf = folder / "opendkim.conf"
    conf.write_text(f"Mode v\nTestDNSData file:{keys}\nSyslog no\n")
    message = folder / "message.eml"
    message.write_bytes(eml)
    result = subprocess.run(
        ["opendkim", "-x", str(conf), "-t", str(message)], capture_output=True, text=True, timeout=30
    )
    return result.stdout + result.stderr
