"""A do-nothing SMTP server: the baseline of the intake benchmark.

aiosmtpd (the library faxbridge's front door is built on) on its own asyncio loop,
answering 250 to every command and discarding every message. faxbridge's durable
intake is measured against it: same library, same protocol work, no storage at all.

    python null_aiosmtpd.py --port 2600      # SIGTERM or Ctrl-C stops it
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiosmtpd.smtp import SMTP, Envelope, Session


class AcceptAll:
    """An aiosmtpd handler that accepts every message and keeps nothing."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK"


async def serve(host: str, port: int) -> None:
    """Listen on host:port until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    # hostname is given so SMTP() does not resolve the FQDN once per connection.
    server = await loop.create_server(
        lambda: SMTP(AcceptAll(), hostname="null-aiosmtpd.localhost"), host, port
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
