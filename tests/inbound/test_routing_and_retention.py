"""Who gets a received fax, and for how long it is kept.

A fax to a suspended number, a suspended or closed account, or a number with no
holder is answered but never delivered to a former holder (R-NUM-2), and discarded or
held per config; a caller the account blocked is neither delivered nor charged.
Retention (R-STORE-1/2): Free faxes go 30 days after receipt, Plus/Pro faxes stay for
the life of the account, a closed account's faxes go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.inbound.support import CALLER, Running, add_number, customer, execute, inbound_site
from tests.support import ThreadedServer

NUMBER = "+15550300006"


def days_ago(days: int) -> str:
    """A timestamp as the database stores it (UTC, SQLite's text form)."""
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S.%f")


@pytest.mark.parametrize(
    "how",
    ["number suspended", "account suspended", "account closed", "number released"],
)
def test_fax_to_a_number_without_an_active_holder_is_not_delivered(running: Running, one_page: Path, how: str) -> None:
    account = customer(running.site, "former@example.com", NUMBER, plan="plus")
    if how == "number suspended":
        execute(running.site, "UPDATE fax_numbers SET state = 'suspended' WHERE e164 = ?", NUMBER)
    elif how == "number released":
        execute(running.site, "UPDATE fax_numbers SET state = 'available', account_id = NULL WHERE e164 = ?", NUMBER)
    else:
        execute(running.site, "UPDATE accounts SET state = ? WHERE id = ?", how.split()[1], account)
    result = running.fax_to(NUMBER, one_page)
    assert result.outcome == "completed"  # the line answered
    [row] = running.wait_for_fax_state("unrouted")
    assert row["account_id"] is None and row["tiff_path"] == ""
    assert running.site.query("SELECT * FROM jobs WHERE queue = 'inbound'") == []
    assert running.site.query("SELECT * FROM usage_records") == []
    assert running.site.mailbox("former@example.com") == []
    assert list((running.site.var / "faxline" / "inbound").glob("*.tif")) == [], "discarded per config"


def test_unrouted_faxes_can_be_held_for_an_operator(tmp_path: Path, one_page: Path) -> None:
    site = inbound_site(tmp_path, '[inbound]\nunrouted = "hold"\n')
    server = ThreadedServer(site.settings()).start()
    try:
        running = Running(site, server)
        add_number(site, NUMBER, None, state="available")
        running.fax_to(NUMBER, one_page)
        [row] = running.wait_for_fax_state("unrouted")
        held = Path(row["tiff_path"])
        assert held.parent == site.var / "spool" / "inbound" / "held" and held.exists()

        # R-STORE-2: an operator has inbound.held_days (30) to look; then it goes.
        running.fax_to(NUMBER, one_page)
        [young] = [r for r in running.wait_for_fax_state("unrouted", 2) if r["id"] != row["id"]]
        execute(site, "UPDATE inbound_faxes SET received_at = ? WHERE id = ?", days_ago(31), row["id"])
        execute(site, "UPDATE inbound_faxes SET received_at = ? WHERE id = ?", days_ago(29), young["id"])
        assert running.run(running.inbound.retention.purge_once()) == 1
        after = {r["id"]: r for r in running.fax_rows()}
        assert not held.exists() and after[row["id"]]["purged_at"] is not None and after[row["id"]]["tiff_path"] == ""
        assert Path(young["tiff_path"]).exists() and after[young["id"]]["purged_at"] is None
    finally:
        server.stop()


def test_blocked_caller_is_neither_delivered_nor_charged(running: Running, one_page: Path) -> None:
    account = customer(running.site, "picky@example.com", NUMBER, plan="plus")
    execute(
        running.site, "INSERT INTO blocked_senders (account_id, kind, value, created_at) VALUES (?, 'caller', ?, ?)",
        account, CALLER, days_ago(0),
    )
    running.fax_to(NUMBER, one_page)
    [row] = running.wait_for_fax_state("blocked")
    assert row["account_id"] == account
    running.fax_to(NUMBER, one_page, caller="+15550100888")
    running.wait_for_mail("picky@example.com")
    assert len(running.site.query("SELECT * FROM usage_records WHERE account_id = ?", account)) == 1


def test_retention_purges_exactly_what_it_should(running: Running, one_page: Path) -> None:
    free = customer(running.site, "free@example.com", NUMBER, plan="free")
    plus = customer(running.site, "plus@example.com", "+15550300007", plan="plus")
    closing = customer(running.site, "closing@example.com", "+15550300008", plan="pro")
    for number, address in ((NUMBER, "free@example.com"), ("+15550300007", "plus@example.com"),
                            ("+15550300008", "closing@example.com")):
        running.fax_to(number, one_page)
        running.wait_for_mail(address)
    running.fax_to(NUMBER, one_page)
    running.wait_for_mail("free@example.com", 2)
    rows = {r["id"]: r for r in running.fax_rows()}
    assert all(Path(r["tiff_path"]).exists() and Path(r["pdf_path"]).exists() for r in rows.values())
    # The first Free fax and the Plus fax are 31 days old; the second Free fax is 29.
    old_free, young_free = [r["id"] for r in running.fax_rows() if r["account_id"] == free]
    month_ago = days_ago(31)
    for fax_id in (old_free, *[r["id"] for r in rows.values() if r["account_id"] == plus]):
        execute(running.site, "UPDATE inbound_faxes SET received_at = ? WHERE id = ?", month_ago, fax_id)
    execute(running.site, "UPDATE inbound_faxes SET received_at = ? WHERE id = ?",
            days_ago(29), young_free)
    execute(running.site, "UPDATE accounts SET state = 'closed' WHERE id = ?", closing)

    purged = running.run(running.inbound.retention.purge_once())
    assert purged == 2
    after = {r["id"]: r for r in running.fax_rows()}
    gone = {fax_id for fax_id, r in after.items() if r["purged_at"] is not None}
    closed_fax = next(fax_id for fax_id, r in after.items() if r["account_id"] == closing)
    assert gone == {old_free, closed_fax}
    for fax_id in gone:
        assert not Path(rows[fax_id]["tiff_path"]).exists() and not Path(rows[fax_id]["pdf_path"]).exists()
        assert after[fax_id]["tiff_path"] == "" and after[fax_id]["pdf_path"] == ""
    for fax_id in set(after) - gone:
        assert Path(after[fax_id]["tiff_path"]).exists()
    assert running.run(running.inbound.retention.purge_once()) == 0


def test_a_free_account_without_a_fax_for_30_days_is_closed_and_told_r_acct_5_i(
    running: Running, one_page: Path
) -> None:
    never = customer(running.site, "never@example.com", NUMBER, plan="free", created_at=days_ago(31))
    quiet = customer(running.site, "quiet@example.com", "+15550300007", plan="free", created_at=days_ago(60))
    recent = customer(running.site, "recent@example.com", "+15550300008", plan="free", created_at=days_ago(60))
    new = customer(running.site, "new@example.com", "+15550300009", plan="free", created_at=days_ago(29))
    paying = customer(running.site, "paying@example.com", "+15550300010", plan="plus", created_at=days_ago(90))
    for number, address in (("+15550300007", "quiet@example.com"), ("+15550300008", "recent@example.com")):
        running.fax_to(number, one_page)
        running.wait_for_mail(address)
    faxes = {r["account_id"]: r["id"] for r in running.fax_rows()}
    execute(running.site, "UPDATE inbound_faxes SET received_at = ? WHERE id = ?", days_ago(31), faxes[quiet])
    execute(running.site, "UPDATE inbound_faxes SET received_at = ? WHERE id = ?", days_ago(29), faxes[recent])

    assert sorted(running.run(running.inbound.idle.close_once())) == sorted([never, quiet])
    states = {r["id"]: r["state"] for r in running.site.query("SELECT id, state FROM accounts")}
    assert (states[never], states[quiet]) == ("closed", "closed")
    assert states[recent] == states[new] == states[paying] == "active"  # a fax 29 days ago; 29 days old; Plus
    [notice] = running.wait_for_mail("never@example.com")
    assert "closed" in notice["Subject"] and "has not received a fax for 30 days" in notice.get_content()
    assert notice["List-Unsubscribe"] is None  # an account notice (R-MAIL-2)
    assert len(running.wait_for_mail("quiet@example.com", 2)) == 2  # its fax, then the notice
    assert running.run(running.inbound.idle.close_once()) == []  # closed once


def test_the_cli_lists_exports_blocks_and_prints_dns_records(running: Running, one_page: Path) -> None:
    account = customer(running.site, "cli@example.com", NUMBER, plan="plus")
    running.fax_to(NUMBER, one_page)
    running.wait_for_mail("cli@example.com")
    [row] = running.fax_rows()
    listing = running.site.cli("inbound", "list", str(account)).stdout
    assert row["id"] in listing and "delivered" in listing
    out = running.site.root / "out.pdf"
    running.site.cli("inbound", "export", str(account), row["id"], str(out))
    assert out.read_bytes() == Path(row["pdf_path"]).read_bytes()
    running.site.cli("inbound", "block", str(account), "--caller", CALLER)
    assert running.site.query("SELECT kind, value FROM blocked_senders")[0]["value"] == CALLER
    records = running.site.cli("dkim", "keygen").stdout
    assert running.signer is not None
    for name, value in running.signer.dns_records():
        assert f'{name}. IN TXT "{value}"' in records
    assert "v=spf1" in records and "_dmarc.fax.test" in records
