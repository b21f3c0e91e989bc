"""bench/abuse: a backlog of mixed abuse reports in a private Dovecot, read to the end.

Where it sits: measures the abuse mailbox path (IMAP poller -> classify -> match ->
act, with the outbox and the mail runner delivering the acknowledgements) of a real
`faxbridge serve` process. The backlog is written into the Maildir before the server
starts; the clock runs from the server's start until every report is recorded and
the mailbox is empty. Peak RSS is the server process's VmHWM (OCR runs in short-lived
tesseract children, not counted).

    bench/abuse/run [--reports 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.abuse import reports
from tests.abuse.conftest import abuse_section
from tests.abuse.dovecot import Dovecot
from tests.support import Site

OURS = [f"+1 555 010 00{n:02d}" for n in range(1, 21)]
FOREIGN = ["+44 20 7946 0958", "+1 212 555 0199", "+33 1 23 45 67 89"]


def backlog(count: int, rng: random.Random) -> list[bytes]:
    pdfs: dict[str, bytes] = {}
    out: list[bytes] = []
    for n in range(count):
        reporter = f"reporter{rng.randrange(count // 3 + 1)}@example.net"
        number = rng.choice(OURS + FOREIGN)
        roll = rng.random()
        if roll < 0.30:
            out.append(reports.inline(reporter, number))
        elif roll < 0.50:
            out.append(reports.attached(reporter, number))
        elif roll < 0.70:
            out.append(reports.arf(reporter, number))
        elif roll < 0.80:
            out.append(reports.complaint(reporter, f"Your customer {number} sends me junk fax ads every day."))
        elif roll < 0.90:
            compact = "+" + "".join(c for c in number if c.isdigit())
            if compact not in pdfs:
                pdfs[compact] = reports.junk_fax_pdf(reporter, compact)
            # Same fax, a new complaint around it (new Message-ID, so new content).
            out.append(pdfs[compact].replace(b"reporter.test>", f"{n}.reporter.test>".encode(), 1))
        elif roll < 0.95:
            compact = "+" + "".join(c for c in number if c.isdigit())
            out.append(reports.junk_fax_tiff(reporter, compact))
        else:
            hostile = [reports.malformed(reporter), reports.nested(reporter, 30), reports.looping(reporter, 100)]
            out.append(rng.choice(hostile) + f"X-N: {n}\r\n".encode())
    return out


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"building {args.reports} mixed reports ...", flush=True)
    messages = backlog(args.reports, rng)
    dovecot = Dovecot.create().start()
    root = Path(tempfile.mkdtemp(prefix="faxbridge-bench-abuse-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        dovecot.stop()
        for n, message in enumerate(messages):
            dovecot.deliver(message, f"{n:06d}.bench")
        dovecot.start()
        site = Site(root)
        site.extra = abuse_section(dovecot, poll_seconds=30, suspend_threshold=5) + '\n[logging]\nlevel = "WARNING"\n'
        site.write()
        accounts = []
        for n, number in enumerate(OURS):
            accounts.append(site.cli("account", "add", f"customer{n}@example.com").stdout.split()[1])
            site.cli("number", "add", "+" + "".join(c for c in number if c.isdigit()), "--account", accounts[-1])
        print(f"{args.reports} reports in Dovecot's INBOX; starting faxbridge serve", flush=True)
        log = (root / "server.log").open("ab")
        started = time.monotonic()
        server = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "--config", str(site.config), "serve"],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "FAXBRIDGE_CONFIG": ""},
        )
        first: float | None = None
        peak = 0
        done = 0
        while True:
            if server.poll() is not None:
                raise SystemExit(f"server exited:\n{(root / 'server.log').read_text()[-3000:]}")
            peak = max(peak, vm_hwm_kib(server.pid))
            try:
                with sqlite3.connect(site.db_path, timeout=30) as db:
                    done = db.execute("SELECT count(*) FROM abuse_reports").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done and first is None:
                first = time.monotonic()
            if done >= args.reports:
                break
            if time.monotonic() - started > 1800:
                raise SystemExit(f"only {done} of {args.reports} after 30 minutes")
            time.sleep(0.2)
        finished = time.monotonic()
        peak = max(peak, vm_hwm_kib(server.pid))
        with sqlite3.connect(site.db_path) as db:
            outcomes = dict(db.execute("SELECT outcome, count(*) FROM abuse_reports GROUP BY outcome").fetchall())
            kinds = dict(db.execute("SELECT kind, count(*) FROM abuse_reports GROUP BY kind").fetchall())
            suspended = db.execute("SELECT count(*) FROM accounts WHERE state = 'suspended'").fetchone()[0]
        while dovecot.count("INBOX"):
            time.sleep(0.2)
        total = finished - started
        steady = (finished - first) if first else total
        print(f"reports:          {args.reports}")
        print(f"kinds:            {kinds}")
        print(f"outcomes:         {outcomes}")
        print(f"suspended:        {suspended} of {len(OURS)} accounts")
        print(f"wall time:        {total:.1f} s from server start ({steady:.1f} s from the first report)")
        print(f"reports/s:        {args.reports / total:.1f} (incl. start-up)   "
              f"{(args.reports - 1) / steady:.1f} (steady)")
        print(f"peak RSS:         {peak / 1024:.0f} MiB (faxbridge serve, VmHWM)")
        print(f"Processed/Quarantine: {dovecot.count('Processed')}/{dovecot.count('Quarantine')}")
        return 0
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(60)
        dovecot.remove()


if __name__ == "__main__":
    sys.exit(main())
