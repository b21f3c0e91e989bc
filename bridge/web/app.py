"""The one HTTP listener of the service; components add their pages to it.

Where it sits: a front door beside SMTP, built once by the composition root (bridge.app)
from config [http] (host, port, public_url), with the routes every component declares
(bridge.core.component.WebRoute): today the inbound flow's one-click unsubscribe page and
message center. It starts after the components and stops before them.

A listener that cannot bind does not stop the fax service: mail keeps working (and so
does the mailto opt-out); the operator is told loudly, and the pages answer nothing
until it is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web

from bridge.core.component import WebRoute
from bridge.web.settings import HttpSettings

log = logging.getLogger("bridge.web")

# Bodies the pages accept: a login form or a one-click POST, nothing larger.
MAX_REQUEST_BYTES = 64 * 1024


class WebApp:
    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.routes: list[WebRoute] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def add(self, routes: Sequence[WebRoute]) -> None:
        """Add a component's pages (before `start`)."""
        taken = {(r.method, r.path) for r in self.routes}
        for route in routes:
            if (route.method, route.path) in taken:
                raise ValueError(f"two components serve {route.method} {route.path}")
        self.routes.extend(routes)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        for route in self.routes:
            app.router.add_route(route.method, route.path, route.handler)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as error:
            log.error("web endpoint NOT running: cannot listen on %s:%s (%s); one-click "
                      "unsubscribe links fail until this is fixed", self.settings.host, self.settings.port, error)
            await self._runner.cleanup()
            self._runner = None
            return
        addresses = self._runner.addresses  # port 0 in config: the port the system gave
        self.port = addresses[0][1] if addresses else self.settings.port
        log.info("web endpoint on %s:%s (public %s)", self.settings.host, self.port, self.settings.public_url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
