"""The inbound component: received faxes become mail, and the pages about them.

Where it sits: one line of the component table (bridge/components.py), with the steps of
handlers/inbound/. It provides the receiver of the fax line's received faxes
(FAX_RECEIVER: the composition root starts the line with it) and needs the app's one
Metering (R-USE-1: received pages are charged in the delivery's batch commit). It brings:
  * the `inbound` runner and its pipeline (`inbound.pipeline`: store, to-pdf, decorate,
    deliver), with the worker processes its steps' file work runs in
    (bridge/inbound/workpool.py);
  * the service addresses `unsubscribe+TOKEN@` and `bounces+TOKEN@`;
  * pages on the HTTP listener: one-click unsubscribe (/u/TOKEN) and, when
    `http.message_center`, the message center (/messages);
  * closing idle Free accounts (R-ACCT-5 (i)) and the retention purge (R-STORE-1/2),
    every `inbound.purge_interval_seconds`.
Mail it sends is signed by the outbox the root built; this component signs nothing
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.core.component import CommandGroups, Component, Provided, ServiceAddress, ServiceKey, WebRoute
from bridge.core.pipeline import StepFactory, build_pipeline
from bridge.core.runner import Runner
from bridge.faxline.base import FAX_RECEIVER, InboundFax
from bridge.inbound import cli
from bridge.inbound.accounts import AccountViews, Bounces, OptOuts
from bridge.inbound.idle import IdleAccounts
from bridge.inbound.intake import InboundIntake
from bridge.inbound.message_center import MessageCenter
from bridge.inbound.messages import Footers
from bridge.inbound.pipeline import InboundContext, InboundMetering, InboundRunner, InboundStep
from bridge.inbound.retention import Retention
from bridge.inbound.service_mail import BounceMail, UnsubscribeMail
from bridge.inbound.unsubscribe_page import UnsubscribePage
from bridge.inbound.workpool import WorkContext, WorkPool
from bridge.money.meter import METERING

if TYPE_CHECKING:
    from bridge.services import Services

log = logging.getLogger("bridge.inbound")


class InboundComponent(Component):
    name = "inbound"
    sections = ("inbound",)
    needs = (METERING,)
    provides = (FAX_RECEIVER,)
    steps_base = InboundStep
    pipeline_setting = "inbound.pipeline"

    def __init__(self, services: Services, provided: Provided, steps: Mapping[str, StepFactory[Any, Any]]) -> None:
        s = services.settings
        self.services = services
        self.store_dir = Path(s.inbound.store_dir) if s.inbound.store_dir else s.paths.var_dir / "faxes"
        self.optouts = OptOuts(s, services.outbox)
        self.bounces = Bounces(s, services.outbox)
        self.intake = InboundIntake(services)
        self.metering: InboundMetering = provided.need(METERING)  # the app's one Metering
        self.work = WorkPool(WorkContext(s, services.outbox.mails), processes=s.inbound.processes,
                             preload=sorted({factory.__module__ for factory in steps.values()}))
        accounts = AccountViews(services.db)
        context = InboundContext(services, Footers(s), self.store_dir, self.metering, self.work, accounts)
        self.runner = InboundRunner(
            services.queue,
            build_pipeline(self.pipeline_setting, s.inbound.pipeline, steps, context),
            accounts,
            workers=s.inbound.workers,
            batch_size=s.inbound.batch,
            poll_seconds=s.queue.poll_seconds,
        )
        self.unsubscribe_page = UnsubscribePage(services.db, self.optouts, service_name=s.service.name)
        self.message_center = (
            MessageCenter(s.http, services.db, service_name=s.service.name) if s.http.message_center else None
        )
        self.retention = Retention(s.inbound, services.db)
        self.idle = IdleAccounts(s, services.db, services.outbox)
        self._purger: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # --- what the app asks of a component ------------------------------------------------
    @staticmethod
    def add_commands(groups: CommandGroups) -> None:
        cli.extend(groups.commands, dict(groups.groups))

    def provided(self) -> Mapping[ServiceKey[Any], Any]:
        return {FAX_RECEIVER: self.accept_inbound_fax}

    def runners(self) -> Sequence[Runner]:
        return (self.runner,)

    def service_addresses(self) -> Sequence[ServiceAddress]:
        return (
            ServiceAddress("unsubscribe", True, UnsubscribeMail(self.services.db, self.optouts)),
            ServiceAddress("bounces", True, BounceMail(self.services.db, self.bounces)),
        )

    def web_routes(self) -> Sequence[WebRoute]:
        routes = self.unsubscribe_page.routes()
        if self.message_center is not None:
            routes += self.message_center.routes()
        return routes

    async def start(self) -> None:
        await asyncio.to_thread(self.store_dir.mkdir, parents=True, exist_ok=True)
        # The worker processes start with the first received fax (WorkPool), not here:
        # a server that receives none never pays for them.
        self._stopping.clear()
        self._purger = asyncio.create_task(self._purge_loop(), name="inbound-retention")

    async def stop(self) -> None:
        self._stopping.set()
        if self._purger is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await asyncio.to_thread(self.work.close)

    # --- the fax line's receiver -----------------------------------------------------------
    async def accept_inbound_fax(self, fax: InboundFax) -> None:
        """Take a fax the line received on a service number (FAX_RECEIVER)."""
        await self.intake.accept(fax)

    async def _purge_loop(self) -> None:
        interval = self.services.settings.inbound.purge_interval_seconds
        while not self._stopping.is_set():
            try:
                await self.idle.close_once()  # R-ACCT-5 (i); the purge then takes their faxes
                await self.retention.purge_once()
            except Exception:
                log.exception("closing idle accounts or the retention purge failed; trying again in %.0f s", interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)
