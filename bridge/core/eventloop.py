"""The event loop the server runs on: uvloop, asyncio's loop on libuv.

Where it sits: `faxbridge serve` (bridge.cli) runs the whole server (SMTP front door,
runners, fax line, web pages) through `run()`; bench/inbound measures it the same way.
Nothing else changes: the code is plain asyncio and the tests that run components in
the test process use asyncio's own loop, so both loops are exercised.

Why: the server's event loop hands work to threads (aiosqlite runs each SQLite
connection in one) and to worker processes over pipes, thousands of times a second
under load, and each hand-off is a callback, a future and a wake-up of the loop.
uvloop does that bookkeeping in C: bench/inbound measured 7-22% more received faxes
mailed per second, run side by side with asyncio's loop on the same machine.
`FAXBRIDGE_EVENT_LOOP=asyncio` runs the server on asyncio's own loop instead (to use
its debug mode, or to rule the loop out when chasing a fault).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

from bridge.core.settings import SettingsError

T = TypeVar("T")


LOOPS = ("uvloop", "asyncio")


def run(main: Coroutine[Any, Any, T], *, loop: str | None = None) -> T:
    """Run `main` to completion on a new event loop: `loop` (one of LOOPS), else the
    one FAXBRIDGE_EVENT_LOOP names, else uvloop."""
    choice = loop or os.environ.get("FAXBRIDGE_EVENT_LOOP") or "uvloop"
    if choice not in LOOPS:
        main.close()  # never started
        raise SettingsError(f"FAXBRIDGE_EVENT_LOOP={choice!r} is not an event loop faxbridge knows: "
                            f"use one of {', '.join(LOOPS)}")
    loop_factory = uvloop.new_event_loop if choice == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main)
