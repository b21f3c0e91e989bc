"""Opting out of promotional mail (R-MAIL-1): one click over real HTTP (RFC 8058) and
one mail over real SMTP; a Free account that opts out is told and closed
(R-ACCT-5 (iii)); a forged token changes nothing."""

from __future__ import annotations

import smtplib
from pathlib import Path

import aiohttp

from tests.inbound.support import Running, customer
from tests.support import FAX_DOMAIN, wait_for

NUMBER = "+15550300002"


def promo_mail(running: Running, address: str, plan: str, one_page: Path) -> tuple[int, str]:
    account = customer(running.site, address, NUMBER, plan=plan)
    running.fax_to(NUMBER, one_page)
    [mail] = running.wait_for_mail(address)
    https = [v.strip(" <>") for v in mail["List-Unsubscribe"].split(",")][1]
    return account, https


def account_row(running: Running, account: int):
    return running.site.query("SELECT * FROM accounts WHERE id = ?", account)[0]


async def http(method: str, url: str, **kwargs) -> tuple[int, str, list]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, allow_redirects=False, **kwargs) as response:
            return response.status, await response.text(), list(response.history)


def test_one_click_post_unsubscribes_with_200_and_no_redirect(running: Running, one_page: Path) -> None:
    account, url = promo_mail(running, "paula@example.com", "plus", one_page)
    status, body, history = running.run(http("POST", url, data={"List-Unsubscribe": "One-Click"}))
    assert status == 200 and not history and "unsubscribed" in body
    row = account_row(running, account)
    assert row["promo_opt_in"] == 0 and row["state"] == "active"  # a paying account stays open
    [event] = running.site.query("SELECT * FROM mail_events WHERE account_id = ?", account)
    assert event["kind"] == "opt-out" and event["via"] == "one-click"
    # Doing it again is harmless.
    assert running.run(http("POST", url, data={"List-Unsubscribe": "One-Click"}))[0] == 200


def test_get_only_shows_a_confirm_form_and_changes_nothing(running: Running, one_page: Path) -> None:
    account, url = promo_mail(running, "gary@example.com", "plus", one_page)
    status, body, _ = running.run(http("GET", url))
    assert status == 200
    assert '<form method="post"' in body and "<button" in body
    assert account_row(running, account)["promo_opt_in"] == 1


def test_a_forged_token_does_nothing(running: Running, one_page: Path) -> None:
    account, url = promo_mail(running, "fran@example.com", "plus", one_page)
    forged = url.rsplit("/", 1)[0] + "/" + "0" * 40
    assert running.run(http("POST", forged, data={"List-Unsubscribe": "One-Click"}))[0] == 404
    assert running.run(http("GET", forged))[0] == 404
    assert account_row(running, account)["promo_opt_in"] == 1
    assert running.site.query("SELECT * FROM mail_events") == []


def test_free_account_that_opts_out_is_told_and_closed(running: Running, one_page: Path) -> None:
    account, url = promo_mail(running, "fred@example.com", "free", one_page)
    status, body, _ = running.run(http("POST", url, data={"List-Unsubscribe": "One-Click"}))
    assert status == 200 and "closed" in body
    row = account_row(running, account)
    assert row["state"] == "closed" and row["promo_opt_in"] == 0
    [_, notice] = running.wait_for_mail("fred@example.com", 2)
    assert "closed" in notice["Subject"]
    assert "List-Unsubscribe" not in notice  # R-MAIL-2: announcements carry no opt-out
    assert "R-ACCT-5" not in notice.get_body(("plain",)).get_content()


def test_mail_to_the_unsubscribe_address_opts_out_over_smtp(running: Running, one_page: Path) -> None:
    account = customer(running.site, "mia@example.com", NUMBER, plan="plus")
    running.fax_to(NUMBER, one_page)
    [mail] = running.wait_for_mail("mia@example.com")
    mailto = mail["List-Unsubscribe"].split(",")[0].strip(" <>")
    address = mailto.removeprefix("mailto:")
    assert address.endswith(f"@{FAX_DOMAIN}")
    with smtplib.SMTP("127.0.0.1", running.site.ports["mx"], timeout=30) as smtp:
        smtp.ehlo("mail.example.com")
        smtp.mail("mia@example.com")
        assert smtp.rcpt(address)[0] == 250
        code, reply = smtp.data(b"Subject: unsubscribe\r\n\r\nunsubscribe\r\n")
        assert code == 250, reply
        smtp.mail("someone@example.com")
        assert smtp.rcpt(f"unsubscribe+{'f' * 40}@{FAX_DOMAIN}")[0] == 250
        code, reply = smtp.data(b"Subject: unsubscribe\r\n\r\n")
        assert code == 550, reply
    assert account_row(running, account)["promo_opt_in"] == 0
    [event] = running.site.query("SELECT * FROM mail_events WHERE account_id = ?", account)
    assert event["via"] == "mailto"


def test_after_opting_out_a_paying_account_gets_faxes_without_promotion(running: Running, one_page: Path) -> None:
    account, url = promo_mail(running, "pam@example.com", "pro", one_page)
    running.run(http("POST", url))
    running.fax_to(NUMBER, one_page)
    mails = running.wait_for_mail("pam@example.com", 2)
    assert "List-Unsubscribe" in mails[0] and "List-Unsubscribe" not in mails[1]
    wait_for(lambda: account_row(running, account)["state"] == "active", what="account still active")
