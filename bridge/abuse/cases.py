"""Abuse cases: recording reports, opening and extending cases, suspending at the threshold.

Where it sits: called by the act step (handlers/abuse_act.py), by the pipeline for
quarantined reports, by the poller to recognise messages it has already processed,
and by `faxbridge abuse suspend|dismiss`. Each change is one transaction holding the
report, the case, the mailbox cursor and the mail it sends (Outbox.enqueue), so
nothing is half done: a crash before the commit leaves the message in the mailbox to
be processed again, a crash after it leaves a message only to be filed.

R-ABUSE-3: a report about a number held by an account opens a case for that account
(or extends its open one) and the holder is told, with the evidence and the policy.
When `abuse.suspend_threshold` distinct reporters have reported the account within
`abuse.window_days` (30) days, the account's sending and the reported numbers are
suspended, with a notice. R-ABUSE-1: junk faxes sent through the service are handled
the same way, as a case of kind junk-fax.

A case suspends the account with a hold of its own (bridge.accounts.state, ref = the
case id), and dismissing the case lifts that hold only: an account also held for a
chargeback (R-DEP-8) or by an operator stays suspended.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.abuse.jobs import AbuseContext, AbuseJob
from bridge.abuse.models import (
    CASE_DROP_BOX,
    CASE_JUNK_FAX,
    DISMISSED,
    KIND_JUNK_FAX,
    MATCHED,
    NO_NUMBER,
    NOT_OURS,
    OPEN,
    QUARANTINED,
    SUSPENDED,
    AbuseCase,
    AbuseMailbox,
    AbuseReport,
)
from bridge.accounts.models import Account, FaxNumber
from bridge.accounts.state import AccountState, HoldReason, lift_hold, place_hold
from bridge.core.models import utcnow
from bridge.mail.kinds import MailKind

log = logging.getLogger("bridge.abuse.cases")


class CaseError(Exception):
    """An operator's request on a case cannot be done; the message says why."""


async def known_by_uid(session: AsyncSession, mailbox: str, uidvalidity: int, uid: int) -> AbuseReport | None:
    return await session.scalar(
        select(AbuseReport).where(
            AbuseReport.mailbox == mailbox, AbuseReport.uidvalidity == uidvalidity, AbuseReport.uid == uid
        )
    )


async def known_by_content(session: AsyncSession, sha256: str) -> AbuseReport | None:
    """A report with exactly these bytes (the same message seen under another UID,
    e.g. after a UIDVALIDITY change): it is only filed again, never acted on twice."""
    return await session.scalar(select(AbuseReport).where(AbuseReport.sha256 == sha256).limit(1))


async def mark_filed(context: AbuseContext, report_id: str, folder: str) -> None:
    async with context.db.transaction() as tx:
        report = await tx.get(AbuseReport, report_id)
        if report is not None:
            report.filed_in = folder


async def cursor(session: AsyncSession, mailbox: str) -> AbuseMailbox | None:
    return await session.scalar(select(AbuseMailbox).where(AbuseMailbox.mailbox == mailbox))


async def open_mailbox(context: AbuseContext, mailbox: str, uidvalidity: int) -> int:
    """Record the mailbox's UIDVALIDITY; returns the last UID processed under it (0 when
    it is new or changed: every UID is then new, and content hashes catch repeats)."""
    async with context.db.transaction() as tx:
        row = await cursor(tx, mailbox)
        if row is None:
            tx.add(AbuseMailbox(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=0))
            return 0
        if row.uidvalidity != uidvalidity:
            log.warning(
                "%s: UIDVALIDITY changed from %d to %d: every message is read again;"
                " reports already processed are recognised by their content",
                mailbox, row.uidvalidity, uidvalidity,
            )
            row.uidvalidity = uidvalidity
            row.last_uid = 0
            return 0
        return row.last_uid


async def _advance(tx: AsyncSession, job: AbuseJob) -> None:
    row = await cursor(tx, job.mailbox)
    if row is None:
        tx.add(AbuseMailbox(mailbox=job.mailbox, uidvalidity=job.uidvalidity, last_uid=job.uid))
    elif row.uidvalidity == job.uidvalidity and job.uid > row.last_uid:
        row.last_uid = job.uid


