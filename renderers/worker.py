"""Process isolation for rendering: every document is parsed in a worker process.

pdfium, Pillow, WeasyPrint and LibreOffice all parse input a stranger wrote. Each
document is rendered by a fresh child process with a wall-clock limit and an
address-space limit (RLIMIT_AS), so a hostile or simply huge file costs one
refused document with a clear reason, never the calling server.

Children come from multiprocessing's 'forkserver': a clean interpreter, started
once, that has already imported the renderers, forks each child. That avoids both
forking the (threaded, asyncio) server itself and paying a full interpreter start
with WeasyPrint's imports per document.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import resource
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from renderers.model import DocumentRefused

log = logging.getLogger("renderers.worker")

T = TypeVar("T")
_PRELOAD = ["renderers.jobs"]


def run_isolated(function: Callable[[Any], T], argument: Any, *, label: str, timeout: float,
                 memory_bytes: int) -> T:
    """Call ``function(argument)`` in a worker process and return its result.

    ``function`` must be a module-level function (it is pickled by name). Raises
    ``DocumentRefused`` naming ``label`` when the function refuses the document, runs
    out of time or memory, crashes, or raises anything unexpected (logged in full).
    """
    context = multiprocessing.get_context("forkserver")
    # Only takes effect before the fork server starts; harmless to repeat.
    context.set_forkserver_preload(_PRELOAD)
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, function, argument, memory_bytes),
                              name="faxbridge-render", daemon=True)
    process.start()
    sender.close()
    outcome: tuple[str, Any] | None = None
    try:
        if receiver.poll(timeout):
            try:
                outcome = receiver.recv()
            except (EOFError, OSError):
                outcome = None  # the child died before answering
        else:
            log.warning("render of %r exceeded %.0f s; killing worker %s", label, timeout, process.pid)
            process.kill()
            process.join()
            raise DocumentRefused(label, (
                f"Rendering it took longer than {timeout:.0f} seconds, so it was stopped. "
                "Please send a simpler or smaller version, for example as PDF."))
    finally:
        receiver.close()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
    if outcome is None:
        log.warning("render worker for %r died with exit code %s", label, process.exitcode)
        raise DocumentRefused(label, (
            "It needs more memory to render than one fax document may use, or it made the "
            "renderer fail. Please send a simpler or smaller version, for example as PDF."))
    status, value = outcome
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


def _child(sender: multiprocessing.connection.Connection, function: Callable[[Any], Any],
           argument: Any, memory_bytes: int) -> None:
    # Soft limit only: the code that runs here is ours, and LibreOffice (a child of
    # this child) is given its own, larger limit by renderers.office.
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY:
        memory_bytes = min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        result: tuple[str, Any] = ("ok", function(argument))
    except DocumentRefused as refusal:
        result = ("refused", refusal.reason)
    except MemoryError:
        result = ("memory", "")
    except Exception:  # reported to the parent, which logs it and refuses the document
        result = ("error", traceback.format_exc())
    try:
        sender.send(result)
    except MemoryError:
        sender.send(("memory", ""))
    finally:
        sender.close()
