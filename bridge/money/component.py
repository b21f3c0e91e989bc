"""The money component: the billing cycle loop, and the money commands of `faxbridge`.

Where it sits: one line of the component table (bridge/components.py). It needs the
app's one Metering (bridge.money.meter.METERING), which the composition root builds and
also hands to the intake's meter step, the call runner and inbound delivery. At start,
card charges a crash left pending are reconciled before any fax is taken in; then one
loop runs the billing cycle every `money.billing_interval_seconds`, and makes a top-up
as soon as any transaction, of any component, writes one down (R-DEP-3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bridge.core.component import CommandGroups, Component, Provided
from bridge.core.pipeline import StepFactory
from bridge.money import cli
from bridge.money.billing import BillingCycle
from bridge.money.meter import METERING

if TYPE_CHECKING:
    from bridge.services import Services

log = logging.getLogger("bridge.money")


class MoneyComponent(Component):
    name = "money"
    sections = ("money",)
    needs = (METERING,)

    def __init__(self, services: Services, provided: Provided, steps: Mapping[str, StepFactory[Any, Any]]) -> None:
        self.services = services
        self.metering = provided.need(METERING)
        self.cycle = BillingCycle(services.settings, services.db, metering=self.metering)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @staticmethod
    def add_commands(groups: CommandGroups) -> None:
        cli.extend(groups.commands, dict(groups.groups))

    async def start(self) -> None:
        reconciled = await self.metering.payments.reconcile()
        if reconciled:
            log.warning("reconciled %d card charge(s) left pending by the last run", reconciled)
        self._task = asyncio.create_task(self._loop(), name="money-billing")

    async def stop(self) -> None:
        self._stopping.set()
        self.metering.card_work.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=self.services.settings.queue.shutdown_grace_seconds)

    async def _loop(self) -> None:
        interval = self.services.settings.money.billing_interval_seconds
        loop = asyncio.get_running_loop()
        next_cycle = loop.time() + interval
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.metering.card_work.wait(), timeout=max(0.0, next_cycle - loop.time()))
            if self._stopping.is_set():
                return
            try:
                if self.metering.card_work.is_set():
                    self.metering.card_work.clear()
                    await self.metering.payments.reconcile()  # top-ups written down just now
                if loop.time() >= next_cycle:
                    next_cycle = loop.time() + interval
                    report = await self.cycle.run_once()
                    log.info("billing cycle: %s", report)
            except Exception:
                # The next cycle retries: every step is idempotent by key.
                log.exception("billing cycle failed; trying again in %.0f s", interval)
