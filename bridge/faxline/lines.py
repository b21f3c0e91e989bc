"""The fax lines faxbridge knows, by the name `faxline.line` gives in config.

Where it sits: the composition root (bridge.app) builds the one line of the app from
this table and hands it to the outbound flow (FAX_LINE); received faxes go to whatever
provides FAX_RECEIVER (the inbound flow). A new line (SIP/T.38, a HylaFAX client) is one
module implementing bridge.faxline.base.FaxLine and one entry here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from bridge.faxline.base import FaxLine
from bridge.faxline.virtual import VirtualLine

if TYPE_CHECKING:
    from bridge.faxline.settings import FaxLineSettings

# Is this number one of the service's own? (A line that routes calls between its own
# numbers, as the virtual network does, asks it.)
ServiceNumberLookup = Callable[[str], Awaitable[bool]]
LineFactory = Callable[["FaxLineSettings", ServiceNumberLookup], FaxLine]


def _virtual(settings: FaxLineSettings, is_service_number: ServiceNumberLookup) -> FaxLine:
    return VirtualLine(settings.virtual, is_service_number)


LINES: Mapping[str, LineFactory] = {
    "virtual": _virtual,
}


def build_line(settings: FaxLineSettings, is_service_number: ServiceNumberLookup) -> FaxLine:
    """The line named by `faxline.line` (the settings model admits only known names)."""
    return LINES[settings.line](settings, is_service_number)


def channels(settings: FaxLineSettings) -> int:
    """How many calls the configured line carries at once."""
    return settings.virtual.channels if settings.line == "virtual" else 1
