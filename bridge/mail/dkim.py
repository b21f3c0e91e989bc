"""DKIM: every mail the service sends is signed before it is stored in the outbox.

Where it sits: the composition root (bridge.services) builds one `DkimSigner` at
start-up from [dkim] and gives it to the one Outbox it builds; `Outbox.enqueue` (and the
inbound flow's MailStore) signs each message as it writes it to the spool, so the bytes
the mail runner relays are the bytes that were signed. dkimpy does the signing: by
default two signatures, rsa-sha256 (2048-bit) and ed25519-sha256 (RFC 8463, through
PyNaCl), each under its own selector (`<selector>` for RSA, `<selector>-ed25519` unless
[dkim] ed25519_selector says otherwise), since one DNS name cannot cleanly hold two
keys. Keys that are not configured are generated on first start under <var_dir>/dkim/
and kept, and `dns_records` gives the TXT records to publish (`faxbridge dkim keygen`).

Signing is blocking CPU work (~7-10 ms for both keys on a 460 KB fax mail with the native
engine): the outbox calls `sign` from its writer thread, never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from bridge.mail.settings import DkimSettings

log = logging.getLogger("bridge.dkim")


class DkimError(Exception):
    """DKIM cannot be set up as configured; the message says why."""


@dataclass(frozen=True)
class DkimKey:
    selector: str  # s=: the key is published at <selector>._domainkey.<domain>
    algorithm: str  # rsa-sha256 | ed25519-sha256
    private: bytes  # what dkimpy takes: PEM for RSA, the base64 seed for ed25519
    public_b64: str  # the p= of the DNS record

    @property
    def key_type(self) -> str:
        return "rsa" if self.algorithm == "rsa-sha256" else "ed25519"

    def txt_record(self) -> str:
        return f"v=DKIM1; k={self.key_type}; p={self.public_b64}"


class DkimSigner:
    """Signs a message (bytes, LF or CRLF line ends) with every configured key.

    The canonicalization (relaxed/relaxed, RFC 6376 3.4.2 and 3.4.4) and the body hash
    are done here, once per message for all keys, with bytes operations; the
    signatures by `cryptography` (RSASSA-PKCS1-v1_5 SHA-256; Ed25519 over the SHA-256
    of the header data, RFC 8463). dkimpy's own `dkim.sign` spends ~55 ms per key on a
    460 KB fax mail in Python regular expressions, holding the GIL (bench/inbound went
    from 2.5 to 9.1 mails a second without it); this takes ~7-10 ms for both.
    `engine="dkimpy"` signs through dkimpy instead (same header format). The tests
    verify the native signatures with dkimpy and with OpenDKIM.
    """

    def __init__(self, domain: str, keys: list[DkimKey], headers: tuple[str, ...], *,
                 engine: str = "native", clock: Callable[[], float] = time.time) -> None:
        self.domain = domain
        self.keys = keys
        self.headers = tuple(h.lower() for h in headers)
        self.engine = engine
        self.clock = clock
        self._crypto = [serialization.load_pem_private_key(k.private, password=None) if k.key_type == "rsa"
                        else ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(k.private))
                        for k in keys]

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled as its keys (for worker processes, bridge.inbound.workpool); the
        # loaded `cryptography` keys are made again on the other side.
        return (_signer_from, (self.domain, self.keys, self.headers, self.engine))

    def sign(self, message: bytes) -> bytes:
        """The message with one DKIM-Signature header per key prepended."""
        if self.engine == "dkimpy":
            return self._sign_dkimpy(message)
        linesep = b"\r\n" if b"\r\n" in message[:4096] else b"\n"
        fields, body = _split_message(message)
        present = {name.strip().lower().decode("ascii", "replace") for name, _ in fields}
        # Sign the listed headers the message has; From always (RFC 6376 5.4).
        include = [h for h in self.headers if h in present or h == "from"]
        signed_headers = b"".join(_relaxed_header(*_last_field(fields, name)) for name in include if name in present)
        body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest()).decode()
        stamp = int(self.clock())
        fold = linesep.decode() + "\t"
        signatures = b""
        for key, private in zip(self.keys, self._crypto, strict=True):  # one loaded key per key
            value = (
                f"v=1; a={key.algorithm}; c=relaxed/relaxed; d={self.domain}; s={key.selector};{fold}"
                f"t={stamp}; h={':'.join(include)};{fold}bh={body_hash};{fold}b="
            )
            data = signed_headers + _relaxed_header(b"DKIM-Signature", value.encode())[:-2]  # no final CRLF
            if isinstance(private, rsa.RSAPrivateKey):
                raw = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
            else:
                assert isinstance(private, ed25519.Ed25519PrivateKey)
                raw = private.sign(hashlib.sha256(data).digest())
            b64 = base64.b64encode(raw).decode()
            folded = fold.join(b64[i:i + 64] for i in range(0, len(b64), 64))
            signatures += f"DKIM-Signature: {value}{folded}".encode() + linesep
        return signatures + message

    def _sign_dkimpy(self, message: bytes) -> bytes:
        linesep = b"\r\n" if b"\r\n" in message[:4096] else b"\n"
        present = _header_names(message)
        include = [h.encode() for h in self.headers if h in present or h == "from"]
        signatures = b""
        for key in self.keys:
            signatures += dkim.sign(
                message,
                key.selector.encode(),
                self.domain.encode(),
                key.private,
                canonicalize=(b"relaxed", b"relaxed"),
                signature_algorithm=key.algorithm.encode(),
                include_headers=include,
                linesep=linesep,
            )
        return signatures + message

    def dns_records(self) -> list[tuple[str, str]]:
        """(name, TXT value) of each key, to publish under the signing domain."""
        return [(f"{key.selector}._domainkey.{self.domain}", key.txt_record()) for key in self.keys]


def _signer_from(domain: str, keys: list[DkimKey], headers: tuple[str, ...], engine: str) -> DkimSigner:
    return DkimSigner(domain, keys, headers, engine=engine)


def load_or_create_signer(settings: DkimSettings, *, var_dir: Path, default_domain: str) -> DkimSigner:
    """The signer of [dkim]; a key not configured is read from, or generated into,
    <var_dir>/dkim/ (blocking: call at start-up or from a thread)."""
    domain = settings.domain or default_domain
    keys = []
    for algorithm in settings.algorithms:
        configured = settings.rsa_key if algorithm == "rsa-sha256" else settings.ed25519_key
        path = Path(configured) if configured else var_dir / "dkim" / f"{settings.selector}.{algorithm}.pem"
        selector = settings.selector if algorithm == "rsa-sha256" else ed25519_selector(settings)
        keys.append(_load_or_create(path, selector, algorithm, settings.rsa_bits, generate=not configured))
    if settings.engine == "dkimpy" and any(k.algorithm == "ed25519-sha256" for k in keys):
        try:
            import nacl  # noqa: F401  (dkimpy signs ed25519 through PyNaCl)
        except ImportError:
            raise DkimError("dkim.algorithms names ed25519-sha256, which dkimpy signs through PyNaCl: "
                            "pip install pynacl (or dkim.engine = \"native\")") from None
    return DkimSigner(domain, keys, settings.headers, engine=settings.engine)


def ed25519_selector(settings: DkimSettings) -> str:
    return settings.ed25519_selector or f"{settings.selector}-ed25519"


def _load_or_create(path: Path, selector: str, algorithm: str, rsa_bits: int, *, generate: bool) -> DkimKey:
    if not path.exists():
        if not generate:
            raise DkimError(f"DKIM key {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        private_key = (
            rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
            if algorithm == "rsa-sha256"
            else ed25519.Ed25519PrivateKey.generate()
        )
        pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        log.warning("generated a DKIM %s key at %s; publish its DNS record (faxbridge dkim records)", algorithm, path)
    pem = path.read_bytes()
    loaded = serialization.load_pem_private_key(pem, password=None)
    if algorithm == "rsa-sha256":
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise DkimError(f"{path} is not an RSA private key")
        der = loaded.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        traditional = loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption())
        return DkimKey(selector, algorithm, traditional, base64.b64encode(der).decode())
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise DkimError(f"{path} is not an Ed25519 private key")
    seed = loaded.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    public = loaded.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return DkimKey(selector, algorithm, base64.b64encode(seed), base64.b64encode(public).decode())


def _header_names(message: bytes) -> set[str]:
    """Lower-cased names of the message's top-level header fields."""
    end = message.find(b"\n\n")
    crlf_end = message.find(b"\r\n\r\n")
    if crlf_end >= 0 and (end < 0 or crlf_end < end):
        end = crlf_end
    block = message if end < 0 else message[:end]
    names = set()
    for line in block.splitlines():
        if line and line[:1] not in (b" ", b"\t") and b":" in line:
            names.add(line.split(b":", 1)[0].strip().decode("ascii", "replace").lower())
    return names


