"""Ledger benchmark (issue 5, R-DEP-10): how fast money is written and read on SQLite.

1. Postings per second with 8 concurrent writers: each writer appends usage entries
   to its own account with the real `Ledger.post`, one transaction per posting (the
   billing row locked, the entry and the cached balance written together, committed
   with synchronous=FULL), through the app's `Database`. Measured two ways:
   8 asyncio tasks sharing one `Database` (the server: metering, call runner and
   billing cycle in one process), and 8 processes each with its own `Database`
   (the server plus CLI commands, all on the one SQLite file).
2. Time to read a balance: `BillingAccount` by primary key through `Database.reading()`,
   as the meter step and statements do, with 1 000 and with 1 000 000 ledger entries
   for the account. It must not grow with the ledger: the balance is cached in the
   same transaction as each entry. For contrast, the time to recompute the sum the
   cache stands for (`Ledger.summed`), which does grow, and a check that they agree.

The 1 000 000-entry ledger is bulk-inserted with SQLAlchemy Core into a temporary
database (entries with their running balances, then the cached balance set to the sum).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert, update

from bridge.accounts.senders import create_account
from bridge.core import schema
from bridge.core.db import Database
from bridge.money.ledger import Ledger
from bridge.money.models import BillingAccount, LedgerEntry

WRITERS = 8
README = Path(__file__).with_name("README.md")
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def urls(path: Path) -> tuple[str, str]:
    return f"sqlite+aiosqlite:///{path}", f"sqlite:///{path}"


async def make_accounts(url: str, count: int) -> list[int]:
    db = Database(url)
    ledger = Ledger("USD", clock)
    try:
        ids = []
        for n in range(count):
            async with db.transaction() as tx:
                account = await create_account(tx, senders=[f"bench{n}@example.com"], plan="plus")
                billing = await ledger.account(tx, account.id)
                billing.deposit_minor = 1000
                ids.append(account.id)
        return ids
    finally:
        await db.close()


async def post_many(db: Database, ledger: Ledger, account_id: int, count: int, tag: str) -> None:
    for n in range(count):
        async with db.transaction() as tx:
            billing = await ledger.account(tx, account_id)
            await ledger.post(tx, billing, kind="usage", amount_minor=-10, key=f"bench:{tag}:{n}",
                              reference=f"attempt:{tag}:{n}", memo="bench posting", units=1)


async def writers_in_one_process(url: str, accounts: list[int], per_writer: int) -> float:
    db = Database(url)
    ledger = Ledger("USD", clock)
    try:
        started = time.perf_counter()
        await asyncio.gather(*(post_many(db, ledger, a, per_writer, f"task{a}") for a in accounts))
        return time.perf_counter() - started
    finally:
        await db.close()


def _writer_process(url: str, account_id: int, per_writer: int, start: multiprocessing.synchronize.Event) -> None:
    async def work() -> None:
        db = Database(url)
        try:
            # Warm the connection up before the clock starts.
            async with db.reading() as session:
                await session.get(BillingAccount, account_id)
            start.wait()
            await post_many(db, Ledger("USD", clock), account_id, per_writer, f"proc{account_id}")
        finally:
            await db.close()

    asyncio.run(work())


def writers_in_processes(url: str, accounts: list[int], per_writer: int) -> float:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [context.Process(target=_writer_process, args=(url, a, per_writer, start)) for a in accounts]
    for process in processes:
        process.start()
    time.sleep(3)  # let every process import and connect
    started = time.perf_counter()
    start.set()
    for process in processes:
        process.join()
        assert process.exitcode == 0, "a writer process failed"
    return time.perf_counter() - started


def bulk_ledger(sync_url: str, account_id: int, entries: int) -> float:
    """`entries` usage entries with running balances, then the cached balance: Core inserts."""
    engine = create_engine(sync_url)
    started = time.perf_counter()
    chunk = 50_000
    balance = 0
    with engine.begin() as connection:
        for first in range(0, entries, chunk):
            rows = []
            for n in range(first, min(first + chunk, entries)):
                amount = 1000 if n % 100 == 0 else -10  # a deposit now and then, usage otherwise
                balance += amount
                rows.append({
                    "account_id": account_id, "kind": "deposit" if amount > 0 else "usage", "amount_minor": amount,
                    "currency": "USD", "balance_after_minor": balance, "idempotency_key": f"bulk:{account_id}:{n}",
                    "reference": f"attempt:{n}", "memo": "", "units": 0 if amount > 0 else 1, "created_at": NOW,
                })
            connection.execute(insert(LedgerEntry), rows)
        connection.execute(update(BillingAccount).where(BillingAccount.account_id == account_id)
                           .values(balance_minor=balance))
    engine.dispose()
    return time.perf_counter() - started


async def timed(operation: Callable[[], Awaitable[object]], repeat: int) -> float:
    """Median seconds of `operation`, after a warm-up."""
    for _ in range(min(20, repeat)):
        await operation()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await operation()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def read_times(targets: list[tuple[str, int]], rounds: int = 10, per_round: int = 200
                     ) -> list[tuple[float, float, int, int]]:
    """For each (url, account): (median cached read, median recomputed sum, cached
    balance, summed balance). The ledgers are read in alternating rounds, so a change
    in machine load affects all of them alike."""
    dbs = [Database(url) for url, _ in targets]
    try:
        def cached(db: Database, account_id: int) -> Callable[[], Awaitable[int]]:
            async def read() -> int:
                async with db.reading() as session:
                    row = await session.get(BillingAccount, account_id)
                    assert row is not None
                    return row.balance_minor
            return read

        def summed(db: Database, account_id: int) -> Callable[[], Awaitable[int]]:
            async def read() -> int:
                async with db.reading() as session:
                    return (await Ledger.summed(session, account_id))[0]
            return read

        readers = [(cached(db, a), summed(db, a)) for db, (_, a) in zip(dbs, targets, strict=True)]
        cached_times: list[list[float]] = [[] for _ in targets]
        for _ in range(rounds):
            for index, (read, _) in enumerate(readers):
                cached_times[index].append(await timed(read, per_round))
        results = []
        for index, (read, total) in enumerate(readers):
            median = statistics.median(cached_times[index])
            results.append((median, await timed(total, 10), await read(), await total()))
        return results
    finally:
        for db in dbs:
            await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=500, help="postings per writer (default 500)")
    parser.add_argument("--big", type=int, default=1_000_000, help="entries in the big ledger (default 1 000 000)")
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md alone")
    args = parser.parse_args()
    results: list[tuple[str, str, str]] = []
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        root = Path(tmp)

        # 1. concurrent writers
        url, _ = urls(root / "writers.db")
        schema.upgrade(url)
        accounts = asyncio.run(make_accounts(url, 2 * WRITERS))
        postings = WRITERS * args.postings
        seconds = asyncio.run(writers_in_one_process(url, accounts[:WRITERS], args.postings))
        results.append((f"postings/s, {WRITERS} writers (asyncio tasks, one Database)", f"{postings / seconds:,.0f}",
                        f"{postings} postings in {seconds:.2f} s"))
        seconds = writers_in_processes(url, accounts[WRITERS:], args.postings)
        results.append((f"postings/s, {WRITERS} writers (processes, one Database each)", f"{postings / seconds:,.0f}",
                        f"{postings} postings in {seconds:.2f} s"))

        # 2. balance reads, small and big ledger
        targets, builds = [], []
        for entries in (1_000, args.big):
            url, sync_url = urls(root / f"ledger-{entries}.db")
            schema.upgrade(url)
            [account] = asyncio.run(make_accounts(url, 1))
            builds.append((entries, bulk_ledger(sync_url, account, entries)))
            targets.append((url, account))
        reads = asyncio.run(read_times(targets))
        for (entries, build), (cached_s, summed_s, cached, summed) in zip(builds, reads, strict=True):
            assert cached == summed, f"cached balance {cached} != ledger sum {summed}"
            results.append((f"balance read, {entries:,} entries (cached, by primary key)", f"{cached_s * 1e6:,.0f} µs",
                            f"median of 10 x 200 reads; ledger built in {build:.1f} s"))
            results.append((f"ledger sum recomputed, {entries:,} entries (for contrast)", f"{summed_s * 1e3:,.2f} ms",
                            "median of 10; what the cache saves"))
    elapsed = time.perf_counter() - total

    width = max(len(r[0]) for r in results)
    table = [f"| {'figure':<{width}} | {'value':>12} | notes |", f"|{'-' * (width + 2)}|{'-' * 14}|-------|"]
    table += [f"| {name:<{width}} | {value:>12} | {note} |" for name, value, note in results]
    stamp = (f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {multiprocessing.cpu_count()} CPU(s),"
             f" {WRITERS} x {args.postings} postings per writer set, whole run {elapsed:.0f} s.")
    print("\n".join(table))
    print(stamp)
    if not args.no_readme and README.exists():
        text = README.read_text()
        block = "<!-- results -->\n" + "\n".join(table) + f"\n\n{stamp}\n<!-- /results -->"
        README.write_text(re.sub(r"<!-- results -->.*?<!-- /results -->", block, text, flags=re.S))


if __name__ == "__main__":
    main()
