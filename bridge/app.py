"""The application: builds every part from the settings, starts them, stops them in stages.

Where it sits: `faxbridge serve` creates an `App` and runs it until SIGTERM or SIGINT.
Start order: directories and schema, database, queue (orphaned jobs of a dead process
are requeued), outbox, runners, intake, then the SMTP listeners last, so nothing is
accepted before it can be stored. Stop order is the reverse (STYLE 11): stop accepting,
commit what the intake holds, let in-flight jobs finish within
`queue.shutdown_grace_seconds`, cancel the rest and put them back in the queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Mapping
from pathlib import Path

from bridge.abuse.component import abuse_component
from bridge.accounts.senders import SenderCheck
from bridge.core.component import (
    Component,
    ComponentFactory,
    ServiceMailHandler,
    Services,
)
from bridge.core.db import Database
from bridge.core.queue import JobQueue
from bridge.core.runner import Runner
from bridge.faxline.virtual import VirtualLine
from bridge.inbound.component import InboundComponent
from bridge.mail.transports import (
    MaildirTransport,
    MailRunner,
    MailTransport,
    SmtpRelayTransport,
)
from bridge.money.component import MoneyComponent
from bridge.outbound.dialplan import DialPlan
from bridge.outbound.intake import DurableIntake
from bridge.outbound.pipeline import (
    IntakeRunner,
    StepContext,
    StepFactory,
    build_pipeline,
)
from bridge.outbound.transmit import (
    InboundFaxSink,
    MeteringProvider,
    TransmitComponent,
    service_number_lookup,
)
from bridge.settings import Settings
from bridge.smtp.frontdoor import IntakeHandler, SmtpFrontDoor
from bridge.smtp.recipients import RecipientGrammar
from bridge.smtp.tls import ensure_self_signed, server_context
from handlers.outbound.registry import INTAKE_STEPS

log = logging.getLogger("bridge.app")

# The areas that plug into the app (see bridge.core.component); each adds one line here.
COMPONENTS: tuple[ComponentFactory, ...] = (MoneyComponent, abuse_component, InboundComponent)


class App:
    def __init__(self, settings: Settings, *, intake_steps: Mapping[str, StepFactory] | None = None) -> None:
        self.settings = settings
        # The step names config may use; tests and plug-ins may bring their own.
        self.intake_steps = INTAKE_STEPS if intake_steps is None else intake_steps
        self.db: Database | None = None
        self.queue: JobQueue | None = None
        self.intake: DurableIntake | None = None
        self.front_door: SmtpFrontDoor | None = None
        self.runners: list[Runner] = []
        self.components: list[Component] = []
        self._stop_requested = asyncio.Event()

    async def start(self) -> None:
        s = self.settings
        self.services = services = await Services.open(s, upgrade=s.database.upgrade_on_start)
        self.db, self.queue = db, queue = services.db, services.queue
        spool, outbox, notices = services.spool, services.outbox, services.notices
        recovered = await queue.recover_orphans()
        if recovered:
            log.warning("requeued %d job(s) left running by a process that died", recovered)

        self.components = [factory(services) for factory in COMPONENTS]
        self.components.insert(0, self._transmit_component(services))
        steps = build_pipeline(s.intake.pipeline, self.intake_steps, StepContext(s, db, spool))
        self.runners = [
            IntakeRunner(
                queue,
                steps,
                next_queue=s.intake.next_queue,
                outbox=outbox,
                notices=notices,
                workers=s.queue.intake_workers,
                poll_seconds=s.queue.poll_seconds,
            ),
            MailRunner(queue, self._mail_transport(), s.mail, workers=2, poll_seconds=s.queue.poll_seconds),
        ]
        service_handlers: dict[str, ServiceMailHandler] = {}
        for component in self.components:
            self.runners.extend(component.runners())
            service_handlers.update(component.service_mail_handlers())
        for runner in self.runners:
            runner.start()
        for component in self.components:
            await component.start()

        self.intake = DurableIntake(
            db,
            spool,
            queue,
            commit_window_ms=s.smtp.commit_window_ms,
            duplicate_window_hours=s.intake.duplicate_window_hours,
        )
        self.intake.start()
        if s.queue.defer_while_receiving_ms:
            # Accept first, process later: rendering waits while senders wait for 250s.
            window, intake = s.queue.defer_while_receiving_ms / 1000, self.intake
            for runner in self.runners:
                if isinstance(runner, IntakeRunner):
                    runner.defer_while(lambda: intake.received_within(window), max_seconds=s.queue.max_deferral_seconds)
        grammar = RecipientGrammar(
            s.service.fax_domains,
            s.service.default_region,
            served_routes=service_handlers,
            refuse_number=DialPlan(s.transmit).refusal,
        )
        senders = SenderCheck(db, cache_seconds=s.smtp.sender_cache_seconds)
        handlers = [
            IntakeHandler(listener, s.smtp, grammar, senders, self.intake, service_handlers)
            for listener in s.smtp.listeners
        ]
        self.front_door = SmtpFrontDoor(s.smtp, handlers, db, self._tls_context())
        await self.front_door.start()
        log.info("faxbridge is ready: %s", ", ".join(f"{n}={p}" for n, p in self.front_door.bound_ports().items()))

    def _transmit_component(self, services: Services) -> TransmitComponent:
        """The fax line (config `faxline.line`) with the transmit and call runners; it
        bills through the money component and hands received faxes to the inbound one
        when those are installed."""
        virtual = self.settings.faxline.virtual
        line = VirtualLine(virtual, service_number_lookup(services))
        metering = next((c.metering for c in self.components if isinstance(c, MeteringProvider)), None)
        inbound = next((c for c in self.components if isinstance(c, InboundFaxSink)), None)
        return TransmitComponent(services, line, channels=virtual.channels, metering=metering, inbound=inbound)

    def _mail_transport(self) -> MailTransport:
        mail = self.settings.mail
        if mail.transport == "smtp":
            return SmtpRelayTransport(mail, local_hostname=self.settings.smtp.hostname)
        return MaildirTransport(mail.maildir_root)

    def _tls_context(self) -> ssl.SSLContext | None:
        s = self.settings.smtp
        if not any(l.tls == "implicit" or l.starttls for l in s.listeners):
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
            await self.intake.close()
        await asyncio.gather(*(runner.stop(grace) for runner in self.runners))
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                log.exception("component %s did not stop cleanly", component.name)
        if self.queue is not None:
            released = await self.queue.release_mine()
            if released:
                log.info("%d unfinished job(s) left queued for the next start", released)
        if self.db is not None:
            await self.db.close()
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
