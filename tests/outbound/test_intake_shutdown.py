"""Stopping the durable intake (bridge.outbound.intake) while a group of submissions is
being committed: every sender of that group still gets its answer (STYLE 11), because
the commit is let finish before the committer stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bridge.accounts.senders import SenderIdentity, create_account
from bridge.core import schema
from bridge.core.db import Database
from bridge.core.queue import JobQueue
from bridge.core.spool import Spool
from bridge.outbound.intake import Accepted, DurableIntake, Submitted, _Pending
from bridge.outbound.models import Submission


def submitted(n: int, account_id: int) -> Submitted:
    identity = SenderIdentity(account_id=account_id, account_name="Ada", envelope_from="ada@example.com",
                              from_header="ada@example.com")
    return Submitted(envelope_from="ada@example.com", recipients=("+15550100001",),
                     content=b"Subject: x\r\n\r\nhi\r\n", identity=identity, message_id=f"<{n}@example.com>",
                     peer="127.0.0.1", listener="mx", auth_login=None)


@pytest.fixture
async def intake(tmp_path: Path) -> DurableIntake:
    url = f"sqlite+aiosqlite:///{tmp_path / 'faxbridge.db'}"
    await asyncio.to_thread(schema.upgrade, url)
    spool = Spool(tmp_path / "spool")
    spool.create()
    db = Database(url)
    async with db.transaction() as tx:
        await create_account(tx, senders=["ada@example.com"], plan="plus")
    return DurableIntake(db, spool, JobQueue(db, lease_seconds=30), commit_window_ms=0, duplicate_window_hours=24)


async def test_a_commit_in_progress_at_shutdown_finishes_and_its_senders_get_their_answer(
    intake: DurableIntake, monkeypatch: pytest.MonkeyPatch
) -> None:
    committing = asyncio.Event()
    real_commit = intake._commit

    async def slow_commit(group: list[_Pending]) -> list[Accepted]:
        committing.set()
        await asyncio.sleep(0.5)  # a database that takes its time
        return await real_commit(group)

    monkeypatch.setattr(intake, "_commit", slow_commit)
    intake.start()
    answers = [asyncio.create_task(intake.accept(submitted(n, account_id=1))) for n in range(3)]
    await committing.wait()
    await intake.close(timeout=10)  # the listeners have stopped; the commit is under way

    # A sender whose commit was cut short would wait for its answer until its timeout.
    accepted = [await asyncio.wait_for(answer, timeout=5) for answer in answers]
    assert [a.duplicate for a in accepted] == [False, False, False]
    async with intake.db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(Submission)) == 3
    await intake.db.close()
