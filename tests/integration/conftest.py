"""Fixtures of the integration tests: a running server on a site whose retries are fast."""

from __future__ import annotations

import pytest

from tests.conftest import register
from tests.support import Site, ThreadedServer

# Retry waits short enough for a test, with the same backoff rule as production.
FAST_RETRIES = """
[transmit]
busy_retry_seconds = 0.3
no_answer_retry_seconds = 0.5
dropped_retry_seconds = 0.3
backoff_factor = 2.0
"""


@pytest.fixture
def running(tmp_path):
    """A real server (Alice registered) on a site with fast retries; yields the Site."""
    site = Site(tmp_path, extra=FAST_RETRIES).write()
    register(site, "alice@example.com")
    server = ThreadedServer(site.settings()).start()
    try:
        yield site
    finally:
        server.stop()
