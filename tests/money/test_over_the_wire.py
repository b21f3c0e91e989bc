"""Money through the real server and the real CLI: a Free account's fax is refused
with the quote and the reason in the sender's mailbox (R-DEP-9, R-PLAN-1); a Plus
account's fax is held, sent, charged per R-USE-2 and settled, with the cost on the
receipt; operators read statements and change accounts with `faxbridge account`."""

from __future__ import annotations

import json
import math
import smtplib
from email import message_from_bytes, policy

from tests.conftest import register
from tests.money.support import APPROVES
from tests.support import FAX_DOMAIN, MINIMAL_PDF, Site, ThreadedServer, fax_message, wait_for

NUMBER = "+15550100001"  # answered by a virtual remote fax machine
PIPELINE = '[intake]\npipeline = ["authenticate", "parse", "render", "meter"]\n[render]\ncover_page = false\n'


def send(site: Site, sender: str) -> str:
    message = fax_message(sender, f"{NUMBER}@{FAX_DOMAIN}", subject="Invoice",
                          attachments=[("invoice.pdf", "application/pdf", MINIMAL_PDF)])
    with smtplib.SMTP("127.0.0.1", site.ports["mx"], timeout=30) as connection:
        connection.ehlo("client.example.com")
        connection.mail(sender)
        connection.rcpt(f"{NUMBER}@{FAX_DOMAIN}")
        code, reply = connection.data(message.as_bytes())
    assert code == 250, reply
    return reply.decode().removeprefix("2.0.0 Queued as ")


def text_of(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    return f"{message['Subject']}\n{message.get_body().get_content()}"


def test_R_DEP_9_a_free_accounts_fax_is_refused_and_the_sender_is_mailed_the_quote_and_why(tmp_path):
    site = Site(tmp_path, extra=PIPELINE).write()
    register(site, "frida@example.com", plan="free")
    server = ThreadedServer(site.settings()).start()
    try:
        job_id = send(site, "frida@example.com")
        job = wait_for(lambda: (j := site.job(job_id))["state"] == "rejected" and j, what="the refusal")
        assert (job["stage"], job["rule"]) == ("meter", "R-DEP-9")
        [mail] = wait_for(lambda: site.mailbox("frida@example.com"), what="the refusal mail")
    finally:
        server.stop()
    text = text_of(mail)
    assert text.startswith("Not sent: Invoice")
    flat = " ".join(text.split())
    pages = json.loads(job["payload"])["rendered"]["page_count"]
    assert "Your Free plan receives faxes by email but cannot send them." in flat
    plural = "s" if pages > 1 else ""
    assert f"On the Plus plan this fax would cost USD 0.{pages}0 ({pages} page{plural} x USD 0.10 to {NUMBER})" in flat
    assert "Upgrade your account to Plus to send faxes by email" in flat
    assert "you have not been charged" in flat
    assert site.query("SELECT COUNT(*) AS n FROM ledger_entries")[0]["n"] == 0


def test_a_plus_accounts_fax_is_held_sent_charged_per_R_USE_2_and_settled_with_the_cost_on_the_receipt(tmp_path):
    site = Site(tmp_path, extra=PIPELINE).write()
    account = register(site, "paula@example.com", plan="plus")
    site.cli("account", "card", str(account), APPROVES)
    server = ThreadedServer(site.settings()).start()
    try:
        job_id = send(site, "paula@example.com")
        wait_for(lambda: site.job(job_id)["state"] == "done", timeout=60, what="the fax to be sent")
        [receipt] = wait_for(lambda: site.mailbox("paula@example.com"), what="the receipt")
    finally:
        server.stop()
    [attempt] = site.query("SELECT * FROM call_attempts WHERE job_id = ?", job_id)
    assert attempt["answered"]
    billed = max(attempt["pages_sent"], math.ceil(attempt["line_seconds"] / 60)) * 10
    entries = site.query("SELECT kind, amount_minor FROM ledger_entries ORDER BY id")
    assert [(e["kind"], e["amount_minor"]) for e in entries] == [("deposit", 1000), ("usage", -billed)]
    [state] = site.query("SELECT balance_minor, held_minor FROM billing_accounts")
    assert (state["balance_minor"], state["held_minor"]) == (1000 - billed, 0)
    assert f"cost: USD 0.{billed:02d}" in text_of(receipt)
    call = json.loads(site.query("SELECT payload FROM jobs WHERE parent_id = ?", job_id)[0]["payload"])
    assert call["charged_minor"] == billed

    statement = site.cli("account", "statement", str(account)).stdout
    assert "deposit" in statement and "first deposit (card ending 4242)" in statement
    assert f"closing balance USD {(1000 - billed) // 100}.{(1000 - billed) % 100:02d}" in statement
    assert "card: visa ending 4242" in statement


def test_operators_suspend_resume_change_plan_run_billing_and_close_from_the_cli(tmp_path):
    site = Site(tmp_path).write()
    account = register(site, "olga@example.com", plan="plus")
    assert "visa card ending 4242 on file" in site.cli("account", "card", str(account), APPROVES).stdout
    assert "full card number" not in site.cli("account", "statement", str(account)).stdout
    rows = site.query("SELECT token, last4 FROM payment_methods")
    assert rows[0]["last4"] == "4242" and APPROVES not in rows[0]["token"]  # only a token is kept
    assert "active -> suspended" in site.cli("account", "suspend", str(account)).stdout
    assert "suspended -> active" in site.cli("account", "resume", str(account)).stdout
    assert "plan plus -> pro" in site.cli("account", "plan", str(account), "pro").stdout
    assert "fees 1" in site.cli("billing", "run").stdout  # the Pro monthly fee, in advance
    march = site.cli("account", "statement", str(account), "--month", "2000-01").stdout
    assert "opening balance USD 0.00" in march and "closing balance USD 0.00" in march
    statement = site.cli("account", "statement", str(account)).stdout
    assert "monthly fee, pro plan" in statement and "USD -20.00" in statement
    closed = site.cli("account", "close", str(account)).stdout
    assert "active -> closed" in closed and "nothing to refund" in closed  # R-DEP-7
    refused = site.cli("account", "resume", str(account), check=False)
    assert refused.returncode == 1 and "is closed" in refused.stderr
    bad = site.cli("account", "card", str(account), "4242424242424241", check=False)
    assert bad.returncode == 1 and "Luhn" in bad.stderr
