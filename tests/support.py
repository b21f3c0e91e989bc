"""Test support: site files on free ports, a real server in a thread or a process,
the CLI as a subprocess, and ways to look at what the server did.

Every integration test talks to a real faxbridge over real sockets with a real SMTP
client; nothing here fakes the server's parts.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from bridge.app import App
from bridge.core.pipeline import StepFactory
from bridge.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
FAXBRIDGE = [sys.executable, "-m", "bridge.entry"]
FAX_DOMAIN = "fax.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Site:
    """A site configuration in a temporary directory, with its own ports."""

    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    extra: str = ""
    # Lines added to the [faxline.virtual] table (the dial plan of the virtual network).
    line_extra: str = ""

    @property
    def config(self) -> Path:
        return self.root / "site.toml"

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def db_path(self) -> Path:
        return self.var / "faxbridge.db"

    def write(self) -> Site:
        self.ports = {name: free_port() for name in ("mx", "submission", "smtps")}
        self.config.write_text(
            f"""
[service]
fax_domains = ["{FAX_DOMAIN}"]
notices_from = "faxbridge <noreply@{FAX_DOMAIN}>"
[paths]
var_dir = "{self.var}"
spool_dir = "{self.var}/spool"
[database]
url = "sqlite+aiosqlite:///{self.db_path}"
[mail]
maildir_root = "{self.var}/mail"
[faxline.virtual]
remote_dir = "{self.var}/faxline/remote"
inbound_dir = "{self.var}/faxline/inbound"
{self.line_extra}
[queue]
poll_seconds = 0.2
lease_seconds = 30
shutdown_grace_seconds = 5
[smtp]
hostname = "faxbridge.test"
[http]
port = 0

[[smtp.listeners]]
name = "mx"
host = "127.0.0.1"
port = {self.ports['mx']}
tls = "none"
starttls = true
auth = "optional"

[[smtp.listeners]]
name = "submission"
host = "127.0.0.1"
port = {self.ports['submission']}
tls = "none"
starttls = true
require_tls = true
auth = "required"

[[smtp.listeners]]
name = "smtps"
host = "127.0.0.1"
port = {self.ports['smtps']}
tls = "implicit"
auth = "optional"
{self.extra}
"""
        )
        return self

    def settings(self) -> Settings:
        return load_settings(self.config, environ={})

    # --- the CLI -----------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*FAXBRIDGE, "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "FAXBRIDGE_CONFIG": ""},
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"faxbridge {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    # --- what the server did -----------------------------------------------------------
    def query(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        connection = sqlite3.connect(self.db_path, timeout=30)
        connection.row_factory = sqlite3.Row
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def job(self, job_id: str) -> sqlite3.Row:
        rows = self.query("SELECT * FROM jobs WHERE id = ?", job_id)
        assert rows, f"no job {job_id}"
        return rows[0]

    def mailbox(self, address: str) -> list[bytes]:
        new = self.var / "mail" / address.lower() / "new"
        if not new.exists():
            return []
        return [path.read_bytes() for path in sorted(new.iterdir())]


def past_intake(site: Site, job_id: str) -> Any:
    """The job's row once the intake pipeline is done with it (parsed and rendered)."""
    job = site.job(job_id)
    return job if job["queue"] != "intake" and job["state"] != "failed" else None


def wait_for(condition: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class ThreadedServer:
    """The real App on its own event loop in a background thread."""

    def __init__(
        self, settings: Settings, extra_steps: Mapping[str, Mapping[str, StepFactory[Any, Any]]] | None = None
    ) -> None:
        self.app = App(settings, extra_steps=extra_steps)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> ThreadedServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.app.start(), self.loop).result(60)
        return self

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.app.stop(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


class ServerProcess:
    """`faxbridge serve` as a child process, for lifecycle tests (SIGTERM, kill -9)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.process: subprocess.Popen[bytes] | None = None
        self.log = site.root / "server.log"

    def start(self) -> ServerProcess:
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [*FAXBRIDGE, "--config", str(self.site.config), "serve"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "FAXBRIDGE_CONFIG": ""},
        )
        # A test that fails half-way must not leave a server running after the suite.
        atexit.register(self.process.kill)
        port = self.site.ports["mx"]

        def listening() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(listening, timeout=60, what="the server to listen")
        return self

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def fax_message(
    sender: str,
    to: str | list[str],
    *,
    subject: str = "Contract",
    body: str = "Please find the contract attached.",
    attachments: list[tuple[str, str, bytes]] | None = None,
    message_id: str | None = None,
    from_header: str | None = None,
) -> EmailMessage:
    # policy.SMTP: CRLF line ends, as a mail program puts them on the wire.
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = from_header or sender
    message["To"] = ", ".join(to) if isinstance(to, list) else to
    message["Subject"] = subject
    if message_id is not None:
        message["Message-ID"] = message_id
    message.set_content(body)
    for filename, mime, data in attachments or []:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


MINIMAL_PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""


def text_pdf(*pages: str) -> bytes:
    """A real PDF with one line of large text per page (Pillow draws it)."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    images = []
    for text in pages:
        image = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
        draw = ImageDraw.Draw(image)
        font = ImageFont.load_default(size=64)
        draw.text((120, 200), text, fill=0, font=font)
        draw.rectangle((120, 400, 1100, 420), fill=0)
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=150)
    return out.getvalue()


def assert_workers_die_with_a_killed_server(script: Path, expected_workers: int) -> None:
    """Run `script`, a server that prints its worker processes' pids and then kills
    itself with SIGKILL (no shutdown code runs), and check that those workers end too
    instead of lingering as orphans."""
    # Output to files, not pipes: the workers inherit them, and reading a pipe to its
    # end would wait for the very workers this checks.
    out, err = script.with_suffix(".out"), script.with_suffix(".err")
    with out.open("w") as stdout, err.open("w") as stderr:
        returncode = subprocess.run([sys.executable, str(script)], stdout=stdout, stderr=stderr,
                                    timeout=120, check=False).returncode
    assert returncode == -9, err.read_text()
    workers = [int(pid) for pid in out.read_text().split()]
    assert len(workers) == expected_workers, out.read_text()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is gone too
        except (ProcessLookupError, FileNotFoundError):
            return False

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "worker processes outlived their server"
