"""Worker processes for the inbound path's CPU-heavy file work.

Where it sits: the `store`, `to-pdf` and `deliver` steps (handlers/inbound_*.py) hand
their file work here: the move into the message center, the PDF (img2pdf) and the
DKIM-signed fax mails (bridge.mime, bridge.dkim, the outbox's MailStore). That work is
mostly pure Python; in the server's own process it would hold the GIL that the event
loop and the database threads need, and one core would do everything.

`WorkPool` keeps `inbound.processes` worker processes (forkserver: the threaded server
is never forked; the fork server has the steps' modules imported already). Each worker
does one call at a time over its own pipe, which the event loop itself watches
(`add_reader`): no helper thread sits between the loop and the workers. (The first
version used concurrent.futures.ProcessPoolExecutor; its management and feeder threads
cost four thread hand-offs per call in the server's process, and with three calls per
fax those hand-offs, fighting the event loop for the GIL, were what bench/inbound
measured.) `inbound.processes = 0` runs the work in threads of the server instead.

A worker gets the settings and the mail store (with its signing keys) once, when it
starts; each call names a module-level function `fn(context, *args)`, pickled by name.
An exception in `fn` is raised again in the server with the worker's traceback. A
worker that dies is replaced and the call made once more on a fresh one; if that
fails too, the step fails and the fax's job is parked for `faxbridge jobs retry`.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing.connection
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bridge.outbox import MailStore
from bridge.settings import Settings
from renderers.worker import forkserver_context

log = logging.getLogger("bridge.inbound.workpool")

T = TypeVar("T")
# Seconds a worker gets to finish its call and exit at shutdown.
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class WorkContext:
    """What a worker's functions may use."""

    settings: Settings
    mails: MailStore


class WorkerDied(Exception):
    """The worker process ended in the middle of a call."""


class WorkFailed(Exception):
    """`fn` raised in the worker; the message carries the worker's traceback."""


class WorkPool:
    def __init__(self, context: WorkContext, *, processes: int, preload: Sequence[str] = ()) -> None:
        self.context = context
        self.processes = processes
        # The fork server imports the steps' modules once; each worker is then a fork.
        self._mp_context = forkserver_context(preload) if processes else None
        self._idle: asyncio.Queue[_Worker] | None = None
        self._workers: list[_Worker] = []
        self._starting: asyncio.Lock | None = None
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(context, *args)` in a worker process (or a thread when processes = 0)."""
        if not self.processes:
            return await asyncio.to_thread(fn, self.context, *args)
        if self._closed:
            raise WorkerDied("the worker pool is closed")
        idle = await self._started()
        for attempt in (1, 2):
            worker = await idle.get()
            try:
                return await worker.call(fn, args)
            except WorkerDied:
                log.warning("an inbound worker process died during %s; %s", fn.__name__,
                            "trying again on a new one" if attempt == 1 else "giving up")
                worker = await self._replace(worker)
                if attempt == 2:
                    raise
            except asyncio.CancelledError:
                # Its answer would reach the next caller: this worker is not used again.
                worker.stop(0)
                asyncio.get_running_loop().create_task(self._replace_into(idle, worker))
                raise
            finally:
                if worker.process.is_alive():
                    idle.put_nowait(worker)
        raise AssertionError("unreachable")

    async def _replace_into(self, idle: asyncio.Queue[_Worker], dead: _Worker) -> None:
        if not self._closed:  # not while the server shuts down
            idle.put_nowait(await self._replace(dead))

    async def warm(self) -> None:
        """Start the workers now rather than with the first call (bench/inbound measures
        a server that has received faxes before)."""
        if self.processes:
            await self._started()

    async def _started(self) -> asyncio.Queue[_Worker]:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._idle is None:
                idle: asyncio.Queue[_Worker] = asyncio.Queue()
                for _ in range(self.processes):
                    worker = await asyncio.to_thread(self._spawn)
                    self._workers.append(worker)
                    idle.put_nowait(worker)
                self._idle = idle
        return self._idle

    async def _replace(self, dead: _Worker) -> _Worker:
        await asyncio.to_thread(dead.stop, 0)
        worker = await asyncio.to_thread(self._spawn)
        self._workers[self._workers.index(dead)] = worker
        return worker

    def _spawn(self) -> _Worker:
        assert self._mp_context is not None
        parent_end, child_end = self._mp_context.Pipe(duplex=True)
        process = self._mp_context.Process(
            target=_serve, args=(child_end, self.context), name="faxbridge-inbound", daemon=True
        )
        process.start()
        child_end.close()
        return _Worker(process, parent_end)

    def close(self) -> None:
        """Stop the workers (blocking: at shutdown, from a thread)."""
        self._closed = True
        for worker in self._workers:
            worker.stop(STOP_SECONDS)
        self._workers = []
        self._idle = None


class _Worker:
    """One worker process and the server's end of its pipe, read by the event loop."""

    def __init__(self, process: multiprocessing.process.BaseProcess, connection: multiprocessing.connection.Connection) -> None:
        self.process = process
        self.connection = connection

    async def call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[bool, Any]] = loop.create_future()

        def readable() -> None:
            try:
                # The worker sends its answer in one write: when the pipe is readable
                # the answer is there (or the worker is gone: EOFError).
                outcome = self.connection.recv()
            except (EOFError, OSError) as error:
                if not answer.done():
                    answer.set_exception(WorkerDied(str(error) or "end of pipe"))
                return
            if not answer.done():
                answer.set_result(outcome)

        fd = self.connection.fileno()
        loop.add_reader(fd, readable)
        try:
            try:
                self.connection.send((fn, args))
            except (BrokenPipeError, OSError) as error:
                raise WorkerDied(str(error)) from error
            ok, value = await answer
        finally:
            loop.remove_reader(fd)
        if not ok:
            raise WorkFailed(value)
        return value

    def stop(self, grace: float) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


def _serve(connection: multiprocessing.connection.Connection, context: WorkContext) -> None:
    """A worker's life: calls in, answers out, until told to stop or the server is gone."""
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        fn, args = request
        try:
            outcome: tuple[bool, Any] = (True, fn(context, *args))
        except BaseException:  # noqa: BLE001 - every failure goes back to the server, with its traceback
            outcome = (False, traceback.format_exc())
        connection.send(outcome)
