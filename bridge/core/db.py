"""The database handle every part of faxbridge shares: engine, sessions, transactions.

Where it sits: created once by the app (or a CLI command) from `Settings.database` and
passed to the SMTP intake, the queue, the runners and the steps. SQLite (the embedded
default) runs in WAL mode with `synchronous=FULL`, so a commit is on disk when it
returns; PostgreSQL URLs work unchanged.

Transactions are scoped blocks (STYLE 10):

    async with db.transaction() as tx:
        tx.add(row)

commit on a clean exit, roll back on an exception. On SQLite a transaction begins with
`BEGIN IMMEDIATE`, so two writers queue on the lock instead of failing half-way with
"database is locked" when a reader tries to become a writer.

Small writes that arrive together (faxes handed over by several lines at once) share
one commit through `GroupCommit`: one fsync for the group instead of one each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, event, insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bridge.core.spool import fsync_directory

log = logging.getLogger("bridge.db")

SQLITE_BUSY_TIMEOUT_MS = 30_000

Rows = Mapping[Table, list[dict[str, Any]]]
Request = TypeVar("Request")
Answer = TypeVar("Answer")


class Database:
    """An engine and a session factory; `transaction()` is the only way to write."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        if self.is_sqlite:
            _ensure_sqlite_directory(url)
            connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            self.engine: AsyncEngine = create_async_engine(url, echo=echo, connect_args=connect_args)
            _configure_sqlite(self.engine, begin="BEGIN IMMEDIATE")
            # Readers get their own connections that begin DEFERRED: in WAL mode they
            # never wait for the writer, and never make it wait.
            self.read_engine: AsyncEngine = create_async_engine(url, echo=echo, connect_args=connect_args)
            _configure_sqlite(self.read_engine, begin="BEGIN")
        else:
            self.engine = create_async_engine(url, echo=echo, pool_pre_ping=True)
            self.read_engine = self.engine
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # SQLite has one writer at a time. Writers of this process queue on this lock
        # instead of on SQLite's busy handler, which sleeps in steps of up to 100 ms and
        # would stall the intake's group commits behind a runner's small write.
        # Other processes (the CLI) still wait through busy_timeout.
        self._writers = WriterGate() if self.is_sqlite else None

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on exit, rolled back on error.

        `urgent` writers (the SMTP intake, whose senders are waiting for their 250) go
        before the others when several wait for SQLite's single writer slot.
        """
        if self._writers is None:
            async with self._sessions() as session:
                async with session.begin():
                    yield session
            return
        async with self._writers.hold(urgent=urgent):
            async with self._sessions() as session:
                async with session.begin():
                    yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for queries only (nothing it changes is committed)."""
        async with self._read_sessions() as session:
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


