"""Job, submission and mail ids.

Where it sits: under every flow; the durable intake, the outbox, the inbound intake
and the abuse poller name what they store with `new_id`.
"""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """A short, time-ordered, unguessable id: `F18c2f9a3b1e-5f0c2a7d` style."""
    return f"{prefix}{int(time.time() * 1000):x}-{secrets.token_hex(4)}"
