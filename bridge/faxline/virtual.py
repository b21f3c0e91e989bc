"""The virtual line: a built-in telephone network where every call is a real T.30 fax call.

Where it sits: transmit queue -> fax line (*this*, the embedded default) -> result; and
for calls to the service's own numbers, fax line in -> inbound pipeline. It implements
`bridge.faxline.base.FaxLine`, so runners cannot tell it from a HylaFAX or SIP/T.38 line.

Dial plan, checked in this order (all from `VirtualLineSettings`):
  busy_numbers            -> BUSY, at once (nothing answers)
  no_answer_numbers       -> NO_ANSWER, after ringing
  fail_training_numbers   -> a fax machine answers on a line too noisy to train
  hangup_after_page       -> a fax machine answers and hangs up after N pages
  the service's numbers   -> answered by faxbridge itself: stored in inbound_dir and
                             handed to `on_inbound` (caller ID, TSI)
  remote_machines         -> a remote fax machine answers and keeps the pages in remote_dir
  anything else           -> NOT_IN_SERVICE
Faulty test numbers that answer also keep what they received, like remote machines.

Each call that answers is two spandsp fax states in a worker thread (see
`bridge.faxline.spandsp`); at most `channels` calls hold a line at once, the rest wait.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bridge.faxline import spandsp
from bridge.faxline.base import (
    MAX_STATION_ID_LEN,
    CallOutcome,
    CallRequest,
    CallResult,
    FaxDocumentError,
    FaxLine,
    InboundFax,
    InboundHandler,
    LineClosed,
    is_e164,
)

log = logging.getLogger("bridge.faxline.virtual")

# Unpaced, spandsp runs calls ~1000x faster than a telephone line; simulated waits
# (ringing, busy tone) are scaled the same way so tests and benches stay fast.
_UNPACED_SPEEDUP = 1000.0
# How long a caller listens to a busy tone before hanging up, in realtime mode.
_BUSY_TONE_SECONDS = 4.0

_PREFIX = re.compile(r"\+[0-9]{1,15}")


def _e164(number: str) -> str:
    if not is_e164(number):
        raise ValueError(f"not an E.164 number (+15551234567): {number!r}")
    return number


def _prefix_or_range(entry: str) -> str:
    if "-" in entry:
        low, _, high = entry.partition("-")
        if not (is_e164(low) and is_e164(high) and len(low) == len(high) and low <= high):
            raise ValueError(f"a range is two E.164 numbers of equal length, low-high: {entry!r}")
    elif not _PREFIX.fullmatch(entry):
        raise ValueError(f"a prefix is '+' and digits: {entry!r}")
    return entry


E164Number = Annotated[str, AfterValidator(_e164)]
NumberPattern = Annotated[str, AfterValidator(_prefix_or_range)]
CompressionName = Literal["t4-1d", "t4-2d", "t6"]
_COMPRESSIONS: dict[str, spandsp.Compression] = {
    "t4-1d": spandsp.Compression.T4_1D,
    "t4-2d": spandsp.Compression.T4_2D,
    "t6": spandsp.Compression.T6,
}


class VirtualLineSettings(BaseModel):
    """`[faxline.virtual]`: the built-in virtual telephone network and its dial plan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channels: int = Field(4, ge=1, le=256, description=(
        "Calls carried at once (each is a worker thread); further calls wait for a channel."))
    realtime: bool = Field(False, description=(
        "Pace calls at line speed, a 3-page fax taking about a minute, for demos. "
        "False runs calls as fast as the CPU allows (~1000x)."))
    remote_machines: tuple[NumberPattern, ...] = Field(("+1555010",), description=(
        "Numbers answered by virtual remote fax machines: E.164 prefixes ('+1555010') or "
        "inclusive ranges of equal length ('+15550100000-+15550100099')."))
    remote_dir: Path = Field(Path("var/faxline/remote"), description=(
        "Where remote machines keep what they received, one folder per number, so a "
        "user can open it."))
    inbound_dir: Path = Field(Path("var/faxline/inbound"), description=(
        "Where faxes received on the service's own numbers are stored before they are "
        "handed to the inbound pipeline."))
    busy_numbers: tuple[E164Number, ...] = Field(("+15550200001",), description=(
        "Test numbers that are always busy."))
    no_answer_numbers: tuple[E164Number, ...] = Field(("+15550200002",), description=(
        "Test numbers that ring and never answer."))
    hangup_after_page: dict[E164Number, Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: {"+15550200003": 1}, description=(
            "Test numbers whose fax machine hangs up after receiving N pages: number = N."))
    fail_training_numbers: tuple[E164Number, ...] = Field(("+15550200004",), description=(
        "Test numbers whose fax machine answers on a line too noisy to train the modems."))
    station_id: str = Field("", max_length=MAX_STATION_ID_LEN, description=(
        "CSI the virtual machines answer with (at most 20 characters); empty: the "
        "dialled number, as most machines are set up."))
    ring_seconds: float = Field(45.0, ge=0, description=(
        "How long an unanswered number rings before the call is given up "
        "(divided by 1000 unless realtime)."))
    handover_retry_seconds: tuple[Annotated[float, Field(ge=0)], ...] = Field((0.5, 2.0, 5.0), description=(
        "Pauses before handing a received fax to the inbound pipeline again when it "
        "could not take it (a database busy a moment); after the last, the fax stays in "
        "inbound_dir for an operator."))
    remote_ecm: bool = Field(True, description=(
        "Remote machines and the service's own numbers offer error correction (ECM)."))
    remote_compressions: tuple[CompressionName, ...] = Field(
        ("t4-1d", "t4-2d", "t6"), min_length=1, description=(
            "Page codings remote machines accept: t4-1d (MH), t4-2d (MR), t6 (MMR, "
            "used only with ECM)."))


