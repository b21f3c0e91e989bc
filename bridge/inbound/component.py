"""The inbound component: how inbound delivery plugs into the app.

Where it sits: listed in `bridge.app.COMPONENTS`. The app gives the fax line's
received faxes to `accept_inbound_fax` (bridge.outbound.transmit.InboundFaxSink; the same
callable is `on_inbound`, a `bridge.faxline.base.InboundHandler`). It brings:
  * the `inbound` runner and its pipeline (`inbound.pipeline`, handlers/inbound_*.py),
    with the worker processes its steps' file work runs in (bridge/inbound/workpool.py);
  * the service addresses `unsubscribe+TOKEN@` and `bounces+TOKEN@`;
  * the web endpoint for one-click unsubscribe (bridge/http.py), when [http] enabled;
  * DKIM signing of every mail the outbox stores (bridge/dkim.py), when [dkim] enabled:
    the signer is installed when the component is built, before any runner starts;
  * the retention purge, every `inbound.purge_interval_seconds` (R-STORE-1/2).
Usage is charged through bridge.money's Metering (R-USE-1) when a metering is given
or the money package is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from bridge.core.component import ServiceMailHandler, Services
from bridge.core.runner import Runner
from bridge.faxline.base import InboundFax
from bridge.inbound.accounts import AccountViews, Bounces, OptOuts
from bridge.inbound.idle import IdleAccounts
from bridge.inbound.intake import InboundIntake
from bridge.inbound.messages import Footers
from bridge.inbound.pipeline import (
    InboundContext,
    InboundMetering,
    InboundRunner,
    InboundStepFactory,
    build_inbound_pipeline,
)
from bridge.inbound.retention import Retention
from bridge.inbound.service_mail import BounceMail, UnsubscribeMail
from bridge.inbound.workpool import WorkContext, WorkPool
from bridge.mail.dkim import DkimSigner, load_or_create_signer
from bridge.web.unsubscribe import UnsubscribeWeb
from handlers.inbound.decorate import Decorate
from handlers.inbound.deliver import Deliver
from handlers.inbound.store import Store
from handlers.inbound.to_pdf import ToPdf

log = logging.getLogger("bridge.inbound")

# The step names `inbound.pipeline` may use.
INBOUND_STEPS: Mapping[str, InboundStepFactory] = {
    Store.name: Store,
    ToPdf.name: ToPdf,
    Decorate.name: Decorate,
    Deliver.name: Deliver,
}


def default_metering(services: Services) -> InboundMetering | None:
    """bridge.money's Metering when the money package is there (R-USE-1)."""
    try:
        from bridge.money.meter import Metering
    except ImportError:
        log.warning("bridge.money is not installed: received faxes are not charged")
        return None
    return Metering(services.settings, services.db)


class InboundComponent:
    name = "inbound"

    def __init__(
        self,
        services: Services,
        *,
        metering: InboundMetering | None = None,
        steps: Mapping[str, InboundStepFactory] = INBOUND_STEPS,
    ) -> None:
        s = services.settings
        self.services = services
        self.signer: DkimSigner | None = None
        if s.dkim.enabled:
            # Key generation happens once, on the first start, before anything is served.
            self.signer = load_or_create_signer(s.dkim, var_dir=s.paths.var_dir, default_domain=s.service.primary_domain)
            services.outbox.use_signer(self.signer.sign)
        self.store_dir = Path(s.inbound.store_dir) if s.inbound.store_dir else s.paths.var_dir / "faxes"
        self.optouts = OptOuts(s, services.outbox)
        self.bounces = Bounces(s, services.outbox)
        self.intake = InboundIntake(services)
        self.metering = metering if metering is not None else default_metering(services)
        self.work = WorkPool(WorkContext(s, services.outbox.mails), processes=s.inbound.processes,
                             preload=sorted({factory.__module__ for factory in steps.values()}))
        accounts = AccountViews(services.db)
        context = InboundContext(services, Footers(s), self.store_dir, self.metering, self.work, accounts)
        self.runner = InboundRunner(
            services.queue,
            build_inbound_pipeline(s.inbound.pipeline, steps, context),
            accounts,
            workers=s.inbound.workers,
            batch_size=s.inbound.batch,
            poll_seconds=s.queue.poll_seconds,
        )
        self.web = (
            UnsubscribeWeb(s.http, services.db, self.optouts, service_name=s.service.name) if s.http.enabled else None
        )
        self.retention = Retention(s.inbound, services.db)
        self.idle = IdleAccounts(s, services.db, services.outbox)
        self._purger: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # --- what the app asks of a component ------------------------------------------------
    def runners(self) -> Sequence[Runner]:
        return (self.runner,)

    def service_mail_handlers(self) -> Mapping[str, ServiceMailHandler]:
        return {
            "unsubscribe": UnsubscribeMail(self.services.db, self.optouts),
            "bounces": BounceMail(self.services.db, self.bounces),
        }

    async def start(self) -> None:
        await asyncio.to_thread(self.store_dir.mkdir, parents=True, exist_ok=True)
        # The worker processes start with the first received fax (WorkPool), not here:
        # a server that receives none never pays for them.
        if self.web is not None:
            await self.web.start()
        self._stopping.clear()
        self._purger = asyncio.create_task(self._purge_loop(), name="inbound-retention")

    async def stop(self) -> None:
        self._stopping.set()
        if self._purger is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        if self.web is not None:
            await self.web.stop()
        await asyncio.to_thread(self.work.close)

    # --- the fax line's callback -----------------------------------------------------------
    async def accept_inbound_fax(self, fax: InboundFax) -> None:
        """Take a fax the line received on a service number (an InboundHandler)."""
        await self.intake.accept(fax)

    on_inbound = accept_inbound_fax

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
