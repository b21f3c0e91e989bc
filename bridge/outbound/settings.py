"""[intake], [render] and [transmit]: the outbound flow from accepted mail to fax call.

Where it sits: read by the intake runner (bridge.outbound.pipeline), the render step
(handlers/outbound/render.py), the dial plan and the call runner
(bridge.outbound.transmit); part of bridge.settings.Settings.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from bridge.core.queue import QueueName
from bridge.core.settings import Section as _Section


class IntakeSettings(_Section):
    pipeline: tuple[str, ...] = Field(min_length=1)
    # Checked at start: a queue no runner reads would strand every fax.
    next_queue: QueueName
    duplicate_window_hours: float = Field(ge=0)

class RenderSettings(_Section):
    resolution: Literal["fine", "standard"]
    compression: Literal["g4", "g3-1d", "g3-2d"]
    max_pages: int = Field(ge=1, le=10_000)
    max_input_bytes: int = Field(gt=0)
    document_timeout_seconds: float = Field(gt=0)
    document_memory_bytes: int = Field(ge=64 * 1024 * 1024)
    cover_page: bool
    station_number: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    soffice_path: str

class TransmitSettings(_Section):
    max_attempts: int = Field(ge=1, le=20)
    busy_retry_seconds: float = Field(ge=0)
    no_answer_retry_seconds: float = Field(ge=0)
    dropped_retry_seconds: float = Field(ge=0)
    backoff_factor: float = Field(ge=1)
    station_id: str = Field(max_length=20, pattern=r"^[\x20-\x7e]*$")
    blocked_prefixes: tuple[str, ...]
    block_premium_rate: bool

    @field_validator("blocked_prefixes")
    @classmethod
    def _prefixes_are_e164(cls, prefixes: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in prefixes:
            if not re.fullmatch(r"\+[0-9]{1,15}", prefix):
                raise ValueError(f"{prefix!r} is not an E.164 prefix such as '+1900'")
        return prefixes
