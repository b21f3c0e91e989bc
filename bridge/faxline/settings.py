"""[faxline]: which fax line the service dials and answers on.

Where it sits: read by the composition root (bridge.app), which builds the line named
here; part of bridge.settings.Settings.
"""

from __future__ import annotations

from typing import Literal

from bridge.core.settings import Section as _Section
from bridge.faxline.virtual import VirtualLineSettings


class FaxLineSettings(_Section):
    line: Literal["virtual"]
    virtual: VirtualLineSettings
