"""The abuse mailbox end to end: a real Dovecot on loopback, the real server reading it
over IMAPS, reports as people and providers send them (issue 7, R-ABUSE)."""

from __future__ import annotations

import time

from tests.abuse import reports
from tests.abuse.conftest import poller_of
from tests.abuse.dovecot import Dovecot
from tests.support import Site, wait_for


def report_rows(site: Site) -> list:
    return site.query("SELECT * FROM abuse_reports ORDER BY uid")


def wait_reports(site: Site, count: int, timeout: float = 30) -> list:
    wait_for(lambda: len(report_rows(site)) >= count, timeout=timeout, what=f"{count} report(s) recorded")
    return report_rows(site)


def wait_filed(dovecot: Dovecot, processed: int, quarantined: int = 0, timeout: float = 20) -> None:
    wait_for(
        lambda: (
            dovecot.count("Processed") == processed
            and dovecot.count("Quarantine") == quarantined
            and dovecot.count("INBOX") == 0
        ),
        timeout=timeout,
        what=f"{processed} processed and {quarantined} quarantined, INBOX empty",
    )


def mail_to(site: Site, address: str) -> list[str]:
    return [m.decode("utf-8", "replace") for m in site.mailbox(address)]


def test_report_appended_to_the_mailbox_is_picked_up_through_idle(abuse_site, holders, abuse_server, dovecot):
    poller = poller_of(abuse_server)
    wait_for(lambda: dovecot.log().count("Login: user=<abuse>") >= 1, what="login")
    time.sleep(0.3)  # the poller is in IDLE now
    started = time.monotonic()
    dovecot.append(reports.arf("postmaster@isp.test", "+1 (555) 010-0001"))
    (row,) = wait_reports(abuse_site, 1, timeout=10)
    took = time.monotonic() - started
    # poll_seconds is 30: only IDLE can have brought it this fast.
    assert took < 5, took
    assert poller.idle_wakeups >= 1
    assert row["kind"] == "arf" and row["outcome"] == "matched" and row["account_id"] == holders["alice"]
    wait_filed(dovecot, processed=1)
    (flags, _), = dovecot.messages("Processed")
    assert b"\\Flagged" in flags
    notice = wait_for(lambda: mail_to(abuse_site, "alice@example.com"), what="the holder's notice")[0]
    assert "+15550100001" in notice and "R-ABUSE-3" in notice and "Fax your order form" in notice
    ack = wait_for(lambda: mail_to(abuse_site, "postmaster@isp.test"), what="the acknowledgement")[0]
    assert "is a number of" in ack and "opened a case" in ack


def test_each_kind_of_report_is_matched_to_the_right_account(abuse_site, holders, abuse_server, dovecot):
    dovecot.append(
        reports.arf("r1@example.net", "555-010-0001"),
        reports.attached("r2@example.net", "our office", reply_to="15550100002@fax.test"),
        reports.inline("r3@example.net", "+1 555 010 0001"),
        reports.junk_fax_pdf("r4@example.net", "+15550100002"),
        reports.junk_fax_tiff("r5@example.net", "+15550100001"),
        reports.complaint("r6@example.net", "Your customer at +1-555-010-0002 keeps sending me junk fax ads."),
    )
    rows = wait_reports(abuse_site, 6)
    seen = {r["reporter"]: (r["kind"], r["outcome"], r["account_id"]) for r in rows}
    assert seen == {
        "r1@example.net": ("arf", "matched", holders["alice"]),
        "r2@example.net": ("attached", "matched", holders["bob"]),
        "r3@example.net": ("inline", "matched", holders["alice"]),
        "r4@example.net": ("junk-fax", "matched", holders["bob"]),
        "r5@example.net": ("junk-fax", "matched", holders["alice"]),
        "r6@example.net": ("complaint", "matched", holders["bob"]),
    }
    cases = {c["account_id"]: c for c in abuse_site.query("SELECT * FROM abuse_cases")}
    assert set(cases) == {holders["alice"], holders["bob"]}
    # One case per account, extended by each report; kinds by rule.
    assert cases[holders["alice"]]["report_count"] == 3
    assert "junk-fax" in cases[holders["alice"]]["kinds"] and "drop-box" in cases[holders["alice"]]["kinds"]
    assert cases[holders["bob"]]["report_count"] == 3
    wait_filed(dovecot, processed=6)


