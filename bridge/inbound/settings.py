"""[inbound]: what happens to a fax received on one of the service's numbers.

Where it sits: read by the inbound component and its steps; part of
bridge.settings.Settings (each key documented in config/defaults.toml).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bridge.core.settings import Section as _Section


class InboundSettings(_Section):
    """[inbound]: what happens to a fax received on one of the service's numbers."""

    pipeline: tuple[str, ...] = Field(("store", "to-pdf", "decorate", "deliver"), min_length=1)
    workers: int = Field(2, ge=1, le=64)
    batch: int = Field(16, ge=1, le=256)
    processes: int = Field(2, ge=0, le=64)
    # A fax for a number with no active holder (unassigned, suspended, or its account
    # suspended or closed) is answered by the line, then "discard"ed or "hold"-ed in
    # spool/inbound/held/ for an operator; never delivered to a former holder.
    unrouted: Literal["discard", "hold"] = "discard"
    # Days a held fax waits for an operator before it is purged (R-STORE-2).
    held_days: int = Field(30, ge=1, le=3650)
    # Where stored faxes live (the message center, R-STORE-1); "" = <var_dir>/faxes.
    store_dir: str = ""
    # R-STORE-1: days a received fax is kept, by plan; plans not named keep their
    # faxes for the life of the account.
    retention_days: dict[str, int] = Field(default_factory=lambda: {"free": 30})
    purge_interval_seconds: float = Field(3600, gt=0)
    # R-ACCT-5 (iii) and (ii): plans whose accounts are closed when the customer opts
    # out of promotional mail, and when no delivery address works any more.
    close_on_opt_out: tuple[str, ...] = ("free",)
    close_on_bounces: tuple[str, ...] = ("free",)
    # R-ACCT-5 (i): plans whose accounts are closed after this many days without a
    # received fax (bridge/inbound/idle.py); plans not named are never closed for it.
    close_when_idle_days: dict[str, int] = Field(default_factory=lambda: {"free": 30})
    # Hard bounces (DSN status 5.x.x) after which a delivery address counts as failing.
    hard_bounces_to_fail: int = Field(1, ge=1, le=100)
    # Folder of the footer templates (promo.txt, promo.html); "" = the built-in
    # config/templates of the source tree.
    templates_dir: str = ""