async def record_quarantine(context: AbuseContext, job: AbuseJob, reason: str) -> None:
    job.outcome, job.reason = QUARANTINED, reason
    job.filed_in = context.abuse.quarantine_folder
    report = job.report
    async with context.db.transaction() as tx:
        if await known_by_uid(tx, job.mailbox, job.uidvalidity, job.uid):
            return
        tx.add(
            AbuseReport(
                id=job.id,
                mailbox=job.mailbox,
                uidvalidity=job.uidvalidity,
                uid=job.uid,
                sha256=job.sha256,
                size=len(job.raw),
                reporter=report.reporter if report else "",
                subject=report.subject if report else "",
                message_id=report.message_id if report else "",
                kind=report.kind if report else "",
                outcome=QUARANTINED,
                reason=reason,
            )
        )
        await _advance(tx, job)


async def record_report(context: AbuseContext, job: AbuseJob) -> None:
    """The act step: everything a readable report leads to, in one transaction."""
    report = job.report
    assert report is not None
    abuse = context.abuse
    now = utcnow()
    found = [f.e164 for f in job.found]
    ours = [n for n in found if n in job.holders and job.holders[n].account_id is not None]
    unassigned = [n for n in found if n in job.holders and job.holders[n].account_id is None]
    not_ours = [n for n in found if n not in job.holders]
    job.outcome = MATCHED if (ours or unassigned) else (NOT_OURS if found else NO_NUMBER)
    job.filed_in = abuse.processed_folder
    case_kind = CASE_JUNK_FAX if report.kind == KIND_JUNK_FAX or report.mentions_junk_fax else CASE_DROP_BOX

    async with context.db.transaction() as tx:
        if await known_by_uid(tx, job.mailbox, job.uidvalidity, job.uid):
            return
        row = AbuseReport(
            id=job.id,
            mailbox=job.mailbox,
            uidvalidity=job.uidvalidity,
            uid=job.uid,
            sha256=job.sha256,
            size=len(job.raw),
            received_at=now,
            reporter=report.reporter,
            subject=report.subject,
            message_id=report.message_id,
            kind=report.kind,
            outcome=job.outcome,
            numbers_found=found,
            numbers_ours=ours + unassigned,
            evidence="\n".join(f"[{f.where}] {f.line}" for f in job.found)[:5000],
        )
        tx.add(row)
        await _advance(tx, job)

        by_account: dict[int, list[str]] = {}
        for number in ours:
            holder = job.holders[number]
            assert holder.account_id is not None
            by_account.setdefault(holder.account_id, []).append(number)
        for account_id, numbers in by_account.items():
            case = await _open_or_extend(tx, account_id, numbers, report.reporter, case_kind, now)
            job.case_ids.append(case.id)
            # One report may name numbers of several accounts; the row keeps the first.
            if row.account_id is None:
                row.account_id, row.case_id = account_id, case.id
            await tx.flush()
            account = await tx.get(Account, account_id)
            assert account is not None
            to = account.delivery_addresses() or account.sender_addresses()
            evidence = "\n".join(f.line for f in job.found if f.e164 in numbers)
            if to:
                await context.outbox.enqueue(
                    tx,
                    context.messages.holder_notice(
                        to, case_id=case.id, reference=job.id, kind=case_kind, numbers=numbers,
                        evidence=evidence, report_count=case.report_count,
                    ),
                    kind=MailKind.ABUSE_NOTICE,
                )
            reporters = await _distinct_reporters(tx, account_id, now - timedelta(days=abuse.window_days))
            # The case's own suspension, even of an account held for something else
            # already: lifting that other hold must not end this one.
            threshold_reached = reporters >= abuse.suspend_threshold
            if threshold_reached and case.state != SUSPENDED and account.state != AccountState.CLOSED:
                await _suspend(
                    tx, account, case, f"automatic: {reporters} distinct reporters within {abuse.window_days} days"
                )
                log.warning("%s: account %d suspended (%d reporters, case %d)", job.id, account_id, reporters, case.id)
                if to:
                    await context.outbox.enqueue(
                        tx,
                        context.messages.suspension(
                            to, case_id=case.id, reference=job.id, numbers=case.numbers, reporters=reporters
                        ),
                        kind=MailKind.ABUSE_SUSPENSION,
                    )
        if not report.auto_submitted:
            await context.outbox.enqueue(
                tx,
                context.messages.acknowledgement(
                    report.reporter, reference=job.id, in_reply_to=report.message_id, subject=report.subject,
                    ours=ours, not_ours=not_ours, unassigned=unassigned,
                ),
                kind=MailKind.ABUSE_ACK,
            )
    log.info(
        "%s (uid %d): %s %s; numbers %s; cases %s",
        job.id, job.uid, report.kind, job.outcome, found or "-", job.case_ids or "-",
    )


