"""DKIM (issue 6, R-MAIL): every mail the service sends carries two signatures,
rsa-sha256 (2048-bit) and ed25519-sha256, over From, To, Subject, Date, Message-ID and
both List-Unsubscribe headers. A sample of every kind of mail (bridge.mail.kinds), made
by its real code path, passes dkimpy and OpenDKIM's own verifier; a tampered copy fails
both."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest

from bridge.mail.kinds import MailKind
from tests.inbound.outgoing import OutgoingMail
from tests.inbound.support import Running, opendkim_verdict

# The registry, not a list kept by hand: a new kind of mail is checked, or fails.
KINDS = list(MailKind)


def dnsfunc_for(records: list[tuple[str, str]]) -> Callable[..., bytes | None]:
    table = {name.encode(): value.encode() for name, value in records}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return table.get(name.rstrip(b"."))

    return dnsfunc


def signatures(raw: bytes) -> list[dict[bytes, bytes]]:
    """The tags of each DKIM-Signature header, in order."""
    found = []
    for name, value in dkim.DKIM(raw).headers:
        if name.lower() == b"dkim-signature":
            found.append(dkim.util.parse_tag_value(value))
    return found


def dkimpy_verifies_all(raw: bytes, records: list[tuple[str, str]]) -> list[bool]:
    verifier = dkim.DKIM(raw)
    dnsfunc = dnsfunc_for(records)
    results = []
    for index in range(len(signatures(raw))):
        try:
            results.append(bool(verifier.verify(idx=index, dnsfunc=dnsfunc)))
        except dkim.DKIMException:  # dkimpy raises for a broken signature
            results.append(False)
    return results


def tampered(raw: bytes) -> bytes:
    """One visible word of the body changed (every template says "Hello" or "fax")."""
    for word, other in ((b"Hello", b"Hallo"), (b"fax", b"fox")):
        head, sep, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
        if word in body:
            return head + sep + body.replace(word, other, 1)
    raise AssertionError("nothing to tamper with")


def only_signature(raw: bytes, algorithm: bytes) -> bytes:
    """The message with the other DKIM-Signature header removed: OpenDKIM's test mode
    reports one signature, so each is checked on its own (the signatures do not cover
    each other)."""
    lines = raw.split(b"\n")
    out: list[bytes] = []
    skipping = False
    in_header = True
    for line in lines:
        if in_header and line.strip(b"\r") == b"":
            in_header = False
        if in_header and line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = False
        if in_header and line.lower().startswith(b"dkim-signature:"):
            start = lines.index(line)
            block = b" ".join(lines[start:start + 8])
            if b"a=" + algorithm not in b"".join(block.split()):
                skipping = True
                continue
        out.append(line)
    return b"\n".join(out)


def opendkim_passes(verdict: str) -> int:
    """Signatures OpenDKIM passed: 2.11 says "verification (...) succeeded", others dkim=pass."""
    return verdict.count(") succeeded") or verdict.count("dkim=pass")


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_every_kind_of_mail_carries_rsa_and_ed25519_signatures_that_dkimpy_verifies(
    outgoing_mail: OutgoingMail, kind: MailKind
) -> None:
    for name, raw in outgoing_mail.of_kind(kind).items():
        tags = signatures(raw)
        assert sorted(t[b"a"] for t in tags) == [b"ed25519-sha256", b"rsa-sha256"], name
        assert {t[b"d"] for t in tags} == {b"fax.test"}, name
        assert {t[b"s"] for t in tags} == {b"faxbridge", b"faxbridge-ed25519"}, name
        for t in tags:
            signed = set(b"".join(t[b"h"].split()).lower().split(b":"))
            assert {b"from", b"to", b"subject", b"date", b"message-id"} <= signed, name
            if b"List-Unsubscribe:" in raw:
                assert {b"list-unsubscribe", b"list-unsubscribe-post"} <= signed, name
        assert dkimpy_verifies_all(raw, outgoing_mail.dns_records) == [True, True], name
        assert dkimpy_verifies_all(tampered(raw), outgoing_mail.dns_records) == [False, False], name


def test_promotional_mail_signs_both_list_unsubscribe_headers(outgoing_mail: OutgoingMail) -> None:
    raw = outgoing_mail.templates["fax-with-promo"]
    assert b"List-Unsubscribe:" in raw and b"List-Unsubscribe-Post:" in raw
    for notice in ("opt-out-notice", "idle-notice", "bounce-notice", "announcement"):
        assert b"List-Unsubscribe:" not in outgoing_mail.templates[notice]  # R-MAIL-2
    for name, sample in outgoing_mail.samples.items():
        if sample.kind != MailKind.INBOUND_FAX:  # R-MAIL-2: service mail has no opt-out
            assert b"List-Unsubscribe:" not in sample.raw, name


def test_every_kind_of_mail_has_a_sample_made_by_its_real_code_path(outgoing_mail: OutgoingMail) -> None:
    # A kind added to bridge.mail.kinds without a sample in tests/inbound/outgoing.py
    # fails here (and in each check of that kind).
    made = {sample.kind for sample in outgoing_mail.samples.values()}
    assert sorted(set(MailKind) - made) == []


def test_the_rsa_key_is_2048_bits(outgoing_mail: OutgoingMail) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    [rsa_record] = [value for name, value in outgoing_mail.dns_records if "k=rsa" in value]
    der = base64.b64decode(rsa_record.split("p=", 1)[1])
    key = serialization.load_der_public_key(der)
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_opendkim_verifies_both_signatures_of_every_kind_of_mail_and_fails_a_tampered_copy(
    outgoing_mail: OutgoingMail, kind: MailKind, tmp_path: Path
) -> None:
    # The independent verifier is part of the test, not optional: scripts/apt/inbound.txt installs it.
    assert shutil.which("opendkim"), "opendkim is missing: run `bash scripts/setup`"
    for name, raw in outgoing_mail.of_kind(kind).items():
        for algorithm, selector in ((b"rsa-sha256", "s=faxbridge,"), (b"ed25519-sha256", "s=faxbridge-ed25519,")):
            alone = only_signature(raw, algorithm)
            assert len(signatures(alone)) == 1, name
            folder = tmp_path / name / algorithm.decode()
            (folder / "good").mkdir(parents=True)
            verdict = opendkim_verdict(alone, outgoing_mail.dns_records, folder / "good")
            assert opendkim_passes(verdict) == 1 and selector in verdict and "fail" not in verdict, (name, verdict)
            (folder / "bad").mkdir()
            verdict = opendkim_verdict(tampered(alone), outgoing_mail.dns_records, folder / "bad")
            assert opendkim_passes(verdict) == 0 and "fail" in verdict, (name, verdict)


def test_keys_are_generated_once_and_kept_with_a_selector_each(running: Running) -> None:
    from bridge.mail.dkim import load_or_create_signer

    settings = running.site.settings()
    again = load_or_create_signer(settings.dkim, var_dir=settings.paths.var_dir, default_domain="fax.test")
    assert running.signer is not None
    assert again.dns_records() == running.signer.dns_records()
    records = dict(again.dns_records())
    assert records["faxbridge._domainkey.fax.test"].startswith("v=DKIM1; k=rsa; p=")
    assert records["faxbridge-ed25519._domainkey.fax.test"].startswith("v=DKIM1; k=ed25519; p=")


def test_dkim_keygen_prints_both_keys_spf_and_dmarc(running: Running) -> None:
    out = running.site.cli("dkim", "keygen").stdout
    assert running.signer is not None
    for name, value in running.signer.dns_records():
        assert f'{name}. IN TXT "{value}"' in out
    assert "k=rsa" in out and "k=ed25519" in out
    assert 'fax.test. IN TXT "v=spf1' in out and '_dmarc.fax.test. IN TXT "v=DMARC1;' in out
