"""Worker processes for the inbound path's CPU-heavy file work.

Where it sits: the `to-pdf` and `deliver` steps (handlers/inbound_*.py) hand their
file work here: the PDF (img2pdf) and the DKIM-signed fax mails (bridge.mime,
bridge.dkim, the outbox's MailStore). That work is pure Python for the most part; in
the server's own process it holds the GIL that the event loop and the database
threads need, and one core does everything (bench/inbound). A small
`concurrent.futures.ProcessPoolExecutor` (forkserver: the threaded server is never
forked) runs it on the other cores. `inbound.processes = 0` runs it in threads of the
server instead.

A worker gets the settings and the mail store (with its signing keys) once, when it
starts; each call names a module-level function `fn(context, *args)`, which is
pickled by name. A worker that dies breaks the pool (BrokenProcessPool): the pool is
made again and the call tried once more; if that fails too, the step fails and the
fax's job is parked for `faxbridge jobs retry`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from bridge.outbox import MailStore
from bridge.settings import Settings
from renderers.worker import forkserver_context

log = logging.getLogger("bridge.inbound.workpool")

T = TypeVar("T")


@dataclass(frozen=True)
class WorkContext:
    """What a worker's functions may use."""

    settings: Settings
    mails: MailStore


class WorkPool:
    def __init__(self, context: WorkContext, *, processes: int, preload: Sequence[str] = ()) -> None:
        self.context = context
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        # The fork server imports the steps' modules once; each worker is then a fork.
        self._mp_context = forkserver_context(preload) if processes else None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(context, *args)` in a worker process (or a thread when processes = 0)."""
        if not self.processes:
            return await asyncio.to_thread(fn, self.context, *args)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._started(), _call, fn, args)
        except BrokenProcessPool:
            log.warning("an inbound worker process died; starting new ones and trying again")
            self.close()
            return await loop.run_in_executor(self._started(), _call, fn, args)

    async def warm(self) -> None:
        """Start the workers now rather than with the first call (bench/inbound measures
        a server that has received faxes before)."""
        if self.processes:
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(self._started(), _call, _nothing, ()) for _ in range(self.processes)))

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=self._mp_context,
                initializer=_start_worker,
                initargs=(self.context,),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# In a worker process: set once by the pool's initializer.
_context: WorkContext | None = None


def _start_worker(context: WorkContext) -> None:
    global _context
    _context = context


def _nothing(_context: WorkContext) -> None:
    return None


def _call(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    assert _context is not None, "not a worker process of a WorkPool"
    return fn(_context, *args)
