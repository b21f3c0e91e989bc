"""Worker processes for the inbound path's CPU-heavy file work.

Where it sits: the `store`, `to-pdf` and `deliver` steps (handlers/inbound_*.py) hand
their file work here: the move into the message center, the PDF (img2pdf) and the
DKIM-signed fax mails (bridge.mail.mime, bridge.mail.dkim, the outbox's MailStore). That work is
mostly pure Python; in the server's own process it would hold the GIL that the event
loop and the database threads need, and one core would do everything.

`WorkPool` keeps `inbound.processes` worker processes (forkserver: the threaded server
is never forked; the fork server has the steps' modules imported already). Each worker
has its own pipe, which the event loop itself watches (`add_reader`): no helper thread
sits between the loop and the workers. (The first version used
concurrent.futures.ProcessPoolExecutor; its management and feeder threads cost four
thread hand-offs per call in the server's process, and with three calls per fax those
hand-offs, fighting the event loop for the GIL, were what bench/inbound measured.)
`inbound.processes = 0` runs the work in threads of the server instead.

Calls go in chunks: the calls made while the workers are busy (a batch's faxes all
reach the same step at once) wait in one list, and a worker that becomes free takes
its share of them (the list split over the pool's processes) in one message, runs them
one after the other and answers them in one message. A batch of 16 faxes then costs
a handful of round trips per step instead of 16, and each fax still gets its own
answer or exception.

A worker gets the settings and the mail store (with its signing keys) once, when it
starts; each call names a module-level function `fn(context, *args)`, pickled by name.
An exception in `fn` is raised again in the caller with the worker's traceback. If a
worker dies, its chunk goes to a fresh worker once more; if that fails too, those
calls fail and their faxes' jobs are parked for `faxbridge jobs retry`. A caller that
is cancelled simply gets no answer: the worker finishes the chunk and serves on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing.connection
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from bridge.mail.outbox import MailStore
from renderers.worker import forkserver_context

if TYPE_CHECKING:
    from bridge.settings import Settings

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


@dataclass
class _Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    answer: asyncio.Future[Any]
    attempts: int = 0


class WorkPool:
    # A chunk is at most this many calls, so that one worker's chunk stays short.
    MAX_CHUNK = 16

    def __init__(self, context: WorkContext, *, processes: int, preload: Sequence[str] = ()) -> None:
        self.context = context
        self.processes = processes
        # The fork server imports the steps' modules once; each worker is then a fork.
        self._mp_context = forkserver_context(preload) if processes else None
        self._idle: deque[_Worker] = deque()  # free workers, the longest free first
        self._workers: list[_Worker] = []
        self._pending: list[_Call] = []
        self._dispatching = False
        self._chunks: set[asyncio.Task[None]] = set()
        self._starting: asyncio.Lock | None = None
        self._started_workers = False
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(context, *args)` in a worker process (or a thread when processes = 0)."""
        if not self.processes:
            return await asyncio.to_thread(fn, self.context, *args)
        if self._closed:
            raise WorkerDied("the worker pool is closed")
        await self._started()
        call = _Call(fn, args, asyncio.get_running_loop().create_future())
        self._pending.append(call)
        if not self._dispatching:
            # Once the calls made at this moment have all arrived (the rest of the
            # batch's faxes, resumed by the same answer), not at the first of them.
            self._dispatching = True
            asyncio.get_running_loop().call_soon(self._dispatch)
        return cast(T, await call.answer)

    def _dispatch(self) -> None:
        self._dispatching = False
        self._pending = [call for call in self._pending if not call.answer.done()]  # cancelled callers
        while self._pending and self._idle and not self._closed:
            worker = self._idle.popleft()
            share = min(self.MAX_CHUNK, -(-len(self._pending) // self.processes))
            chunk, self._pending = self._pending[:share], self._pending[share:]
            task = asyncio.get_running_loop().create_task(self._run_chunk(worker, chunk), name="inbound-work")
            self._chunks.add(task)
            task.add_done_callback(self._chunks.discard)

    async def _run_chunk(self, worker: _Worker, chunk: list[_Call]) -> None:
        try:
            outcomes = await worker.call([(call.fn, call.args) for call in chunk])
        except WorkerDied as died:
            names = ", ".join(sorted({call.fn.__name__ for call in chunk}))
            again = [] if self._closed else [call for call in chunk if call.attempts == 0]
            log.warning("an inbound worker process died during %s; %s", names,
                        "trying again on a new one" if again else "giving up")
            for call in chunk:
                call.attempts += 1
                if call not in again and not call.answer.done():
                    call.answer.set_exception(died)
            self._pending[:0] = again
            await self._replace(worker)
        except Exception as error:  # noqa: BLE001 - every call of the chunk gets the error; none is left waiting
            # e.g. an argument that cannot be pickled: nothing was sent
            for call in chunk:
                if not call.answer.done():
                    call.answer.set_exception(error)
            self._idle.append(worker)
        else:
            self._idle.append(worker)
            for call, (ok, value) in zip(chunk, outcomes, strict=True):
                if call.answer.done():
                    continue  # its caller was cancelled
                if ok:
                    call.answer.set_result(value)
                else:
                    call.answer.set_exception(WorkFailed(value))
        self._dispatch()

    async def warm(self) -> None:
        """Start the workers now rather than with the first call (bench/inbound measures
        a server that has received faxes before)."""
        if self.processes:
            await self._started()

    async def _started(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if not self._started_workers:
                for _ in range(self.processes):
                    worker = await asyncio.to_thread(self._spawn)
                    self._workers.append(worker)
                    self._idle.append(worker)
                self._started_workers = True

    async def _replace(self, dead: _Worker) -> None:
        """A new worker in the place of one that died (none while the pool closes)."""
        await asyncio.to_thread(dead.stop, 0)
        if self._closed:
            return
        try:
            worker = await asyncio.to_thread(self._spawn)
        except Exception as error:  # handed to the calls that were waiting for it
            log.exception("cannot start an inbound worker process")
            if dead in self._workers:
                self._workers.remove(dead)
            if not self._workers:  # nobody left to take the waiting calls
                for call in self._pending:
                    if not call.answer.done():
                        call.answer.set_exception(WorkerDied(f"no worker process could be started: {error}"))
                self._pending = []
            return
        if self._closed or dead not in self._workers:  # the pool closed meanwhile
            await asyncio.to_thread(worker.stop, 0)
            return
        self._workers[self._workers.index(dead)] = worker
        self._idle.append(worker)

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
        """Stop the workers (blocking: at shutdown, from a thread). Calls still waiting
        for a worker fail with WorkerDied."""
        self._closed = True
        for worker in self._workers:
            worker.stop(STOP_SECONDS)
        self._workers = []
        self._idle.clear()
        waiting, self._pending = self._pending, []
        for call in waiting:
            loop = call.answer.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(_fail_closed, call.answer)


def _fail_closed(answer: asyncio.Future[Any]) -> None:
    if not answer.done():
        answer.set_exception(WorkerDied("the worker pool is closed"))


class _Worker:
    """One worker process and the server's end of its pipe, read by the event loop."""

    def __init__(
        self, process: multiprocessing.process.BaseProcess, connection: multiprocessing.connection.Connection
    ) -> None:
        self.process = process
        self.connection = connection

    async def call(self, requests: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[tuple[bool, Any]]:
        """Send a chunk of calls; their outcomes, (True, value) or (False, traceback)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[tuple[bool, Any]]] = loop.create_future()

        def readable() -> None:
            try:
                # The worker sends its answer in one write: when the pipe is readable
                # the answer is there (or the worker is gone: EOFError).
                outcomes = self.connection.recv()
            except (EOFError, OSError) as error:
                if not answer.done():
                    answer.set_exception(WorkerDied(str(error) or "end of pipe"))
                return
            if not answer.done():
                answer.set_result(outcomes)

        fd = self.connection.fileno()
        loop.add_reader(fd, readable)
        try:
            try:
                self.connection.send(requests)
            except (BrokenPipeError, OSError) as error:
                raise WorkerDied(str(error)) from error
            return await answer
        finally:
            loop.remove_reader(fd)

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
    """A worker's life: chunks of calls in, their answers out, until told to stop or
    the server is gone."""
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        outcomes: list[tuple[bool, Any]] = []
        for fn, args in request:
            try:
                outcomes.append((True, fn(context, *args)))
            except BaseException:  # noqa: BLE001 - every failure goes back to its caller, with its traceback
                outcomes.append((False, traceback.format_exc()))
        connection.send(outcomes)
