"""DKIM: every mail the service sends is signed before it is stored in the outbox.

Where it sits: the inbound component builds a `DkimSigner` at start-up from [dkim]
and hands it to `Outbox.use_signer`; from then on `Outbox.enqueue` signs each message
as it writes it to the spool, so the bytes the mail runner relays are the bytes that
were signed. dkimpy does the signing (rsa-sha256; ed25519-sha256 when PyNaCl is
installed); keys that are not configured are generated on first start under
<var_dir>/dkim/ and kept, and `dns_records` prints the TXT records to publish.

Signing is blocking CPU work (~8 ms for RSA-2048): the outbox calls `sign` from its
writer thread, never on the event loop.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from bridge.inbound.settings import DkimSettings

log = logging.getLogger("bridge.dkim")


class DkimError(Exception):
    """DKIM cannot be set up as configured; the message says why."""


@dataclass(frozen=True)
class DkimKey:
    algorithm: str  # rsa-sha256 | ed25519-sha256
    private: bytes  # what dkimpy takes: PEM for RSA, the base64 seed for ed25519
    public_b64: str  # the p= of the DNS record

    @property
    def key_type(self) -> str:
        return "rsa" if self.algorithm == "rsa-sha256" else "ed25519"

    def txt_record(self) -> str:
        return f"v=DKIM1; k={self.key_type}; p={self.public_b64}"


class DkimSigner:
    """Signs a message (bytes, LF or CRLF line ends) with every configured key."""

    def __init__(self, domain: str, selector: str, keys: list[DkimKey], headers: tuple[str, ...]) -> None:
        self.domain = domain
        self.selector = selector
        self.keys = keys
        self.headers = tuple(h.lower() for h in headers)

    def sign(self, message: bytes) -> bytes:
        """The message with one DKIM-Signature header per key prepended."""
        linesep = b"\r\n" if b"\r\n" in message[:4096] else b"\n"
        present = _header_names(message)
        # Sign the listed headers the message has; From always (RFC 6376 5.4).
        include = [h.encode() for h in self.headers if h in present or h == "from"]
        signatures = b""
        for key in self.keys:
            signatures += dkim.sign(
                message,
                self.selector.encode(),
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
        return [(f"{self.selector}._domainkey.{self.domain}", key.txt_record()) for key in self.keys]


def load_or_create_signer(settings: DkimSettings, *, var_dir: Path, default_domain: str) -> DkimSigner:
    """The signer of [dkim]; a key not configured is read from, or generated into,
    <var_dir>/dkim/ (blocking: call at start-up or from a thread)."""
    domain = settings.domain or default_domain
    keys = []
    for algorithm in settings.algorithms:
        configured = settings.rsa_key if algorithm == "rsa-sha256" else settings.ed25519_key
        path = Path(configured) if configured else var_dir / "dkim" / f"{settings.selector}.{algorithm}.pem"
        keys.append(_load_or_create(path, algorithm, settings.rsa_bits, generate=not configured))
    if any(k.algorithm == "ed25519-sha256" for k in keys):
        try:
            import nacl  # noqa: F401  (dkimpy signs ed25519 through PyNaCl)
        except ImportError:
            raise DkimError("dkim.algorithms names ed25519-sha256, which needs PyNaCl: pip install pynacl") from None
    return DkimSigner(domain, settings.selector, keys, settings.headers)


def _load_or_create(path: Path, algorithm: str, rsa_bits: int, *, generate: bool) -> DkimKey:
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
        return DkimKey(algorithm, traditional, base64.b64encode(der).decode())
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise DkimError(f"{path} is not an Ed25519 private key")
    seed = loaded.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    public = loaded.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return DkimKey(algorithm, base64.b64encode(seed), base64.b64encode(public).decode())


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