def test_a_number_that_is_not_ours_gets_the_right_answer(abuse_site, holders, abuse_server, dovecot):
    dovecot.append(
        reports.attached("stranger@example.net", "+44 20 7946 0958"),
        reports.inline("other@example.net", "+1 555 010 0009"),
        reports.complaint("vague@example.net", "I got spam again. Please do something."),
    )
    rows = {r["reporter"]: r for r in wait_reports(abuse_site, 3)}
    assert rows["stranger@example.net"]["outcome"] == "not-ours"
    assert rows["stranger@example.net"]["account_id"] is None
    assert rows["other@example.net"]["outcome"] == "matched" and rows["other@example.net"]["account_id"] is None
    assert rows["vague@example.net"]["outcome"] == "no-number"
    assert not abuse_site.query("SELECT * FROM abuse_cases")
    stranger = wait_for(lambda: mail_to(abuse_site, "stranger@example.net"), what="ack")[0]
    assert "+442079460958 is not served by" in stranger and "telephone company" in stranger
    other = wait_for(lambda: mail_to(abuse_site, "other@example.net"), what="ack")[0]
    assert "not in use by any customer" in other
    vague = wait_for(lambda: mail_to(abuse_site, "vague@example.net"), what="ack")[0]
    assert "could not find a fax number" in vague


def test_distinct_reporters_reaching_the_threshold_suspend_the_account_and_number(
    abuse_site, holders, abuse_server, dovecot
):
    number = "+1 555 010 0002"
    # The same person three times counts once.
    dovecot.append(*(reports.inline("same@example.net", number) for _ in range(3)))
    dovecot.append(reports.attached("second@example.net", number))
    wait_reports(abuse_site, 4)
    assert abuse_site.query("SELECT state FROM accounts WHERE id = ?", holders["bob"])[0]["state"] == "active"
    dovecot.append(reports.arf("third@example.net", number))
    wait_reports(abuse_site, 5)
    assert abuse_site.query("SELECT state FROM accounts WHERE id = ?", holders["bob"])[0]["state"] == "suspended"
    assert abuse_site.query("SELECT state FROM fax_numbers WHERE e164 = '+15550100002'")[0]["state"] == "suspended"
    (case,) = abuse_site.query("SELECT * FROM abuse_cases")
    assert case["state"] == "suspended" and "3 distinct reporters" in case["resolution"]
    # Alice is untouched.
    assert abuse_site.query("SELECT state FROM accounts WHERE id = ?", holders["alice"])[0]["state"] == "active"
    mails = wait_for(
        lambda: [m for m in mail_to(abuse_site, "bob@example.com") if "suspended" in m.split("\n\n", 1)[0]],
        what="the suspension notice",
    )
    assert "R-ABUSE-3" in mails[0]

    # The operator's view, and a dismissal that lifts the suspension.
    listing = abuse_site.cli("abuse", "list").stdout
    assert "suspended" in listing and "+15550100002" in listing
    shown = abuse_site.cli("abuse", "show", str(case["id"])).stdout
    assert "third@example.net" in shown and "Fax your order form" in shown
    abuse_site.cli("abuse", "dismiss", str(case["id"]), "--reason", "customer was hacked; fixed")
    assert abuse_site.query("SELECT state FROM accounts WHERE id = ?", holders["bob"])[0]["state"] == "active"
    assert abuse_site.query("SELECT state FROM fax_numbers WHERE e164 = '+15550100002'")[0]["state"] == "assigned"