class WriterGate:
    """One writer at a time, urgent writers first.

    Runners do many small writes; a burst of mail must not queue behind them, so a
    waiting urgent writer takes the slot before any waiting ordinary one. Ordinary
    writers catch up when the burst ends (the way an MTA accepts first, delivers later).
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._urgent_waiting = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()

    @asynccontextmanager
    async def hold(self, *, urgent: bool) -> AsyncIterator[None]:
        if urgent:
            self._urgent_waiting += 1
            self._no_urgent.clear()
            try:
                await self._lock.acquire()
            finally:
                self._urgent_waiting -= 1
                if not self._urgent_waiting:
                    self._no_urgent.set()
        else:
            while True:
                await self._no_urgent.wait()
                await self._lock.acquire()
                if not self._urgent_waiting:
                    break
                self._lock.release()
        try:
            yield
        finally:
            self._lock.release()


class Coalescer(Generic[Request, Answer]):
    """Requests that arrive while a call is under way go together into the next call.

    `await coalescer(request)` returns that request's answer from `call(requests)`,
    which answers a whole group at once: a list in the order of the requests, each an
    answer or the exception to raise to that request's caller. If `call` itself raises,
    every caller of the group gets that exception. A burst of N callers costs a few
    calls, not N; one caller alone waits for nothing but its own call.
    """

    # Sequence, not list: a call that answers without exceptions (a list[Answer]) is
    # one too, and list is invariant.
    def __init__(
        self, call: Callable[[list[Request]], Awaitable[Sequence[Answer | BaseException]]], *, name: str
    ) -> None:
        self.call = call
        self.name = name
        self._pending: list[tuple[Request, asyncio.Future[Answer]]] = []
        self._caller: asyncio.Task[None] | None = None

    async def __call__(self, request: Request) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._caller is None or self._caller.done():
            self._caller = asyncio.create_task(self._call_while_pending(), name=self.name)
        # shield: a caller that is cancelled does not cancel the group's call.
        return await asyncio.shield(future)

    async def _call_while_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                answers = await self.call([request for request, _ in group])
            except Exception as error:  # noqa: BLE001 - handed to every caller of the group
                answers = [error] * len(group)
            for (_, future), answer in zip(group, answers, strict=True):
                if future.done():
                    continue
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)


class GroupCommit:
    """New rows that arrive while a commit is under way go together into the next one.

    `await group.insert({table: [row, ...]})` returns when the rows are committed
    (durable), like a transaction of its own, but a burst of N callers costs a few
    commits, not N (a `Coalescer`), and the rows of a group go in as one multi-row
    INSERT per table (in the order the tables first appear), much cheaper than N
    unit-of-work flushes.

    If an insert fails (a duplicate key), the group is done again with each caller's
    rows in a SAVEPOINT, so those are rolled back alone and their caller gets the
    exception; the others commit. If the commit itself fails, every caller of the group
    gets that error (nothing of the group was written).
    """

    def __init__(self, db: Database, *, urgent: bool = False) -> None:
        self.db = db
        self.urgent = urgent
        self._commits: Coalescer[tuple[Rows, frozenset[Path]], None] = Coalescer(
            self._commit_group, name="group-commit")

    async def insert(self, rows: Rows, *, sync_directories: Iterable[Path] = ()) -> None:
        """Commit `rows`; first fsync `sync_directories` (where the caller put the files
        the rows point at), once for the whole group."""
        await self._commits((rows, frozenset(sync_directories)))

    async def _commit_group(self, group: list[tuple[Rows, frozenset[Path]]]) -> list[None | BaseException]:
        directories = sorted(set().union(*(directories for _, directories in group)))
        try:
            await asyncio.gather(*(asyncio.to_thread(fsync_directory, d) for d in directories))
        except OSError:
            log.exception("cannot make %d directories durable", len(directories))
            raise
        try:
            # The common case: every row goes in, one commit for all.
            async with self.db.transaction(urgent=self.urgent) as tx:
                await _insert(tx, [rows for rows, _ in group])
            return [None] * len(group)
        except Exception:  # noqa: BLE001 - whatever failed, the group is retried caller by caller below
            # Someone's rows failed: again, each caller's in a savepoint, to find whose.
            return await self._insert_each([rows for rows, _ in group])

    async def _insert_each(self, group: list[Rows]) -> list[None | BaseException]:
        errors: list[None | BaseException] = []
        try:
            async with self.db.transaction(urgent=self.urgent) as tx:
                for rows in group:
                    try:
                        async with tx.begin_nested():
                            await _insert(tx, [rows])
                        errors.append(None)
                    except Exception as error:  # noqa: BLE001 - these rows alone are rolled back; their caller gets it
                        errors.append(error)
        except Exception:
            log.exception("a group commit of %d insert(s) failed", len(group))
            raise
        return errors


async def _insert(tx: AsyncSession, parts: list[Rows]) -> None:
    merged: dict[Table, list[dict[str, Any]]] = {}
    for part in parts:
        for table, rows in part.items():
            merged.setdefault(table, []).extend(rows)
    for table, rows in merged.items():
        await tx.execute(insert(table), rows)


def _ensure_sqlite_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, *, begin: str) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control from the driver so the BEGIN below is the only
        # BEGIN (pysqlite's implicit BEGIN is deferred and breaks writer ordering).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is durable when it returns (Non-negotiable 2: 250 only after
        # the submission is on disk).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql(begin)
