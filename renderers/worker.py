"""Process isolation for rendering: every document is parsed in a worker process.

pdfium, Pillow, WeasyPrint and LibreOffice all parse input a stranger wrote. Each
document is rendered in a worker process with a wall-clock limit and an
address-space limit (RLIMIT_AS), so a hostile or simply huge file costs one
refused document with a clear reason, never the calling server.

Workers are kept warm and reused: starting a process costs 20-80 ms (much more
when the server's ``__main__`` has to be re-imported, see below), which is more
than rendering a one-page scan. A worker renders one document at a time; it is
killed and replaced when a document runs out of time, and retired (never reused)
after anything but a clean result, when it has grown large, or after
``_MAX_JOBS`` documents, so that whatever one hostile file did to it never meets
the next document for long and a leak cannot build up.

Workers come from multiprocessing's 'forkserver': a clean interpreter, started
once, that has already imported the renderers, forks each worker. That avoids both
forking the (threaded, asyncio) server itself and paying a full interpreter start
with WeasyPrint's imports per worker. (Each forked worker still re-runs the
parent's ``__main__`` module once, as multiprocessing's spawn preparation does;
reusing workers pays that once per worker instead of once per document.)
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from renderers.model import DocumentRefused

log = logging.getLogger("renderers.worker")

T = TypeVar("T")
# Modules the fork server imports once, so that each worker it forks has them already.
_preload = ["renderers.jobs"]
# A worker renders at most this many documents before it is replaced.
_MAX_JOBS = 50
# A worker whose peak resident size passed this after a document is replaced:
# one large scan should not leave every later document running in a bloated process.
_RETIRE_RSS_BYTES = 400 * 1024 * 1024
# Idle workers kept for the next document; more are started when calls overlap.
_MAX_IDLE = max(2, os.cpu_count() or 2)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: multiprocessing.connection.Connection
    jobs: int = 0

    def stop(self) -> None:
        self.connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


_lock = threading.Lock()
_idle: list[_Worker] = []


def _forget_workers_after_fork() -> None:
    # A forked copy of this process does not own the parent's workers.
    global _lock
    _lock = threading.Lock()
    _idle.clear()


os.register_at_fork(after_in_child=_forget_workers_after_fork)


def forkserver_context(preload: Sequence[str] = ()) -> multiprocessing.context.ForkServerContext:
    """The 'forkserver' context shared by every worker pool of the process (the
    renderers' and bridge.inbound.workpool's); `preload` adds modules for the fork
    server to import. Only what is asked before the fork server starts counts, so pools
    ask when they are made, not when they first fork."""
    for module in preload:
        if module not in _preload:
            _preload.append(module)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_preload))
    return context


def _start_worker() -> _Worker:
    context = forkserver_context()
    parent_end, child_end = context.Pipe(duplex=True)
    process = context.Process(target=_serve, args=(child_end,), name="faxbridge-render", daemon=True)
    process.start()
    child_end.close()
    return _Worker(process, parent_end)


def _take_worker() -> _Worker:
    with _lock:
        while _idle:
            worker = _idle.pop()
            if worker.process.is_alive():
                return worker
            worker.stop()
    return _start_worker()


def _give_back(worker: _Worker, retire: bool) -> None:
    worker.jobs += 1
    if not retire and worker.jobs < _MAX_JOBS:
        with _lock:
            if len(_idle) < _MAX_IDLE:
                _idle.append(worker)
                return
    worker.stop()


def shutdown_workers() -> None:
    """Stop every idle worker (tests, and a server that is shutting down)."""
    with _lock:
        workers = list(_idle)
        _idle.clear()
    for worker in workers:
        worker.stop()


def run_isolated(function: Callable[[Any], T], argument: Any, *, label: str, timeout: float,
                 memory_bytes: int) -> T:
    """Call ``function(argument)`` in a worker process and return its result.

    ``function`` must be a module-level function (it is pickled by name). Raises
    ``DocumentRefused`` naming ``label`` when the function refuses the document, runs
    out of time or memory, crashes, or raises anything unexpected (logged in full).
    """
    job = (function, argument, memory_bytes)
    worker = _take_worker()
    try:
        try:
            worker.connection.send(job)
        except (OSError, EOFError):
            # The idle worker went away between jobs (it was never given this
            # document): start a fresh one rather than blame the document.
            worker.stop()
            worker = _start_worker()
            worker.connection.send(job)
        answered = worker.connection.poll(timeout)
        outcome: tuple[str, Any, bool] | None = None
        if answered:
            try:
                outcome = worker.connection.recv()
            except (EOFError, OSError):
                outcome = None  # the worker died before answering
    except BaseException:
        # Whatever interrupted us (a job that cannot be pickled, the caller being
        # cancelled), the worker may be mid-job: it is never reused.
        worker.stop()
        raise
    if not answered:
        log.warning("render of %r exceeded %.0f s; killing worker %s", label, timeout, worker.process.pid)
        worker.stop()
        raise DocumentRefused(label, (
            f"Rendering it took longer than {timeout:.0f} seconds, so it was stopped. "
            "Please send a simpler or smaller version, for example as PDF."))
    if outcome is None:
        worker.stop()
        log.warning("render worker for %r died with exit code %s", label, worker.process.exitcode)
        raise DocumentRefused(label, (
            "It needs more memory to render than one fax document may use, or it made the "
            "renderer fail. Please send a simpler or smaller version, for example as PDF."))
    status, value, grown = outcome
    # Only a clean result leaves a worker fit for the next document.
    _give_back(worker, retire=status != "ok" or grown)
    if status == "ok":
        return value
    if status == "refused":
        raise DocumentRefused(label, value)
    if status == "memory":
        raise DocumentRefused(label, (
            "It needs more memory to render than one fax document may use. "
            "Please send a simpler or smaller version, for example as PDF."))
    log.error("render of %r failed unexpectedly:\n%s", label, value)
    raise DocumentRefused(label, (
        "It could not be rendered: the file seems to be damaged or uses features the "
        "fax renderer does not support. Please send it as PDF."))


def _serve(connection: multiprocessing.connection.Connection) -> None:
    """A worker's life: one job at a time until the parent closes the pipe."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    while True:
        try:
            function, argument, memory_bytes = connection.recv()
        except (EOFError, OSError):
            return
        # Soft limit only, set per job: the code that runs here is ours, and
        # LibreOffice (a child of this worker) is given its own, larger limit by
        # renderers.office.
        if hard != resource.RLIM_INFINITY:
            memory_bytes = min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))
        try:
            result: tuple[str, Any] = ("ok", function(argument))
        except DocumentRefused as refusal:
            result = ("refused", refusal.reason)
        except MemoryError:
            result = ("memory", "")
        except Exception:  # noqa: BLE001 - reported to the parent, which logs it and refuses the document
            result = ("error", traceback.format_exc())
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 > _RETIRE_RSS_BYTES
        try:
            connection.send((*result, grown))
        except MemoryError:
            connection.send(("memory", "", True))
        except (BrokenPipeError, ConnectionResetError):
            return  # the parent is gone (stopped, or killed): nobody to answer
        if result[0] != "ok":
            return  # the parent retires this worker anyway
