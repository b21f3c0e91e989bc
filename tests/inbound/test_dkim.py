"""Every mail the service sends is DKIM-signed as stored (rsa-sha256): dkimpy and
OpenDKIM's own verifier both pass it, and both fail a tampered copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import dkim
import pytest

from tests.inbound.support import Running, customer, execute, opendkim_verdict

NUMBER = "+15550300003"


def dnsfunc_for(records: list[tuple[str, str]]):
    table = {name.encode(): value.encode() for name, value in records}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return table.get(name.rstrip(b"."))

    return dnsfunc


def passed(verdict: str) -> bool:
    """OpenDKIM 2.11 says "verification (...) succeeded"; others print dkim=pass."""
    return "dkim=pass" in verdict or ("verification (" in verdict and ") succeeded" in verdict)


def tampered(raw: bytes) -> bytes:
    return raw.replace(b"Pages:", b"Pagez:", 1)


def signed_mails(running: Running, one_page: Path) -> list[bytes]:
    """A promotional fax mail, a fax mail without promotion, and an account notice."""
    customer(running.site, "free@example.com", NUMBER, plan="free")
    running.fax_to(NUMBER, one_page)
    running.wait_for_mail("free@example.com")
    # The number goes to a paying customer who opted out: a mail without promotion.
    execute(running.site, "UPDATE fax_numbers SET account_id = NULL, state = 'available' WHERE e164 = ?", NUMBER)
    customer(running.site, "paid@example.com", "+15550300004", plan="plus", promo_opt_in=False)
    running.fax_to("+15550300004", one_page)
    # An account notice (R-MAIL-2) goes through the same outbox.
    running.run(_closing_notice(running))
    running.wait_for_mail("paid@example.com")
    running.wait_for_mail("paid@example.com", 2)
    return running.site.mailbox("free@example.com") + running.site.mailbox("paid@example.com")


async def _closing_notice(running: Running) -> None:
    from bridge.inbound.messages import account_notice

    services = running.server.app.services
    notice = account_notice(services.settings, to=["paid@example.com"], subject="Maintenance on Sunday",
                            body="Faxes may arrive a few minutes late on Sunday morning.")
    async with services.db.transaction() as tx:
        await services.outbox.enqueue(tx, notice, kind="announcement")


def test_dkimpy_verifies_every_mail_and_fails_a_tampered_copy(running: Running, one_page: Path) -> None:
    signer = running.inbound.signer
    assert signer is not None
    dnsfunc = dnsfunc_for(signer.dns_records())
    mails = signed_mails(running, one_page)
    for raw in mails:
        assert raw.count(b"DKIM-Signature:") == 1
        assert dkim.verify(raw, dnsfunc=dnsfunc), raw[:600]
        header = raw[raw.index(b"DKIM-Signature:"):raw.index(b"DKIM-Signature:") + 400]
        assert b"a=rsa-sha256" in header and b"d=fax.test" in header and b"s=faxbridge" in header
    promo = next(m for m in mails if b"List-Unsubscribe:" in m)
    signed_headers = b"".join(promo.split(b"h=", 1)[1].split(b";", 1)[0].split())
    for name in (b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post"):
        assert name in signed_headers.split(b":"), name
    assert not dkim.verify(tampered(mails[0]), dnsfunc=dnsfunc)


@pytest.mark.skipif(shutil.which("opendkim") is None, reason="opendkim not installed (scripts/apt/inbound.txt)")
def test_opendkim_verifies_every_mail_and_fails_a_tampered_copy(running: Running, one_page: Path, tmp_path: Path) -> None:
    signer = running.inbound.signer
    assert signer is not None
    mails = signed_mails(running, one_page)
    for index, raw in enumerate(mails):
        folder = tmp_path / f"m{index}"
        folder.mkdir()
        verdict = opendkim_verdict(raw, signer.dns_records(), folder)
        assert passed(verdict), verdict
    folder = tmp_path / "tampered"
    folder.mkdir()
    verdict = opendkim_verdict(tampered(mails[0]), signer.dns_records(), folder)
    assert not passed(verdict) and "failed" in verdict, verdict


def test_the_key_is_generated_once_and_kept(running: Running) -> None:
    from bridge.dkim import load_or_create_signer

    settings = running.site.settings()
    again = load_or_create_signer(settings.dkim, var_dir=settings.paths.var_dir, default_domain="fax.test")
    assert running.inbound.signer is not None
    assert again.dns_records() == running.inbound.signer.dns_records()
    [(name, value)] = again.dns_records()
    assert name == "faxbridge._domainkey.fax.test" and value.startswith("v=DKIM1; k=rsa; p=")
