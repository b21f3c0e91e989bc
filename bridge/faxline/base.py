"""The fax line interface: what the transmit runner dials through, and how faxes arrive.

Where it sits: SMTP in -> intake -> transmit queue -> *fax line* -> result (bill, notify),
and fax line in -> inbound pipeline. A line is anything that can carry a T.30 fax call:
the built-in virtual network (`bridge.faxline.virtual`), and later a HylaFAX server
(client protocol) or a SIP/T.38 trunk. Runners only see `FaxLine`, `CallRequest`,
`CallResult` and `InboundFax`, so adding a line never touches them.

A line reports what happened on the wire; deciding what to do about it (retry, bill,
notify) is the runner's job (R-USE-2, R-USE-3).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from bridge.core.component import ServiceKey

# E.164: "+", a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
MAX_STATION_ID_LEN = 20  # T.30 TSI/CSI field


def is_e164(number: str) -> bool:
    return E164.fullmatch(number) is not None


class CallOutcome(StrEnum):
    """How a call ended."""

    COMPLETED = "completed"  # every page was sent and confirmed
    BUSY = "busy"
    NO_ANSWER = "no_answer"  # rang out; or something answered that was not a fax machine
    NOT_IN_SERVICE = "not_in_service"
    TRAINING_FAILED = "training_failed"  # a fax machine answered, the modems never trained
    DROPPED = "dropped"  # a fax machine answered; the call ended before the last page


# R-USE-3: an attempt is billable when the far end answered, completed or not.
ANSWERED_OUTCOMES = frozenset({CallOutcome.COMPLETED, CallOutcome.TRAINING_FAILED,
                               CallOutcome.DROPPED})


class LineError(Exception):
    """A line could not place or finish a call for a reason of its own, not the far end's."""


class LineClosed(LineError):
    """The line is shutting down (or was never started); the call did not happen or was
    cut by us. The job should be retried later; nothing about the far end is known."""


class FaxDocumentError(LineError):
    """The fax document itself cannot be sent (unreadable or not TIFF-F). Retrying will not
    help: the job should be parked for an operator."""


@dataclass(frozen=True)
class CallRequest:
    """One outbound call: dial `to_number` and send every page of `tiff_path`."""

    to_number: str  # E.164, "+15551234567"
    tiff_path: Path  # TIFF-F, as rendered for this job
    caller_number: str  # E.164 caller ID presented to the far end
    station_id: str  # T.30 TSI, at most 20 characters
    job_id: str  # for logs only

    def __post_init__(self) -> None:
        for label, number in (("to_number", self.to_number), ("caller_number", self.caller_number)):
            if not is_e164(number):
                raise ValueError(f"{label} must be E.164 (+15551234567), not {number!r}")
        if len(self.station_id) > MAX_STATION_ID_LEN or not self.station_id.isascii():
            raise ValueError(f"station_id must be at most {MAX_STATION_ID_LEN} ASCII characters")


@dataclass(frozen=True)
class CallResult:
    """What one call attempt did, as the line saw it."""

    outcome: CallOutcome
    pages_sent: int  # pages the far end confirmed
    line_seconds: float  # connected time (0 when nothing answered); R-USE-2 bills from it
    bit_rate: int  # modem speed of the last page, bits/s (0 if no page went)
    ecm: bool  # error correcting mode was in use
    remote_station_id: str  # the far machine's CSI, "" if unknown
    detail: str  # one plain sentence for the sender's receipt: "The line was busy."

    @property
    def answered(self) -> bool:
        """The far end answered and a transmission took place (R-USE-3: billable)."""
        return self.outcome in ANSWERED_OUTCOMES


@dataclass(frozen=True)
class InboundFax:
    """A fax received on one of the service's own numbers, stored and ready to route."""

    to_number: str  # the service number that was called (E.164)
    caller_number: str  # caller ID, E.164 ("" if withheld)
    remote_station_id: str  # the sending machine's TSI
    tiff_path: Path  # the received pages (TIFF-F); the inbound pipeline owns it now
    pages: int
    line_seconds: float  # R-USE-2 bills received pages from it too
    received_at: datetime  # timezone-aware, UTC


InboundHandler = Callable[[InboundFax], Awaitable[None]]

# The receiver of every fax the line takes on a service number (the inbound flow
# provides it); the composition root starts the line with it.
FAX_RECEIVER: ServiceKey[InboundHandler] = ServiceKey("receiver of inbound faxes")


@runtime_checkable
class FaxLine(Protocol):
    """A fax line (a set of channels) the service dials out on and receives faxes from.

    Lifecycle: `start` once, with the handler inbound faxes are given to; `place_call` any
    number of times, concurrently (the line queues calls beyond its channels); `close`
    once. After `close`, and before `start`, `place_call` raises LineClosed.
    """

    async def start(self, on_inbound: InboundHandler) -> None:
        """Begin answering the service's numbers; each received fax is awaited through
        `on_inbound` after it is stored."""
        ...

    async def place_call(self, request: CallRequest) -> CallResult:
        """Dial and send. Far-end failures (busy, no answer, dropped, ...) are results,
        not exceptions; raises LineClosed or FaxDocumentError for our own failures."""
        ...

    async def close(self) -> None:
        """Stop taking calls, hang up calls in progress (their `place_call` raises
        LineClosed) and release the channels."""
        ...


# The app's fax line, built by the composition root from `faxline.line`
# (bridge.faxline.lines); the call runner dials through it.
FAX_LINE: ServiceKey[FaxLine] = ServiceKey("fax line")