_WSP_RUN = re.compile(rb"[ \t]+")


def _split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """([(name, raw value with its folds)], body) of a message with LF or CRLF ends."""
    # (A search for a two-byte pattern scans a 460 KB fax mail at ~1 GB/s; one for a
    # single byte is ~50 times faster, and most mails here have no CR at all.)
    text = message.replace(b"\r\n", b"\n") if b"\r" in message else message
    head, separator, body = text.partition(b"\n\n")
    if not separator:
        head, body = text, b""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        elif b":" in line:
            name, value = line.split(b":", 1)
            fields.append((name, value))
    return fields, body


def _last_field(fields: list[tuple[bytes, bytes]], name: str) -> tuple[bytes, bytes]:
    """The bottom-most instance of a header field (RFC 6376 5.4.2)."""
    wanted = name.encode()
    return next((n, v) for n, v in reversed(fields) if n.strip().lower() == wanted)


def _relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfolded value, WSP runs as one SP, trimmed."""
    unfolded = value.replace(b"\r\n", b"").replace(b"\n", b"")
    return name.strip().lower() + b":" + _WSP_RUN.sub(b" ", unfolded).strip(b" \t") + b"\r\n"


def _relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: no WSP at line ends, other WSP runs as one SP, no empty lines at
    the end, CRLF line ends.

    A 460 KB fax mail is ~6,000 base64 lines with no WSP at all: visiting them one by
    one in Python (or with a regular expression) costs milliseconds of GIL per mail.
    So only the part up to the last WSP (the text and HTML) is worked on, and with
    whole-buffer `replace`s."""
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    if b"\t" in body:
        body = body.replace(b"\t", b" ")  # a tab is WSP like a space
    end = body.rfind(b" ") + 2  # through the byte after the last space (its LF, if any)
    if end > 1:
        head = body[:end]
        while b"  " in head:
            head = head.replace(b"  ", b" ")
        body = head.replace(b" \n", b"\n") + body[end:]
    body = body.rstrip(b" ").rstrip(b"\n").rstrip(b" ")
    return body.replace(b"\n", b"\r\n") + b"\r\n" if body else b""
