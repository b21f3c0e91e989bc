"""The outbound component: accepted mail to fax calls to receipts.

Where it sits: one line of the component table (bridge/components.py), with the steps of
handlers/outbound/. The SMTP front door stores each submission through the durable
intake (SUBMISSIONS, built by the composition root) and queues an `intake` job; this
component runs what follows:

    intake runner (intake.pipeline: authenticate, parse, render, meter)
      -> transmit runner (one call job per number)
      -> call runner (the fax line, FAX_LINE; each attempt billed through CALL_METERING)
      -> receipt (bridge.outbound.notices)

It needs the line and the metering from the root and provides nothing to others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bridge.core.component import Component, Provided
from bridge.core.pipeline import StepFactory, build_pipeline
from bridge.core.runner import Runner
from bridge.faxline.base import FAX_LINE
from bridge.faxline.lines import channels
from bridge.outbound.intake import SUBMISSIONS
from bridge.outbound.notices import Notices
from bridge.outbound.pipeline import IntakeRunner, IntakeStep, StepContext
from bridge.outbound.transmit import CALL_METERING, CallRunner, TransmitRunner

if TYPE_CHECKING:
    from bridge.services import Services


class OutboundComponent(Component):
    name = "outbound"
    sections = ("intake", "render", "transmit")
    needs = (SUBMISSIONS, FAX_LINE, CALL_METERING)
    steps_base = IntakeStep
    pipeline_setting = "intake.pipeline"

    def __init__(self, services: Services, provided: Provided, steps: Mapping[str, StepFactory[Any, Any]]) -> None:
        s = services.settings
        context = StepContext(s, services.db, services.spool, provided)
        notices = Notices(s)
        intake = IntakeRunner(
            services.queue,
            build_pipeline(self.pipeline_setting, s.intake.pipeline, steps, context),
            next_queue=s.intake.next_queue,
            outbox=services.outbox,
            notices=notices,
            workers=s.queue.intake_workers,
            poll_seconds=s.queue.poll_seconds,
        )
        if s.queue.defer_while_receiving_ms:
            # Accept first, process later: rendering waits while senders wait for 250s.
            window, submissions = s.queue.defer_while_receiving_ms / 1000, provided.need(SUBMISSIONS)
            intake.defer_while(lambda: submissions.received_within(window), max_seconds=s.queue.max_deferral_seconds)
        self._runners: tuple[Runner, ...] = (
            intake,
            TransmitRunner(services.queue, workers=1, poll_seconds=s.queue.poll_seconds),
            CallRunner(services, provided.need(FAX_LINE), workers=channels(s.faxline),
                       notices=notices, metering=provided.need(CALL_METERING)),
        )

    def runners(self) -> Sequence[Runner]:
        return self._runners