class _Route(Enum):
    BUSY = "busy"
    NO_ANSWER = "no answer"
    FAIL_TRAINING = "fails training"
    HANGUP = "hangs up"
    INBOUND = "service number"
    REMOTE = "remote machine"
    NOT_IN_SERVICE = "not in service"


@dataclass(frozen=True)
class _Answered:
    """What the worker thread hands back: the call's figures and where the pages are."""

    stats: spandsp.CallStats
    stored: Path | None  # None when no page arrived


class VirtualLine(FaxLine):
    """The embedded default `FaxLine`: a virtual network of fax machines (see module doc)."""

    def __init__(self, settings: VirtualLineSettings,
                 is_service_number: Callable[[str], Awaitable[bool]]) -> None:
        self.settings = settings
        self._is_service_number = is_service_number
        self._channels = asyncio.Semaphore(settings.channels)
        self._on_inbound: InboundHandler | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closing = False
        # Calls in progress: their cancel flags (set to hang up) and worker futures.
        self._in_flight: dict[threading.Event, concurrent.futures.Future[_Answered]] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, on_inbound: InboundHandler) -> None:
        spandsp.library()  # fail at start-up, not on the first call, if libspandsp2 is missing
        for folder in (self.settings.remote_dir, self.settings.inbound_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._on_inbound = on_inbound
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.settings.channels, thread_name_prefix="faxline-virtual")
        self._closing = False
        log.info("virtual line up: %d channels%s", self.settings.channels,
                 ", realtime" if self.settings.realtime else "")

    async def close(self) -> None:
        self._closing = True
        # Worker threads remove their own entries as they finish: work on a snapshot
        # (list() of a dict is taken without releasing the GIL).
        in_flight = list(self._in_flight.items())
        for cancel, _future in in_flight:
            cancel.set()
        pending = [asyncio.wrap_future(future) for _cancel, future in in_flight]
        if pending:
            log.info("hanging up %d call(s) in progress", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    # -- calls -------------------------------------------------------------------------

    async def place_call(self, request: CallRequest) -> CallResult:
        if self._executor is None or self._closing:
            raise LineClosed("the virtual line is not running")
        if not request.tiff_path.is_file():
            raise FaxDocumentError(f"no fax document at {request.tiff_path}")
        route = await self._route(request.to_number)
        log.info("job %s: dialling %s (%s)", request.job_id, request.to_number, route.value)
        async with self._channels:
            if self._closing:
                raise LineClosed("the virtual line is shutting down")
            if route is _Route.NOT_IN_SERVICE:
                return _unanswered(CallOutcome.NOT_IN_SERVICE, "The number is not in service.")
            if route is _Route.BUSY:
                await self._wait(_BUSY_TONE_SECONDS if self.settings.realtime else 0.0)
                return _unanswered(CallOutcome.BUSY, "The line was busy.")
            if route is _Route.NO_ANSWER:
                await self._wait(self.settings.ring_seconds)
                return _unanswered(CallOutcome.NO_ANSWER, "The number rang but nobody answered.")
            answered = await self._run(request, route)
        result = _result(answered.stats)
        log.info("job %s: %s, %d page(s), %.1f s of line time, %d bit/s%s (T.30: %s)",
                 request.job_id, result.outcome, result.pages_sent, result.line_seconds,
                 result.bit_rate, ", ECM" if result.ecm else "", answered.stats.completion_text)
        if route is _Route.INBOUND and answered.stored is not None:
            await self._deliver(request, answered)
        return result

    async def _route(self, number: str) -> _Route:
        plan = self.settings
        if number in plan.busy_numbers:
            return _Route.BUSY
        if number in plan.no_answer_numbers:
            return _Route.NO_ANSWER
        if number in plan.fail_training_numbers:
            return _Route.FAIL_TRAINING
        if number in plan.hangup_after_page:
            return _Route.HANGUP
        if await self._is_service_number(number):
            return _Route.INBOUND
        if any(_matches(pattern, number) for pattern in plan.remote_machines):
            return _Route.REMOTE
        return _Route.NOT_IN_SERVICE

    async def _wait(self, line_seconds: float) -> None:
        """Let simulated time pass (ringing, busy tone) without holding the event loop."""
        await asyncio.sleep(line_seconds if self.settings.realtime
                            else line_seconds / _UNPACED_SPEEDUP)

    async def _run(self, request: CallRequest, route: _Route) -> _Answered:
        """Run the T.30 call in a worker thread; hang it up if we are cancelled."""
        assert self._executor is not None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        if route is _Route.INBOUND:
            target = self.settings.inbound_dir / f"{stamp}-{_digits(request.to_number)}-{uuid.uuid4().hex[:8]}.tif"
        else:
            target = (self.settings.remote_dir / _digits(request.to_number)
                      / f"{stamp}-{_safe(request.job_id)}-{uuid.uuid4().hex[:8]}.tif")
        cancel = threading.Event()
        future = self._executor.submit(self._call_in_thread, request, route, target, cancel)
        self._in_flight[cancel] = future
        future.add_done_callback(lambda _done: self._in_flight.pop(cancel, None))
        try:
            answered = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.set()  # the worker hangs up within one 20 ms block
            raise
        if cancel.is_set():
            raise LineClosed(f"the call to {request.to_number} was cut by a shutdown")
        if answered.stats.completion in spandsp.DOCUMENT_ERRORS:
            raise FaxDocumentError(f"{request.tiff_path}: {answered.stats.completion_text}")
        return answered

    def _call_in_thread(self, request: CallRequest, route: _Route, target: Path,
                        cancel: threading.Event) -> _Answered:
        """Worker thread: the whole call, then keep or drop the received file."""
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name, so nobody opens a half-received fax.
        partial = target.with_name(target.name + ".part")
        plan = self.settings
        compressions = spandsp.Compression(0)
        for name in plan.remote_compressions:
            compressions |= _COMPRESSIONS[name]
        stats = spandsp.run_call(
            request.tiff_path, partial,
            caller_ident=request.station_id,
            answerer_ident=plan.station_id or request.to_number,
            ecm=plan.remote_ecm,
            answerer_compressions=compressions,
            hangup_after_pages=plan.hangup_after_page.get(request.to_number)
            if route is _Route.HANGUP else None,
            fail_training=route is _Route.FAIL_TRAINING,
            realtime=plan.realtime,
            cancel=cancel,
        )
        if stats.pages_received > 0 and partial.exists():
            partial.replace(target)
            return _Answered(stats, target)
        partial.unlink(missing_ok=True)
        return _Answered(stats, None)

    async def _deliver(self, request: CallRequest, answered: _Answered) -> None:
        """Hand a fax received on a service number to the inbound pipeline."""
        assert self._on_inbound is not None and answered.stored is not None
        stats = answered.stats
        inbound = InboundFax(
            to_number=request.to_number,
            caller_number=request.caller_number,
            remote_station_id=stats.answerer_saw_ident,
            tiff_path=answered.stored,
            pages=stats.pages_received,
            line_seconds=stats.line_seconds,
            received_at=datetime.now(UTC),
        )
        # The sender's fax went through, so the outbound call stays a success whatever
        # happens here. A pipeline that cannot take the fax leaves it where it was
        # (bridge.inbound.intake), so it is offered again after each pause; after the
        # last the file stays in inbound_dir for an operator to route by hand.
        pauses = self.settings.handover_retry_seconds
        for attempt in range(len(pauses) + 1):
            try:
                await self._on_inbound(inbound)
                return
            except Exception:
                if attempt == len(pauses):
                    log.exception("job %s: inbound fax %s to %s was received but could not be handed on "
                                  "(%d attempts); it stays there for an operator", request.job_id, answered.stored,
                                  request.to_number, attempt + 1)
                    return
                log.warning("job %s: inbound fax %s could not be handed on; trying again in %.1f s",
                            request.job_id, answered.stored, pauses[attempt], exc_info=True)
                await asyncio.sleep(pauses[attempt])


def _matches(pattern: str, number: str) -> bool:
    if "-" in pattern:
        low, _, high = pattern.partition("-")
        return len(number) == len(low) and low <= number <= high
    return number.startswith(pattern)


def _digits(number: str) -> str:
    return number.lstrip("+")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64] or "call"


