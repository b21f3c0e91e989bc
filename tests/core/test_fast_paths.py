"""The fast paths inbound delivery relies on (bench/inbound) give the same answers as
the slow, obvious ones: the fax mail writer against `email`'s parser, DKIM's relaxed
body canonicalisation against RFC 6376 3.4.4 applied line by line, group commits
against one transaction each, batch claims against double claiming, and the worker
pool against a worker that dies."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Table, func, select

from bridge.core import schema
from bridge.core.db import Database, GroupCommit
from bridge.core.models import Job
from bridge.core.queue import JobQueue
from bridge.core.runner import Runner
from bridge.core.spool import Spool
from bridge.inbound.workpool import WorkContext, WorkFailed, WorkPool
from bridge.mail.dkim import _relaxed_body
from bridge.mail.jobs import OutgoingMail
from bridge.mail.kinds import MailKind
from bridge.mail.mime import Attachment, FaxMail, base64_lines
from bridge.mail.outbox import MailStore
from tests.support import Site, assert_workers_die_with_a_killed_server


# --- the fax mail writer -------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 3 * 57, 340_001])
def test_base64_lines_are_what_the_standard_library_writes(size: int) -> None:
    data = os.urandom(size)
    assert base64_lines(data) == base64.encodebytes(data)


def test_a_fax_mail_reads_back_whole_with_email_s_own_parser() -> None:
    pdf = os.urandom(200_000)
    mail = FaxMail(
        headers=[("From", "Fäx Brïdge <noreply@fax.example>"), ("To", "alice@example.com"),
                 ("Subject", "Fax from +15550100777, 3 pages"),
                 ("List-Unsubscribe", "<mailto:unsubscribe+" + "ab" * 20 + "@fax.example>, <https://fax.example/u/"
                  + "ab" * 20 + ">")],
        text="Grüße — your fax\nline two",
        html="<p>" + "x" * 1500 + "</p>",  # one line longer than SMTP allows: must be encoded
        attachment=Attachment(pdf, "application", "pdf", "fax-20261123-1200-15550100777.pdf"),
    )
    raw = mail.as_bytes()
    assert max(len(line) for line in raw.split(b"\n")) <= 998
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["From"].addresses[0].display_name == "Fäx Brïdge"
    assert parsed["List-Unsubscribe"] == mail.get("List-Unsubscribe")
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed.get_body(("plain",)).get_content() == "Grüße — your fax\nline two\n"
    assert parsed.get_body(("html",)).get_content() == "<p>" + "x" * 1500 + "</p>\n"
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "fax-20261123-1200-15550100777.pdf"
    assert attachment.get_content() == pdf
    assert not any(part.defects for part in parsed.walk())


# --- DKIM relaxed body ----------------------------------------------------------------------
def _relaxed_body_by_the_rfc(body: bytes) -> bytes:
    """RFC 6376 3.4.4, line by line, as written there."""
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    lines = [re.sub(rb"[ \t]+", b" ", line).rstrip(b" ") for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


@given(st.lists(st.sampled_from([b"a", b"Zm9v", b" ", b"\t", b"\n", b"\r\n", b"  \t "]), max_size=40))
def test_relaxed_body_canonicalisation_is_rfc_6376_3_4_4(pieces: list[bytes]) -> None:
    body = b"".join(pieces)
    assert _relaxed_body(body) == _relaxed_body_by_the_rfc(body)


# --- database fast paths ---------------------------------------------------------------------
@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Site(tmp_path).write().settings()
    await asyncio.to_thread(schema.upgrade, settings.database.url)
    database = Database(settings.database.url)
    yield database
    await database.close()


async def test_a_failing_insert_in_a_group_commit_fails_only_its_own_caller(db: Database) -> None:
    group = GroupCommit(db)
    mail = OutgoingMail(mail_from="a@x", rcpt_tos=["b@x"], eml_path="/dev/null", kind=MailKind.ANNOUNCEMENT)

    def job(job_id: str) -> dict[Table, list[dict[str, Any]]]:
        return {Job.__table__: [JobQueue.new_row("test", mail, job_id=job_id)]}

    outcomes = await asyncio.gather(
        group.insert(job("one")), group.insert(job("same")), group.insert(job("same")), group.insert(job("two")),
        return_exceptions=True,
    )
    assert outcomes[0] is None and outcomes[3] is None
    assert sum(isinstance(o, Exception) for o in outcomes[1:3]) == 1  # the second "same" breaks the key
    async with db.reading() as session:
        stored = set(await session.scalars(select(Job.id).where(Job.queue == "test")))
    assert stored == {"one", "same", "two"}


async def test_two_workers_claiming_batches_at_once_never_take_the_same_job(db: Database) -> None:
    mail = OutgoingMail(mail_from="a@x", rcpt_tos=["b@x"], eml_path="/dev/null", kind=MailKind.ANNOUNCEMENT)
    async with db.transaction() as tx:
        for n in range(40):
            JobQueue.add(tx, "test", mail, job_id=f"J{n:02d}")
    first, second = JobQueue(db, lease_seconds=60), JobQueue(db, lease_seconds=60)
    taken: list[str] = []
    while True:
        batches = await asyncio.gather(first.claim_many("test", 7), second.claim_many("test", 7))
        if not any(batches):
            break
        taken += [job.id for batch in batches for job in batch]
    assert sorted(taken) == [f"J{n:02d}" for n in range(40)]  # each once
    async with db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(Job).where(Job.state == "running")) == 40


class BatchThatFailsOnce(Runner):
    """A batching runner whose first batch cannot record anything (the disk failing)."""

    queue_name = "test"
    batch_size = 8

    def __init__(self, queue: JobQueue) -> None:
        super().__init__(queue, workers=1, poll_seconds=0.05)
        self.batches: list[list[str]] = []

    async def handle_batch(self, jobs: list[Job]) -> None:
        self.batches.append([job.id for job in jobs])
        if len(self.batches) == 1:
            raise OSError(5, "Input/output error")
        async with self.queue.db.transaction() as tx:
            for job in jobs:
                JobQueue.finish(await self.queue.owned(tx, job.id), "done")


async def test_a_batch_that_cannot_be_finished_is_retried_and_the_runner_goes_on(db: Database) -> None:
    mail = OutgoingMail(mail_from="a@x", rcpt_tos=["b@x"], eml_path="/dev/null", kind=MailKind.ANNOUNCEMENT)
    async with db.transaction() as tx:
        for n in range(3):
            JobQueue.add(tx, "test", mail, job_id=f"J{n}")
    runner = BatchThatFailsOnce(JobQueue(db, lease_seconds=0.3))
    runner.start()
    try:
        for _ in range(100):
            async with db.reading() as session:
                states = set(await session.scalars(select(Job.state).where(Job.queue == "test")))
            if states == {"done"}:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.stop(5)
    assert states == {"done"}  # taken again once their leases ran out
    assert runner.batches[0] == runner.batches[1] == ["J0", "J1", "J2"]


# --- the worker pool -------------------------------------------------------------------------
def die_the_first_time(_context: WorkContext, marker: str) -> str:
    if not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)  # the worker process dies mid-call
    return f"done in {os.getpid()}"


async def test_a_worker_process_that_dies_is_replaced_and_the_call_made_again(tmp_path: Path) -> None:
    settings = Site(tmp_path).write().settings()
    pool = WorkPool(WorkContext(settings, MailStore(Spool(tmp_path / "spool"), mail_domain="fax.example")),
                    processes=1)
    try:
        answer = await pool.run(die_the_first_time, str(tmp_path / "died"))
    finally:
        pool.close()
    assert answer.startswith("done in ") and answer != f"done in {os.getpid()}"


def square_unless_seven(_context: WorkContext, n: int, delay: float = 0.0) -> tuple[int, int]:
    time.sleep(delay)
    if n == 7:
        raise ValueError("seven is not welcome")
    return n * n, os.getpid()


async def test_calls_made_together_each_get_their_own_answer_or_exception(tmp_path: Path) -> None:
    """The pool sends the calls of a batch in chunks; a failing call fails alone."""
    settings = Site(tmp_path).write().settings()
    pool = WorkPool(WorkContext(settings, MailStore(Spool(tmp_path / "spool"), mail_domain="fax.example")),
                    processes=2)
    try:
        outcomes = await asyncio.gather(*(pool.run(square_unless_seven, n) for n in range(20)), return_exceptions=True)
    finally:
        pool.close()
    for n, outcome in enumerate(outcomes):
        if n == 7:
            assert isinstance(outcome, WorkFailed) and "seven is not welcome" in str(outcome)
        else:
            assert not isinstance(outcome, BaseException) and outcome[0] == n * n
    assert len({pid for outcome in outcomes if not isinstance(outcome, BaseException) for _, pid in [outcome]}) == 2


async def test_a_cancelled_caller_leaves_the_worker_serving_the_others(tmp_path: Path) -> None:
    settings = Site(tmp_path).write().settings()
    pool = WorkPool(WorkContext(settings, MailStore(Spool(tmp_path / "spool"), mail_domain="fax.example")),
                    processes=1)
    try:
        slow = asyncio.ensure_future(pool.run(square_unless_seven, 3, 0.5))
        others = asyncio.gather(*(pool.run(square_unless_seven, n) for n in (4, 5)))
        await asyncio.sleep(0.1)
        slow.cancel()
        answers = await others
        later = await pool.run(square_unless_seven, 6)
    finally:
        pool.close()
    assert [square for square, _ in answers] == [16, 25] and later[0] == 36
    assert len({pid for _, pid in [*answers, later]}) == 1  # the same worker: none was killed


async def test_a_call_that_cannot_be_sent_fails_alone_and_the_pool_serves_on(tmp_path: Path) -> None:
    settings = Site(tmp_path).write().settings()
    pool = WorkPool(WorkContext(settings, MailStore(Spool(tmp_path / "spool"), mail_domain="fax.example")),
                    processes=1)
    try:
        with pytest.raises(Exception, match="pickle"):
            await pool.run(square_unless_seven, lambda: 3)  # a lambda cannot be pickled
        assert (await pool.run(square_unless_seven, 4))[0] == 16
    finally:
        pool.close()


def worker_pid(_context: WorkContext) -> int:
    return os.getpid()


_KILLED_SERVER = """
import asyncio, os, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.core.test_fast_paths import worker_pid
from tests.support import Site
from bridge.inbound.workpool import WorkContext, WorkPool
from bridge.mail.outbox import MailStore
from bridge.core.spool import Spool

async def main():
    root = Path({root!r})
    store = MailStore(Spool(root / "spool"), mail_domain="fax.example")
    pool = WorkPool(WorkContext(Site(root).write().settings(), store), processes=2)
    pids = {{await pool.run(worker_pid) for _ in range(20)}}
    print(*sorted(pids), flush=True)
    os.kill(os.getpid(), 9)  # the server dies without shutting anything down

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_worker_processes_do_not_outlive_a_server_killed_with_kill_9(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(_KILLED_SERVER.format(repo=str(Path(__file__).resolve().parents[2]), root=str(tmp_path)))
    assert_workers_die_with_a_killed_server(script, expected_workers=2)
