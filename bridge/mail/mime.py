"""Writing a fax mail (text, HTML and one large attachment) fast.

Where it sits: the outbox (bridge.mail.outbox) stores every mail the service sends. Most are
small and `email` writes them. A fax mail (bridge.inbound) carries a 300-500 KB PDF, and
`email` costs ~10 ms of pure Python on it: its header objects parse every value, its
generator writes base64 one 76-character line at a time and scans the whole text for a
boundary that does not collide. bench/inbound (100 fax mails a second on 2 cores) cannot
afford that, so `FaxMail` writes the one shape a fax mail has:

    multipart/mixed
      multipart/alternative
        text/plain; charset="utf-8"
        text/html; charset="utf-8"
      <the fax: application/pdf or image/tiff>; base64

Header values that are ASCII are written as they are (folded at spaces past 78
characters); any other value is folded and encoded by `email.policy.default`. Text
parts go as 7bit when they can, else quoted-printable (binascii, in C). Boundaries
contain "=_", which base64 and quoted-printable never produce, so no scan is needed.
`FaxMail` has the few `Message` methods the outbox uses (get, get_all, [], del, in).
Tests parse the stored mails back with `email`'s parser and score them with
SpamAssassin.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.policy import default as default_policy

import numpy as np

BASE64_LINE = 76  # RFC 2045 6.8
FOLD_AT = 78  # RFC 5322 2.1.1: lines SHOULD be no longer
LONGEST_LINE = 998  # ... and MUST be no longer


@dataclass(frozen=True)
class Attachment:
    data: bytes
    maintype: str
    subtype: str
    filename: str  # ASCII: the service makes it from the fax's time and caller


@dataclass
class FaxMail:
    headers: list[tuple[str, str]]
    text: str
    html: str
    attachment: Attachment
    linesep: str = field(default="\n")

    # --- the part of email.message.Message's API the outbox uses -----------------------
    def __contains__(self, name: str) -> bool:
        return any(n.lower() == name.lower() for n, _ in self.headers)

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def __setitem__(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def __delitem__(self, name: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), default)

    def get_all(self, name: str, default: list[str] | None = None) -> list[str]:
        found = [v for n, v in self.headers if n.lower() == name.lower()]
        return found or (default if default is not None else [])

    # --- writing --------------------------------------------------------------------------
    def as_bytes(self) -> bytes:
        mixed, alternative = _boundary(), _boundary()
        a = self.attachment
        head = "".join(_header_lines(self.headers))
        text_encoding, text = _text_body(self.text)
        html_encoding, markup = _text_body(self.html)
        skeleton = (
            f"{head}MIME-Version: 1.0\n"
            f'Content-Type: multipart/mixed; boundary="{mixed}"\n\n'
            f"--{mixed}\n"
            f'Content-Type: multipart/alternative; boundary="{alternative}"\n\n'
            f"--{alternative}\n"
            f'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: {text_encoding}\n\n'
        ).encode()
        return b"".join((
            skeleton,
            text,
            (
                f"\n--{alternative}\n"
                f'Content-Type: text/html; charset="utf-8"\nContent-Transfer-Encoding: {html_encoding}\n\n'
            ).encode(),
            markup,
            (
                f"\n--{alternative}--\n\n--{mixed}\n"
                f"Content-Type: {a.maintype}/{a.subtype}\nContent-Transfer-Encoding: base64\n"
                f'Content-Disposition: attachment; filename="{a.filename}"\n\n'
            ).encode(),
            base64_lines(a.data),
            f"\n--{mixed}--\n".encode(),
        ))


def base64_lines(data: bytes) -> bytes:
    """`data` in base64, in lines of 76 characters each ending with LF.

    The encoding is binascii's; the lines are cut as rows of a numpy array (one copy in
    C), since slicing ~6,000 lines of a fax in a Python loop costs more than encoding."""
    encoded = base64.b64encode(data)
    whole = len(encoded) // BASE64_LINE * BASE64_LINE
    rows = np.frombuffer(encoded, dtype=np.uint8, count=whole).reshape(-1, BASE64_LINE)
    lines = np.empty((rows.shape[0], BASE64_LINE + 1), dtype=np.uint8)
    lines[:, :BASE64_LINE] = rows
    lines[:, BASE64_LINE] = ord("\n")
    rest = encoded[whole:]
    return lines.tobytes() + (rest + b"\n" if rest else b"")


def _boundary() -> str:
    return f"=_fb{secrets.token_hex(12)}"


def _header_lines(headers: list[tuple[str, str]]) -> Iterator[str]:
    for name, value in headers:
        if not value.isascii() or "\n" in value or "\r" in value:
            yield default_policy.header_factory(name, value).fold(policy=default_policy)
            continue
        line = f"{name}: {value}"
        if len(line) <= FOLD_AT:
            yield line + "\n"
            continue
        # Folded between the value's words; the first word stays beside the name.
        first, *words = value.split(" ")
        folded, current = [], f"{name}: {first}"
        for word in words:
            if len(current) + 1 + len(word) > FOLD_AT:
                folded.append(current)
                current = word
            else:
                current = f"{current} {word}"
        folded.append(current)
        yield "\n ".join(folded) + "\n"


def _text_body(text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, body) of a text part, ending with a line end."""
    text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    data = text.encode("utf-8")
    if data.isascii() and max(map(len, data.split(b"\n"))) <= LONGEST_LINE:
        return "7bit", data
    return "quoted-printable", binascii.b2a_qp(data, istext=True)