def _unanswered(outcome: CallOutcome, detail: str) -> CallResult:
    return CallResult(outcome=outcome, pages_sent=0, line_seconds=0.0, bit_rate=0, ecm=False,
                      remote_station_id="", detail=detail)


_TRAINING_FAILURES = frozenset({spandsp.Completion.CANNOT_TRAIN, spandsp.Completion.TX_BADDCS,
                                spandsp.Completion.TX_PHBDEAD})
_NOT_A_FAX = frozenset({spandsp.Completion.T0_EXPIRED, spandsp.Completion.T1_EXPIRED,
                        spandsp.Completion.CEDTONE})


def _result(stats: spandsp.CallStats) -> CallResult:
    """Translate the T.30 completion into an outcome and a sentence for the receipt."""
    sent, total = stats.pages_sent, stats.pages_in_file
    pages = f"{sent} page{'s' if sent != 1 else ''}"
    if stats.completion == spandsp.Completion.OK:
        outcome, detail = CallOutcome.COMPLETED, f"The fax was delivered: {pages}."
    elif sent == 0 and stats.completion in _TRAINING_FAILURES:
        outcome, detail = (CallOutcome.TRAINING_FAILED, "A fax machine answered, but the "
                           "connection was too poor to send any pages.")
    elif sent == 0 and stats.completion in _NOT_A_FAX:
        outcome, detail = (CallOutcome.NO_ANSWER, "The call was answered, but not by a "
                           "fax machine.")
    elif sent == 0:
        outcome, detail = CallOutcome.DROPPED, "The call was cut off before any page was sent."
    else:
        of_total = f" of {total}" if total > 0 else ""
        outcome, detail = CallOutcome.DROPPED, f"The call was cut off after {sent}{of_total} pages."
    answered = outcome is not CallOutcome.NO_ANSWER
    return CallResult(
        outcome=outcome,
        pages_sent=sent,
        line_seconds=stats.line_seconds,
        bit_rate=stats.bit_rate,
        ecm=stats.ecm if sent else False,
        remote_station_id=stats.caller_saw_ident if answered else "",
        detail=detail,
    )
