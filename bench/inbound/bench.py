"""bench/inbound: received 3-page faxes turned into signed mails and handed to the
outgoing queue, per second (issue 6; target >= 100/s on 2 cores).

Where it sits: drives the real inbound path of faxbridge in one process: the fax
line's callback (`InboundComponent.accept_inbound_fax`, i.e. the intake: spool +
inbound_faxes row + inbound job) and the inbound runner with its real steps (store,
to-pdf with img2pdf, decorate with the promotional footer and opt-out token, deliver
with the charge and the outbox, which DKIM-signs every mail with rsa-sha256 AND
ed25519-sha256 as it stores it). The database is the site's SQLite (WAL). The mail
runner is not started: the figure is mails *queued* (rows in the `mail` queue, their
signed .eml fsynced in the spool), which is what the issue counts.

Faxes are real TIFF-F files (G4, fine, A4) made by renderers.write_fax_tiff from
three typical letter pages; each fax gets its own copy (the intake moves it). The
clock runs from the first fax handed over until the last mail is queued.

Each round is run on the server's event loop (uvloop, bridge/eventloop.py) and, side by
side, on asyncio's own loop; rounds alternate between the two, and the median of each
is reported (this shared machine varies by ~20% from one run to the next).

    bench/inbound/run [--faxes 600] [--rounds 3] [--loops uvloop,asyncio] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select

import handlers.inbound
from bridge.accounts.models import FaxNumber
from bridge.accounts.senders import create_account
from bridge.core import eventloop
from bridge.core.component import Provided
from bridge.core.models import Job
from bridge.core.pipeline import steps_in
from bridge.faxline.base import InboundFax
from bridge.inbound.component import InboundComponent
from bridge.inbound.pipeline import InboundStep
from bridge.mail.jobs import QUEUE_MAIL
from bridge.money.meter import METERING, Metering
from bridge.services import Services
from renderers.faxtiff import write_fax_tiff
from tests.faxline.conftest import draw_page
from tests.support import Site

TARGET = 100.0


async def run(args: argparse.Namespace, root: Path) -> float:
    extra = f"[inbound]\nworkers = {args.workers}\n" if args.workers else ""
    site = Site(root, extra=extra).write()
    settings = site.settings()
    services = await Services.open(settings, upgrade=True)
    db = services.db

    numbers = [f"+1555030{n:04d}" for n in range(args.accounts)]
    async with db.transaction() as tx:
        for n, number in enumerate(numbers):
            account = await create_account(tx, senders=[f"customer{n}@example.com"], plan="free")
            tx.add(FaxNumber(e164=number, kind="local", account_id=account.id, state="assigned"))

    template = root / "three.tif"
    write_fax_tiff([draw_page(n, dense=True) for n in (1, 2, 3)], template, compression="g4")
    incoming = root / "incoming"
    incoming.mkdir()
    faxes = []
    for n in range(args.faxes):
        path = incoming / f"{n}.tif"
        shutil.copyfile(template, path)
        faxes.append(InboundFax(to_number=numbers[n % len(numbers)], caller_number="+15550100777",
                                remote_station_id="ACME SALES", tiff_path=path, pages=3, line_seconds=95.0,
                                received_at=datetime.now(UTC)))
    print(f"{args.faxes} faxes of 3 pages ({template.stat().st_size} bytes each) to {args.accounts} Free accounts; "
          f"{settings.inbound.workers} inbound workers; DKIM {', '.join(settings.dkim.algorithms)}", flush=True)

    provided = Provided()
    provided.provide(METERING, Metering(settings, services.db, outbox=services.outbox))  # as the composition root does
    component = InboundComponent(services, provided, steps_in(handlers.inbound, InboundStep))
    runner = component.runner
    await component.work.warm()  # as in a server that has received faxes before
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    runner.start()
    # The fax line hands faxes over as calls end; here they all arrive at once, a few
    # lines at a time.
    lines = asyncio.Semaphore(8)

    async def arrive(fax: InboundFax) -> None:
        async with lines:
            await component.accept_inbound_fax(fax)

    arrivals = asyncio.gather(*(arrive(f) for f in faxes))
    queued = 0
    while queued < args.faxes:
        # Counted after each commit that queues mail (the outbox wakes the mail queue;
        # its runner is not started here), not by polling: the bench's own queries
        # would otherwise take a share of the event loop it measures.
        await services.queue.wait_for_work(QUEUE_MAIL, timeout=0.5)
        async with db.reading() as session:
            queued = await session.scalar(select(func.count()).select_from(Job).where(Job.queue == QUEUE_MAIL)) or 0
    elapsed = time.perf_counter() - started
    await arrivals
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    await runner.stop(5)
    await asyncio.to_thread(component.work.close)
    await db.close()
    rate = queued / elapsed
    eml = next(iter(sorted((Path(settings.paths.spool_dir)).rglob("*.eml"))), None)
    if eml is not None:
        data = eml.read_bytes()
        print(f"a queued mail: {len(data)} bytes, {data.count(b'DKIM-Signature:')} DKIM signatures")
    print(f"{queued} mails queued in {elapsed:.2f} s")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faxes", type=int, default=600)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0, help="inbound workers (default: the config's)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per event loop; the median counts")
    parser.add_argument("--loops", default=",".join(eventloop.LOOPS),
                        help="event loops to run, side by side (the first is the server's: uvloop)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the event-loop thread")
    args = parser.parse_args()
    loops = args.loops.split(",")
    rates: dict[str, list[float]] = {loop: [] for loop in loops}
    # Rounds alternate between the loops, so that a slower minute of this shared machine
    # does not fall on one of them only.
    for n in range(args.rounds):
        for loop in loops:
            print(f"--- round {n + 1} of {args.rounds}, event loop {loop}", flush=True)
            with tempfile.TemporaryDirectory(prefix="bench-inbound-") as tmp:
                rates[loop].append(eventloop.run(run(args, Path(tmp)), loop=loop))
    print(f"\nsigned mails queued per second, {args.faxes} faxes, {os.cpu_count()} cores (target >= {TARGET:.0f}/s):")
    print(f"{'event loop':<12} {'rounds':<32} {'median':>7}")
    for loop in loops:
        print(f"{loop:<12} {', '.join(f'{r:.1f}' for r in rates[loop]):<32} {statistics.median(rates[loop]):>7.1f}")
    served = statistics.median(rates[loops[0]])
    which = f"{loops[0]}, the server's loop" if loops[0] == "uvloop" else f"{loops[0]}, not the server's loop"
    print(f"inbound ({which}): {served:.1f} signed mails queued per second on "
          f"{os.cpu_count()} cores (target >= {TARGET:.0f}/s): {'MET' if served >= TARGET else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