def test_malformed_and_hostile_reports_are_quarantined_and_the_next_is_processed(
    abuse_site, holders, abuse_server, dovecot
):
    dovecot.append(
        reports.malformed("bad@example.net"),
        reports.nested("deep@example.net", 30),
        reports.looping("loop@example.net", 100),
        reports.huge("big@example.net", 27 * 1024 * 1024),
        b"\x00\xff garbage without any header at all\r\n",
        reports.inline("good@example.net", "+1 555 010 0001"),
    )
    rows = wait_reports(abuse_site, 6, timeout=60)
    quarantined = {r["uid"]: r["reason"] for r in rows if r["outcome"] == "quarantined"}
    assert len(quarantined) == 5, rows
    reasons = " | ".join(quarantined.values())
    for expected in ("broken MIME structure", "levels", "mail loop", "too large", "From"):
        assert expected in reasons, reasons
    good = [r for r in rows if r["reporter"] == "good@example.net"]
    assert good and good[0]["outcome"] == "matched"
    wait_filed(dovecot, processed=1, quarantined=5, timeout=30)
    listing = abuse_site.cli("abuse", "list", "--quarantine").stdout
    assert "too large" in listing
    assert poller_of(abuse_server).connections == 1  # no crash, no reconnect


def test_a_dovecot_restart_mid_run_loses_nothing_and_processes_nothing_twice(
    abuse_site, holders, abuse_server, dovecot
):
    batch = [reports.inline(f"r{n}@example.net", "+1 555 010 0009") for n in range(40)]
    dovecot.append(*batch)
    wait_reports(abuse_site, 3)
    dovecot.stop()
    assert len(report_rows(abuse_site)) < 40, "the restart should come in the middle of the backlog"
    for n in range(5):
        dovecot.deliver(reports.inline(f"late{n}@example.net", "+1 555 010 0009"), f"late{n}.eml")
    time.sleep(0.5)
    dovecot.start()
    rows = wait_reports(abuse_site, 45, timeout=60)
    wait_filed(dovecot, processed=45, timeout=30)
    time.sleep(0.5)
    rows = report_rows(abuse_site)
    assert len(rows) == 45
    assert len({r["reporter"] for r in rows}) == 45
    # One acknowledgement each, never two.
    acks = abuse_site.query("SELECT payload FROM jobs WHERE queue = 'mail'")
    assert len(acks) == 45
    assert poller_of(abuse_server).connections >= 2


def test_a_uidvalidity_change_is_handled(abuse_site, holders, abuse_server, dovecot):
    dovecot.append(
        reports.inline("one@example.net", "+1 555 010 0001"), reports.inline("two@example.net", "+1 555 010 0001")
    )
    wait_reports(abuse_site, 2)
    wait_filed(dovecot, processed=2)
    old = abuse_site.query("SELECT uidvalidity FROM abuse_mailboxes")[0]["uidvalidity"]
    dovecot.stop()
    # A processed message back in the INBOX (as if its move had been lost), and a new one.
    processed = next((dovecot.maildir / ".Processed" / "cur").iterdir())
    dovecot.deliver(processed.read_bytes(), "again.eml")
    dovecot.deliver(reports.inline("three@example.net", "+1 555 010 0001"), "three.eml")
    time.sleep(1.1)  # Dovecot's UIDVALIDITY is a timestamp
    dovecot.reset_uidvalidity()
    dovecot.start()
    wait_reports(abuse_site, 3)
    wait_filed(dovecot, processed=4)
    time.sleep(0.5)
    rows = report_rows(abuse_site)
    assert sorted(r["reporter"] for r in rows) == ["one@example.net", "three@example.net", "two@example.net"]
    new = abuse_site.query("SELECT uidvalidity FROM abuse_mailboxes")[0]["uidvalidity"]
    assert new != old
    assert {r["uidvalidity"] for r in rows if r["reporter"] == "three@example.net"} == {new}
    assert len(mail_to(abuse_site, "one@example.net") + mail_to(abuse_site, "two@example.net")) == 2
