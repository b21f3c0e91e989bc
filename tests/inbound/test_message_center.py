"""The message center (R-STORE-1, R-ACCT-2) over real HTTP with aiohttp's client: a
customer logs in with email address and PIN, sees their stored faxes (time in their
own time zone, caller, pages) and downloads each as PDF; nothing of another account
is reachable; failed logins are rate-limited per address; login is CSRF-safe; the
session cookie is HttpOnly, SameSite=Lax, and Secure when the public URL is https."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

from bridge.accounts.senders import hash_pin
from tests.inbound.support import Running, customer, inbound_site
from tests.support import ThreadedServer

ALICE, BOB = "alice@example.com", "bob@example.com"
ALICE_NUMBER, BOB_NUMBER = "+15550300020", "+15550300021"


def two_customers_with_faxes(running: Running, fax: Path) -> tuple[int, int]:
    alice = customer(running.site, ALICE, ALICE_NUMBER, plan="plus", pin_hash=hash_pin("2468"),
                     time_zone="Europe/Berlin")
    bob = customer(running.site, BOB, BOB_NUMBER, plan="free", pin_hash=hash_pin("1357"))
    running.fax_to(ALICE_NUMBER, fax, caller="+15550100111")
    running.fax_to(BOB_NUMBER, fax, caller="+15550100222")
    running.wait_for_mail(ALICE)
    running.wait_for_mail(BOB)
    return alice, bob


async def login(client: aiohttp.ClientSession, base: str, address: str, pin: str,
                **headers: str) -> aiohttp.ClientResponse:
    async with client.get(f"{base}/messages/login") as form:
        page = await form.text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    return await client.post(f"{base}/messages/login", data={"email": address, "pin": pin, "csrf": csrf.group(1)},
                             allow_redirects=False, headers=headers)


def browser(cookies: dict[str, str] | None = None) -> aiohttp.ClientSession:
    """A client that keeps cookies for 127.0.0.1 (aiohttp's jar skips IP hosts by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), cookies=cookies)


def set_cookie(response: aiohttp.ClientResponse, name: str) -> str:
    """The raw Set-Cookie header for `name`."""
    return next(h for h in response.headers.getall("Set-Cookie", []) if h.startswith(f"{name}="))


def test_customer_logs_in_lists_faxes_in_their_time_zone_and_downloads_the_pdf_r_store_1(
    running: Running, one_page: Path
) -> None:
    alice, _ = two_customers_with_faxes(running, one_page)
    [row] = running.site.query("SELECT * FROM inbound_faxes WHERE account_id = ?", alice)

    async def scenario() -> None:
        base = running.http_base
        async with browser() as client:
            async with client.get(f"{base}/messages", allow_redirects=False) as anonymous:
                assert anonymous.status == 303 and anonymous.headers["Location"] == "/messages/login"
            answer = await login(client, base, "Alice@Example.com", "2468")
            assert answer.status == 303 and answer.headers["Location"] == "/messages"
            cookie = set_cookie(answer, "fb_session")
            assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/messages" in cookie
            assert "Secure" not in cookie  # public_url is http:// in this site
            async with client.get(f"{base}/messages") as listing:
                assert listing.status == 200
                page = await listing.text()
            received = datetime.fromisoformat(row["received_at"]).replace(tzinfo=UTC)
            berlin = received.astimezone(ZoneInfo("Europe/Berlin"))
            assert berlin.strftime("%Y-%m-%d %H:%M ") + berlin.tzname() in page
            assert "+15550100111" in page and "<td>1</td>" in page
            assert "+15550100222" not in page  # Bob's fax
            async with client.get(f"{base}/messages/faxes/{row['id']}.pdf") as download:
                assert download.status == 200
                assert download.headers["Content-Type"] == "application/pdf"
                assert "attachment" in download.headers["Content-Disposition"]
                assert await download.read() == Path(row["pdf_path"]).read_bytes()

    running.run(scenario())


def test_nothing_of_another_account_is_reachable_r_store_1(running: Running, one_page: Path) -> None:
    alice, bob = two_customers_with_faxes(running, one_page)
    [alice_fax] = running.site.query("SELECT id FROM inbound_faxes WHERE account_id = ?", alice)
    [bob_fax] = running.site.query("SELECT id FROM inbound_faxes WHERE account_id = ?", bob)

    async def scenario() -> None:
        base = running.http_base
        async with browser() as client:
            # Not logged in: no fax at all, not even one's own.
            async with client.get(f"{base}/messages/faxes/{alice_fax['id']}.pdf", allow_redirects=False) as answer:
                assert answer.status == 303
            assert (await login(client, base, BOB, "1357")).status == 303
            async with client.get(f"{base}/messages/faxes/{alice_fax['id']}.pdf") as answer:
                assert answer.status == 404 and not (await answer.read()).startswith(b"%PDF")
            async with client.get(f"{base}/messages/faxes/R-does-not-exist.pdf") as missing:
                assert missing.status == 404
            async with client.get(f"{base}/messages/faxes/{bob_fax['id']}.pdf") as own:
                assert own.status == 200
            async with client.get(f"{base}/messages") as listing:
                page = await listing.text()
                assert bob_fax["id"] in page and alice_fax["id"] not in page
        # A made-up session cookie is no session.
        async with browser({"fb_session": "x" * 43}) as forger:
            async with forger.get(f"{base}/messages/faxes/{alice_fax['id']}.pdf", allow_redirects=False) as answer:
                assert answer.status == 303

    running.run(scenario())


def test_failed_logins_are_rate_limited_per_address_r_acct_2(running: Running, one_page: Path) -> None:
    two_customers_with_faxes(running, one_page)

    async def scenario() -> None:
        base = running.http_base
        async with browser() as client:
            for _ in range(5):
                assert (await login(client, base, ALICE, "0000")).status == 401
            # The right PIN no longer helps: the address is locked for the window.
            assert (await login(client, base, ALICE, "2468")).status == 429
            # An unknown address is counted the same way (no account enumeration).
            for _ in range(5):
                assert (await login(client, base, "nobody@example.com", "0000")).status == 401
            assert (await login(client, base, "nobody@example.com", "0000")).status == 429
            # Another address is not affected.
            assert (await login(client, base, BOB, "1357")).status == 303

    running.run(scenario())


def test_login_is_csrf_safe_and_logout_needs_the_session_token(running: Running, one_page: Path) -> None:
    two_customers_with_faxes(running, one_page)

    async def scenario() -> None:
        base = running.http_base
        async with browser() as client:
            # A form posted without the token from our own page (as a forged form would).
            forged = await client.post(f"{base}/messages/login", data={"email": ALICE, "pin": "2468", "csrf": "guess"},
                                       allow_redirects=False)
            assert forged.status == 403 and "fb_session" not in forged.cookies
            # The right token, but sent from another site's page.
            cross = await login(client, base, ALICE, "2468", Origin="https://evil.example")
            assert cross.status == 403 and "fb_session" not in cross.cookies
            assert (await login(client, base, ALICE, "2468", Origin=base)).status == 303
            async with client.get(f"{base}/messages") as listing:
                page = await listing.text()
            # Logout without the page's token keeps the session; with it, ends it.
            wrong = await client.post(f"{base}/messages/logout", data={"csrf": "wrong"}, allow_redirects=False)
            assert wrong.status == 403
            async with client.get(f"{base}/messages", allow_redirects=False) as still:
                assert still.status == 200
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token is not None
            session = _session_value(client)
            await client.post(f"{base}/messages/logout", data={"csrf": token.group(1)}, allow_redirects=False)
        async with browser({"fb_session": session}) as replay:
            async with replay.get(f"{base}/messages", allow_redirects=False) as gone:
                assert gone.status == 303

    running.run(scenario())


def _session_value(client: aiohttp.ClientSession) -> str:
    return next(c.value for c in client.cookie_jar if c.key == "fb_session")


def test_the_session_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path, one_page: Path) -> None:
    site = inbound_site(tmp_path)
    site.config.write_text(re.sub(r'public_url = "http://', 'public_url = "https://', site.config.read_text()))
    server = ThreadedServer(site.settings()).start()
    try:
        running = Running(site, server)
        customer(site, ALICE, ALICE_NUMBER, plan="plus", pin_hash=hash_pin("2468"))

        async def scenario() -> None:
            base = running.http_base
            async with browser() as client:
                # The TLS proxy is not here: the client would keep the Secure login
                # cookie to itself over http, so it is handed back by hand.
                async with client.get(f"{base}/messages/login") as form:
                    csrf_cookie = SimpleCookie(set_cookie(form, "fb_login_csrf"))["fb_login_csrf"]
                    assert csrf_cookie["secure"] and csrf_cookie["samesite"] == "Strict"
                answer = await client.post(
                    f"{base}/messages/login", data={"email": ALICE, "pin": "2468", "csrf": csrf_cookie.value},
                    headers={"Cookie": f"fb_login_csrf={csrf_cookie.value}"}, allow_redirects=False,
                )
                assert answer.status == 303
                cookie = SimpleCookie(set_cookie(answer, "fb_session"))["fb_session"]
                assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"

        running.run(scenario())
    finally:
        server.stop()
