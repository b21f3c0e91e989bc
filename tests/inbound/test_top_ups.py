"""The composition root builds every shared service once and hands it to every
component: what a customer notices when that is not so (issue 13).

A top-up a transaction writes down must be charged at once by the one loop that makes
card charges (R-DEP-3), whichever component wrote it: before there was one Metering, a
top-up triggered by received pages was written on a Metering no loop listened to, and
the card was charged up to `money.billing_interval_seconds` (an hour) later.
"""

from __future__ import annotations

from pathlib import Path

from tests.inbound.support import Running, customer, execute, inbound_site
from tests.money.support import APPROVES
from tests.support import ThreadedServer, wait_for

NUMBER = "+15550109901"  # one of the service's numbers, toll-free: every page is charged (R-PLAN-3)


def test_a_top_up_that_received_pages_write_down_is_charged_at_once_not_at_the_next_billing_cycle(
    tmp_path: Path, three_pages: Path
) -> None:
    site = inbound_site(tmp_path, extra="[money]\nbilling_interval_seconds = 3600\n")
    account = customer(site, "tom@example.com", NUMBER, plan="plus")
    execute(site, "UPDATE fax_numbers SET kind = 'toll-free' WHERE e164 = ?", NUMBER)
    site.cli("account", "card", str(account), APPROVES)
    site.cli("account", "deposit", str(account), "--amount", "10.00")
    # Usage since then has brought the deposit just above the USD 2.00 mark (R-DEP-3).
    execute(site, "UPDATE billing_accounts SET balance_minor = 205 WHERE account_id = ?", account)
    server = ThreadedServer(site.settings()).start()
    try:
        running = Running(site, server)
        running.fax_to(NUMBER, three_pages)
        running.wait_for_mail("tom@example.com")
        [usage] = site.query("SELECT charged_minor FROM usage_records WHERE account_id = ?", account)
        assert 205 - usage["charged_minor"] < 200  # the received pages took it below the mark

        def top_up_made() -> list:
            return site.query("SELECT amount_minor, state FROM card_charges WHERE account_id = ? AND purpose = 'topup'"
                              " AND state = 'approved'", account)

        # Seconds, not the hour until the next billing cycle.
        [top_up] = wait_for(top_up_made, timeout=15, what="the top-up to be charged to the card")
    finally:
        server.stop()
    assert top_up["amount_minor"] == 1000  # the same amount as the last deposit (R-DEP-3)
    [balance] = site.query("SELECT balance_minor FROM billing_accounts WHERE account_id = ?", account)
    assert balance["balance_minor"] == 205 - usage["charged_minor"] + 1000