async def _open_or_extend(
    tx: AsyncSession, account_id: int, numbers: list[str], reporter: str, kind: str, now: datetime
) -> AbuseCase:
    case = await tx.scalar(
        select(AbuseCase)
        .where(AbuseCase.account_id == account_id, AbuseCase.state.in_((OPEN, SUSPENDED)))
        .order_by(AbuseCase.id.desc())
        .limit(1)
    )
    if case is None:
        case = AbuseCase(
            account_id=account_id, state=OPEN, kinds=[], numbers=[], reporters=[], report_count=0,
            opened_at=now, resolution="",
        )
        tx.add(case)
    # New lists, so the JSON columns are seen as changed.
    case.kinds = case.kinds + ([kind] if kind not in case.kinds else [])
    case.numbers = case.numbers + [n for n in numbers if n not in case.numbers]
    reporter = reporter.lower()
    case.reporters = case.reporters + ([reporter] if reporter not in case.reporters else [])
    case.report_count = (case.report_count or 0) + 1
    case.updated_at = now
    await tx.flush()
    return case


async def _distinct_reporters(tx: AsyncSession, account_id: int, since: datetime) -> int:
    # R-ABUSE-3: distinct reporters, so one person writing ten times counts once.
    return int(
        await tx.scalar(
            select(func.count(func.distinct(func.lower(AbuseReport.reporter)))).where(
                AbuseReport.account_id == account_id, AbuseReport.received_at >= since, AbuseReport.outcome == MATCHED
            )
        )
        or 0
    )


def _case_rules(case: AbuseCase) -> str:
    rules = {CASE_JUNK_FAX: "R-ABUSE-1", CASE_DROP_BOX: "R-ABUSE-3"}
    return ", ".join(rules[kind] for kind in case.kinds if kind in rules) or "R-ABUSE-3"


async def _suspend(tx: AsyncSession, account: Account, case: AbuseCase, why: str) -> None:
    await place_hold(tx, account, HoldReason.ABUSE_CASE, rule=_case_rules(case), ref=str(case.id), by="abuse", note=why)
    for number in (await tx.scalars(select(FaxNumber).where(FaxNumber.e164.in_(case.numbers)))).all():
        if number.account_id == account.id:
            number.state = "suspended"
    case.state = SUSPENDED
    case.closed_at = utcnow()
    case.resolution = why


async def suspend_case(tx: AsyncSession, case_id: int, why: str) -> AbuseCase:
    """`faxbridge abuse suspend`: the operator suspends the account and its reported numbers."""
    case = await tx.get(AbuseCase, case_id)
    if case is None:
        raise CaseError(f"no abuse case {case_id}")
    if case.state == DISMISSED:
        raise CaseError(f"case {case_id} was dismissed; a new report opens a new case")
    account = await tx.get(Account, case.account_id)
    assert account is not None
    await _suspend(tx, account, case, why)
    return case


async def dismiss_case(tx: AsyncSession, case_id: int, why: str) -> AbuseCase:
    """`faxbridge abuse dismiss`: the reports were mistaken. This case's hold on the
    account is lifted (it is active again unless another hold remains) and its numbers
    are assigned again."""
    case = await tx.get(AbuseCase, case_id)
    if case is None:
        raise CaseError(f"no abuse case {case_id}")
    if case.state == SUSPENDED:
        account = await tx.get(Account, case.account_id)
        assert account is not None
        await lift_hold(tx, account, HoldReason.ABUSE_CASE, ref=str(case.id), by="abuse", note=why)
        for number in (await tx.scalars(select(FaxNumber).where(FaxNumber.e164.in_(case.numbers)))).all():
            if number.account_id == account.id and number.state == "suspended":
                number.state = "assigned"
    case.state = DISMISSED
    case.closed_at = utcnow()
    case.resolution = why
    # Dismissed reports no longer count towards the threshold.
    for report in (await tx.scalars(select(AbuseReport).where(AbuseReport.case_id == case.id))).all():
        report.outcome = f"{MATCHED}-dismissed"[:20]
    return case
