"""Fax lines: where the transmit queue's faxes leave the service and inbound faxes arrive.

Flow: SMTP in -> intake -> transmit queue -> *fax line* -> result; *fax line* in ->
inbound pipeline. `base` is the interface runners use; `virtual` is the embedded default
line (a virtual network of real T.30 calls, through `spandsp`). Other lines (HylaFAX,
SIP/T.38) implement the same `FaxLine` protocol.
"""

from bridge.faxline.base import (
    CallOutcome,
    CallRequest,
    CallResult,
    FaxDocumentError,
    FaxLine,
    InboundFax,
    InboundHandler,
    LineClosed,
    LineError,
)

__all__ = [
    "CallOutcome",
    "CallRequest",
    "CallResult",
    "FaxDocumentError",
    "FaxLine",
    "InboundFax",
    "InboundHandler",
    "LineClosed",
    "LineError",
]
