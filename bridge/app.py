"""The composition root: builds every shared service once, plugs the components in,
starts them, stops them in stages.

Where it sits: `faxbridge serve` creates an `App` and runs it until SIGTERM or SIGINT.
Everything the rooms share is made here and nowhere else:
  * bridge.services.Services: the spool, the database (migrated), the queue, the DKIM
    signer and the one outbox that signs with it;
  * one Metering (bridge.money), handed to the intake's meter step, the call runner,
    inbound delivery and the billing cycle, so a top-up any of them writes down wakes the
    one loop that charges cards (R-DEP-3);
  * the durable intake the SMTP front door stores submissions through;
  * the fax line named by `faxline.line` (bridge.faxline.lines), started with the
    receiver the inbound component provides;
  * the mail runner, and one HTTP listener with every component's pages;
  * the SMTP front door, with the service addresses the components declare.
The components come from the table in bridge/components.py, built in the order their
needs allow (bridge.core.component.build_order); each gets the services and the steps
of its pipeline, and changes nothing of anyone else's.

Start order: schema, services, components (their runners, then their own start), the
fax line, the web listener, the intake, and the SMTP listeners last, so nothing is
accepted before it can be stored. Stop order is the reverse (STYLE 11): stop accepting,
commit what the intake holds, let in-flight jobs finish within
`queue.shutdown_grace_seconds`, close the line, stop the components, cancel the rest
and put it back in the queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridge.accounts.senders import SenderCheck
from bridge.components import COMPONENTS, Plugged
from bridge.core.component import Component, Provided, ServiceMailHandler, build_order
from bridge.core.pipeline import StepFactory, steps_in
from bridge.core.runner import Runner
from bridge.core.settings import SettingsError
from bridge.faxline.base import FAX_LINE, FAX_RECEIVER, FaxLine, InboundFax
from bridge.faxline.lines import build_line
from bridge.mail.transports import MailRunner, build_transport
from bridge.money.meter import METERING, Metering
from bridge.outbound.dialplan import DialPlan
from bridge.outbound.intake import SUBMISSIONS, DurableIntake
from bridge.outbound.transmit import CALL_METERING, service_number_lookup
from bridge.services import Services
from bridge.settings import Settings
from bridge.smtp.frontdoor import IntakeHandler, SmtpFrontDoor
from bridge.smtp.recipients import RecipientGrammar
from bridge.smtp.tls import ensure_self_signed, server_context
from bridge.web.app import WebApp

log = logging.getLogger("bridge.app")


class App:
    def __init__(
        self,
        settings: Settings,
        *,
        extra_steps: Mapping[str, Mapping[str, StepFactory[Any, Any]]] | None = None,
        components: tuple[Plugged, ...] = COMPONENTS,
    ) -> None:
        self.settings = settings
        # Steps a test or a site brings beside the handlers packages, by component name.
        self.extra_steps = extra_steps or {}
        self.plugged = components
        self.services: Services | None = None
        self.provided = Provided()
        self.metering: Metering | None = None
        self.line: FaxLine | None = None
        self.web: WebApp | None = None
        self.intake: DurableIntake | None = None
        self.front_door: SmtpFrontDoor | None = None
        self.runners: list[Runner] = []
        self.components: list[Component] = []
        self._stop_requested = asyncio.Event()

    async def start(self) -> None:
        s = self.settings
        self._check_sections()
        self.services = services = await Services.open(s, upgrade=s.database.upgrade_on_start)
        recovered = await services.queue.recover_orphans()
        if recovered:
            log.warning("requeued %d job(s) left running by a process that died", recovered)

        self.metering = Metering(s, services.db, outbox=services.outbox)
        self.intake = DurableIntake(
            services.db, services.spool, services.queue,
            commit_window_ms=s.smtp.commit_window_ms, duplicate_window_hours=s.intake.duplicate_window_hours,
        )
        self.line = build_line(s.faxline, service_number_lookup(services.db))
        self.provided.provide(METERING, self.metering)
        self.provided.provide(CALL_METERING, self.metering)
        self.provided.provide(SUBMISSIONS, self.intake)
        self.provided.provide(FAX_LINE, self.line)

        self.components = self._build_components(services)
        self.runners = [MailRunner(services.queue, build_transport(s.mail, local_hostname=s.smtp.hostname), s.mail,
                                   workers=2, poll_seconds=s.queue.poll_seconds)]
        for component in self.components:
            self.runners.extend(component.runners())
        for runner in self.runners:
            runner.start()
        for component in self.components:
            await component.start()
        await self.line.start(self.provided.get(FAX_RECEIVER) or _keep_unrouted)
        if s.http.enabled:
            self.web = WebApp(s.http)
            for component in self.components:
                self.web.add(component.web_routes())
            await self.web.start()

        self.intake.start()
        service_handlers: dict[str, ServiceMailHandler] = {}
        served: dict[str, bool] = {}
        for component in self.components:
            for address in component.service_addresses():
                service_handlers[address.local_part] = address.handler
                served[address.local_part] = address.takes_token
        grammar = RecipientGrammar(
            s.service.fax_domains, s.service.default_region,
            served_routes=served, refuse_number=DialPlan(s.transmit).refusal,
        )
        senders = SenderCheck(services.db, cache_seconds=s.smtp.sender_cache_seconds)
        handlers = [
            IntakeHandler(listener, s.smtp, grammar, senders, self.intake, service_handlers)
            for listener in s.smtp.listeners
        ]
        self.front_door = SmtpFrontDoor(s.smtp, handlers, services.db, self._tls_context())
        await self.front_door.start()
        log.info("faxbridge is ready: %s", ", ".join(f"{n}={p}" for n, p in self.front_door.bound_ports().items()))

    def _check_sections(self) -> None:
        """Every component's config sections exist in the product's settings."""
        for plugged in self.plugged:
            for section in plugged.component.sections:
                if section not in Settings.model_fields:
                    raise SettingsError(
                        f"component {plugged.component.name} reads [{section}], which the settings do not have"
                    )

    def _build_components(self, services: Services) -> list[Component]:
        by_class = {p.component: p for p in self.plugged}
        built: list[Component] = []
        for cls in build_order([p.component for p in self.plugged], self.provided.keys()):
            plugged = by_class[cls]
            steps: dict[str, StepFactory[Any, Any]] = {}
            if cls.steps_base is not None and plugged.steps is not None:
                steps = {**steps_in(plugged.steps, cls.steps_base), **self.extra_steps.get(cls.name, {})}
            component = cls(services, self.provided, steps)
            self.provided.provide_from(component)
            built.append(component)
        return built

    def _tls_context(self) -> ssl.SSLContext | None:
        s = self.settings.smtp
        if not any(listener.tls == "implicit" or listener.starttls for listener in s.listeners):
            return None
        if s.tls_cert and s.tls_key:
            return server_context(Path(s.tls_cert), Path(s.tls_key))
        cert, key = ensure_self_signed(self.settings.tls_dir, s.hostname)
        return server_context(cert, key)

    async def stop(self) -> None:
        grace = self.settings.queue.shutdown_grace_seconds
        log.info("stopping: no new mail; in-flight work has %.0f s to finish", grace)
        if self.front_door is not None:
            await self.front_door.stop_accepting()
        if self.intake is not None:
            await self.intake.close(timeout=grace)
        await asyncio.gather(*(runner.stop(grace) for runner in self.runners))
        if self.line is not None:
            await self.line.close()
        if self.web is not None:
            await self.web.stop()
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                log.exception("component %s did not stop cleanly", component.name)
        if self.services is not None:
            released = await self.services.queue.release_mine()
            if released:
                log.info("%d unfinished job(s) left queued for the next start", released)
            await self.services.db.close()
        log.info("stopped")

    def request_stop(self) -> None:
        self._stop_requested.set()

    async def run_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        await self.start()
        try:
            await self._stop_requested.wait()
        finally:
            await self.stop()


async def _keep_unrouted(fax: InboundFax) -> None:
    """The line's receiver when no component provides one: the fax stays where the
    line stored it, for an operator."""
    log.error("fax received on %s from %s, but no inbound component is installed; kept at %s",
              fax.to_number, fax.caller_number or "unknown", fax.tiff_path)
