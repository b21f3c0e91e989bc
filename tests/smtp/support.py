"""A line-level SMTP client for the front door tests: it shows every reply exactly as the
server sent it, and sends exactly the octets a test gives it (several commands in one
packet, as a pipelining client does)."""

from __future__ import annotations

import socket
import ssl

from tests.support import Site


def insecure_tls() -> ssl.SSLContext:
    # The fresh install's certificate is self-signed: a customer's client is told to
    # trust it; the test does the same.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class RawSession:
    """One SMTP connection driven line by line; `send()` answers with the reply's lines."""

    def __init__(self, site: Site, listener: str = "mx", *, implicit_tls: bool = False) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", site.ports[listener]), timeout=30)
        if implicit_tls:
            self.sock = insecure_tls().wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> list[str]:
        lines = []
        while True:
            raw = self.file.readline()
            assert raw.endswith(b"\r\n"), f"the server closed the connection after {lines!r}"
            line = raw[:-2].decode("utf-8")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines

    def send_raw(self, data: bytes) -> list[str]:
        self.sock.sendall(data)
        return self.reply()

    def send(self, line: str) -> list[str]:
        return self.send_raw(line.encode("utf-8") + b"\r\n")

    def starttls(self) -> None:
        [ready] = self.send("STARTTLS")
        assert ready.startswith("220 "), ready
        self.sock = insecure_tls().wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> RawSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
