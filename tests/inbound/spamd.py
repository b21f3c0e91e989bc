"""A private, offline SpamAssassin daemon for the spam-score tests (R-MAIL).

`spamd -L` (local tests only: no DNS blocklists, no network), Bayes off, listening on
127.0.0.1 on a free port, with its own pidfile; `score` asks it through `spamc -R`
(the score and the rules that hit).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port


@dataclass
class Spamd:
    port: int
    pidfile: Path

    def score(self, message: bytes) -> tuple[float, str]:
        """(score, report) of one message."""
        result = subprocess.run(["spamc", "-d", "127.0.0.1", "-p", str(self.port), "-R"], input=message,
                                capture_output=True, timeout=60)
        report = result.stdout.decode("utf-8", "replace")
        match = re.match(r"\s*(-?[\d.]+)/", report)
        if match is None:
            raise AssertionError(f"spamc gave no score: {report!r} {result.stderr!r}")
        return float(match.group(1)), report

    def stop(self) -> None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def start_spamd(folder: Path) -> Spamd:
    port = free_port()
    pidfile = folder / "spamd.pid"
    log = folder / "spamd.log"
    subprocess.run(
        ["spamd", "-L", "-x", "-u", "nobody", "--cf=use_bayes 0", f"--listen=127.0.0.1:{port}", "-d",
         f"--pidfile={pidfile}", "-s", str(log)],
        check=True, timeout=60, capture_output=True,
    )
    spamd = Spamd(port, pidfile)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return spamd
        except OSError:
            time.sleep(0.1)
    spamd.stop()
    raise AssertionError(f"spamd did not listen on {port}: {log.read_text() if log.exists() else ''}")
