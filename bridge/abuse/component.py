"""The abuse component: the abuse mailbox poller and its pipeline (R-ABUSE).

Where it sits: one line of the component table (bridge/components.py), with the steps of
handlers/abuse/. When `abuse.enabled` it builds the pipeline named in `abuse.pipeline`
(classify, match, act) and starts the IMAP poller; it stops the poller after the
runners have stopped, before the database closes. Blocking work of the pipeline runs in
its own small thread pool, so a slow OCR never takes the default executor the outbox
writes through.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from bridge.abuse import cli
from bridge.abuse.pipeline import AbusePipeline, AbuseStep, build_context
from bridge.abuse.poller import AbusePoller
from bridge.core.component import CommandGroups, Component, Provided
from bridge.core.pipeline import StepFactory, build_pipeline, check_names

if TYPE_CHECKING:
    from bridge.services import Services

log = logging.getLogger("bridge.abuse")


class AbuseComponent(Component):
    name = "abuse"
    sections = ("abuse",)
    steps_base = AbuseStep
    pipeline_setting = "abuse.pipeline"

    def __init__(self, services: Services, provided: Provided, steps: Mapping[str, StepFactory[Any, Any]]) -> None:
        self.services = services
        self.steps = steps
        check_names(self.pipeline_setting, services.settings.abuse.pipeline, steps)  # at start, even when off
        self.poller: AbusePoller | None = None
        self._executor: ThreadPoolExecutor | None = None

    @staticmethod
    def add_commands(groups: CommandGroups) -> None:
        cli.extend(groups.commands, dict(groups.groups))

    async def start(self) -> None:
        s = self.services.settings
        if not s.abuse.enabled:
            log.info("abuse mailbox: off (abuse.enabled = false)")
            return
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="abuse")
        context = build_context(s, self.services.db, self.services.outbox, self._executor)
        pipeline = build_pipeline(self.pipeline_setting, s.abuse.pipeline, self.steps, context)
        self.poller = AbusePoller(context, AbusePipeline(context, pipeline))
        self.poller.start()

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop(self.services.settings.queue.shutdown_grace_seconds)
            self.poller = None
        if self._executor is not None:
            # A stuck parse (bounded by parse_timeout_seconds) is not waited for.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
