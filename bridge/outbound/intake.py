"""Durable intake: a submission is on disk, and its job queued, before the 250.

Where it sits: the SMTP front door's `handle_DATA` calls `DurableIntake.accept()` once
the sender is checked; the 250 names the queue id it returns. The intake runner then
claims the `intake` job. Nothing here renders, bills or sends (STYLE 3).

How a message is made durable (Non-negotiable 2):
  1. its bytes go to `spool/incoming/<id>.eml`, fsynced (a thread pool does this, so
     the fsyncs of concurrent sessions overlap and the filesystem journal batches them);
  2. messages that arrive within `smtp.commit_window_ms` of each other form a group:
     the spool directory is fsynced once for the group, then the submission rows and
     their jobs are inserted in ONE database transaction (SQLite: synchronous=FULL);
  3. only when that commit returns does each session get its 250.
A failure at any point answers 451 and the client retries; a crash before the commit
leaves at most an unreferenced spool file, never a job without its message.

A resubmission (same sender, Message-ID and content within `intake.duplicate_window_hours`)
is answered 250 with the first copy's id and not queued again. "Content" leaves out the
trace fields relays prepend (Received:, ...), so a relay's retry counts as the same
message; a message without a Message-ID is never treated as a duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bridge.accounts.senders import SenderIdentity
from bridge.core.component import ServiceKey
from bridge.core.db import Database
from bridge.core.ids import new_id
from bridge.core.models import Job, utcnow
from bridge.core.queue import JobQueue
from bridge.core.spool import Spool, fsync_directory, write_durably
from bridge.outbound.jobs import QUEUE_INTAKE, FaxJob
from bridge.outbound.models import Submission

log = logging.getLogger("bridge.intake")

# Writers for spool files: enough that fsyncs of many sessions are in flight together.
SPOOL_WRITER_THREADS = 16


@dataclass(frozen=True)
class Submitted:
    """What the front door knows about a message when it has been received whole."""

    envelope_from: str
    recipients: tuple[str, ...]  # E.164, in order, no repeats
    content: bytes
    identity: SenderIdentity
    message_id: str
    peer: str
    listener: str
    auth_login: str | None


@dataclass(frozen=True)
class Accepted:
    queue_id: str
    duplicate: bool


@dataclass
class _Pending:
    submission: dict[str, Any]
    job_row: dict[str, Any]
    future: asyncio.Future[Accepted] = field(repr=False)


class DurableIntake:
    def __init__(
        self,
        db: Database,
        spool: Spool,
        queue: JobQueue,
        *,
        commit_window_ms: float,
        duplicate_window_hours: float,
    ) -> None:
        self.db = db
        self.spool = spool
        self.queue = queue
        self.commit_window = commit_window_ms / 1000
        self.duplicate_window = timedelta(hours=duplicate_window_hours)
        self._writers = ThreadPoolExecutor(SPOOL_WRITER_THREADS, thread_name_prefix="spool-writer")
        self._pending: list[_Pending] = []
        self._arrived = asyncio.Event()
        self._taken = asyncio.Event()  # set each time the committer takes the pending group
        self._idle = asyncio.Event()  # clear while a group is being committed
        self._idle.set()
        self._committer: asyncio.Task[None] | None = None
        self._last_accepted = float("-inf")

    def received_within(self, seconds: float) -> bool:
        """Was a message accepted in the last `seconds`? (Runners defer to intake.)"""
        return time.monotonic() - self._last_accepted < seconds

    def start(self) -> None:
        self._committer = asyncio.create_task(self._commit_groups(), name="intake-committer")

    async def close(self, timeout: float | None = None) -> None:
        """Commit what is pending and let a commit in progress finish, then stop (after
        the listeners stopped accepting). A commit cut short would leave its senders
        without an answer; `timeout` bounds the wait for a database that hangs."""
        if self._committer is not None:
            try:
                await asyncio.wait_for(self._drained(), timeout)
            except TimeoutError:
                log.error("intake: a commit did not finish within %.0f s of shutdown; its senders get no 250 "
                          "and will send again", timeout or 0)
            self._committer.cancel()
            await asyncio.gather(self._committer, return_exceptions=True)
        self._writers.shutdown(wait=True)

    async def _drained(self) -> None:
        while self._pending or not self._idle.is_set():
            if self._pending:
                self._taken.clear()
                await self._taken.wait()
            else:
                await self._idle.wait()

    async def accept(self, submitted: Submitted) -> Accepted:
        submission_id = new_id("F")
        path = self.spool.message_path(submission_id)

        def store() -> str:
            # In a writer thread: hashing 50 KB holds no lock that the event loop needs
            # (hashlib releases the GIL), and the write and fsync block.
            write_durably(path, submitted.content, sync_directory=False)
            return content_fingerprint(submitted.content)

        # One hash serves both: the stored content hash and the duplicate key.
        fingerprint = content_sha256 = await asyncio.get_running_loop().run_in_executor(self._writers, store)
        dedup_key = None
        if submitted.message_id:
            dedup_key = hashlib.sha256(
                "\0".join(
                    (submitted.envelope_from.lower(), submitted.message_id, fingerprint)
                ).encode()
            ).hexdigest()
        received_at = utcnow()
        submission = dict(
            id=submission_id,
            received_at=received_at,
            envelope_from=submitted.envelope_from,
            recipients=list(submitted.recipients),
            from_header=submitted.identity.from_header,
            message_id=submitted.message_id,
            content_sha256=content_sha256,
            dedup_key=dedup_key,
            size=len(submitted.content),
            spool_path=str(path),
            account_id=submitted.identity.account_id,
            peer=submitted.peer,
            listener=submitted.listener,
            auth_login=submitted.auth_login,
        )
        job = FaxJob(
            id=submission_id,
            submission_id=submission_id,
            account_id=submitted.identity.account_id,
            envelope_from=submitted.envelope_from,
            from_header=submitted.identity.from_header,
            recipients=list(submitted.recipients),
            received_at=received_at,
            message_id=submitted.message_id,
            raw_path=str(path),
            work_dir=str(self.spool.work_dir(submission_id)),
        )
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        job_row = JobQueue.new_row(QUEUE_INTAKE, job, job_id=submission_id, submission_id=submission_id)
        self._pending.append(_Pending(submission, job_row, future))
        self._arrived.set()
        return await future

    async def _commit_groups(self) -> None:
        while True:
            await self._arrived.wait()
            if self.commit_window:
                await asyncio.sleep(self.commit_window)
            group, self._pending = self._pending, []
            self._arrived.clear()
            self._taken.set()
            if not group:
                continue
            self._idle.clear()
            try:
                results = await self._commit(group)
            except Exception as error:
                log.exception("could not commit %d submission(s); they get 451", len(group))
                for pending in group:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                self._idle.set()
                continue
            for pending, result in zip(group, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)
            self._idle.set()  # every sender of the group has its answer
            self._last_accepted = time.monotonic()
            self.queue.wake(QUEUE_INTAKE)

    async def _commit(self, group: list[_Pending]) -> list[Accepted]:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writers, fsync_directory, self.spool.incoming)
        cutoff = utcnow() - self.duplicate_window
        keys = {p.submission["dedup_key"] for p in group if p.submission["dedup_key"]}
        async with self.db.transaction(urgent=True) as tx:
            earlier: dict[str, str] = {}
            if keys:
                rows = await tx.execute(
                    select(Submission.dedup_key, Submission.id).where(
                        Submission.dedup_key.in_(keys), Submission.received_at >= cutoff
                    )
                )
                earlier = {key: sid for key, sid in rows if key}
            results: list[Accepted] = []
            fresh: list[_Pending] = []
            for pending in group:
                key = pending.submission["dedup_key"]
                if key and key in earlier:
                    results.append(Accepted(earlier[key], duplicate=True))
                    continue
                if key:
                    earlier[key] = pending.submission["id"]
                fresh.append(pending)
                results.append(Accepted(pending.submission["id"], duplicate=False))
            if fresh:
                # Core executemany, not the ORM: one statement per table for the group
                # keeps the event loop free for the SMTP sessions. (SQLAlchemy types a
                # model's __table__ as any FromClause, which has no insert(); these are Tables.)
                await tx.execute(Submission.__table__.insert(),  # type: ignore[attr-defined]
                                 [p.submission for p in fresh])
                await tx.execute(Job.__table__.insert(), [p.job_row for p in fresh])  # type: ignore[attr-defined]
        for pending, result in zip(group, results, strict=True):
            if result.duplicate:
                # The copy's bytes are not needed: the first one is being processed.
                self.spool.message_path(pending.submission["id"]).unlink(missing_ok=True)
        return results


# Header fields that relays prepend on each hop or retry: a resubmission through a
# relay differs only in these, so they do not count as "the content" for duplicates.
_TRACE_FIELDS = (b"received:", b"return-path:", b"x-received:", b"authentication-results:", b"delivered-to:")


def content_fingerprint(content: bytes) -> str:
    """sha256 of the message without the trace header fields at its top."""
    position = 0
    skipping = False
    while position < len(content):
        end = content.find(b"\n", position)
        end = len(content) if end < 0 else end + 1
        line = content[position:end]
        if line[:1] in (b" ", b"\t") and skipping:
            position = end
            continue
        if line.lower().startswith(_TRACE_FIELDS):
            skipping = True
            position = end
            continue
        break
    return hashlib.sha256(content[position:]).hexdigest()


# The app's one durable intake: built by the composition root for the SMTP front door;
# the intake runner asks it whether mail is arriving (queue.defer_while_receiving_ms).
SUBMISSIONS: ServiceKey[DurableIntake] = ServiceKey("durable intake")
