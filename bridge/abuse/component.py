"""The abuse component: plugs the abuse mailbox poller into the app (issue 7, R-ABUSE).

Where it sits: listed in bridge.app.COMPONENTS. When `abuse.enabled` it builds the
pipeline (classify, match number, act) and the IMAP poller on start, and stops the
poller after the runners have stopped, before the database closes. Blocking work of
the pipeline runs in its own small thread pool, so a slow OCR never takes the default
executor the outbox writes through.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from bridge.abuse.pipeline import AbusePipeline, build_context
from bridge.abuse.poller import AbusePoller
from bridge.core.component import ServiceMailHandler, Services
from bridge.core.runner import Runner

log = logging.getLogger("bridge.abuse")


class AbuseComponent:
    name = "abuse"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.poller: AbusePoller | None = None
        self._executor: ThreadPoolExecutor | None = None

    def runners(self) -> Sequence[Runner]:
        return ()

    def service_mail_handlers(self) -> Mapping[str, ServiceMailHandler]:
        return {}

    async def start(self) -> None:
        s = self.services.settings
        if not s.abuse.enabled:
            log.info("abuse mailbox: off (abuse.enabled = false)")
            return
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="abuse")
        context = build_context(s, self.services.db, self.services.outbox, self._executor)
        self.poller = AbusePoller(context, AbusePipeline(context))
        self.poller.start()

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop(self.services.settings.queue.shutdown_grace_seconds)
            self.poller = None
        if self._executor is not None:
            # A stuck parse (bounded by parse_timeout_seconds) is not waited for.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def abuse_component(services: Services) -> AbuseComponent:
    return AbuseComponent(services)
