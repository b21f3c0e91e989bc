"""[accounts]: defaults for new customer accounts.

Where it sits: read where accounts are made (bridge.accounts.senders); part of
bridge.settings.Settings.
"""

from __future__ import annotations

from typing import Literal

from bridge.core.settings import Section as _Section


class AccountSettings(_Section):
    default_plan: Literal["free", "plus", "pro", "broadcast"]
