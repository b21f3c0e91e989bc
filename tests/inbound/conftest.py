"""Fixtures of the inbound tests: fax documents, a running server with its web
endpoint on a free port, and every kind of mail the service sends."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from renderers.faxtiff import write_fax_tiff
from tests.faxline.conftest import draw_page
from tests.inbound.outgoing import OutgoingMail, make_every_template
from tests.inbound.spamd import Spamd, start_spamd
from tests.inbound.support import Running, inbound_site
from tests.support import ThreadedServer


@pytest.fixture(scope="session")
def three_pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inbound_docs") / "three.tif"
    write_fax_tiff([draw_page(n) for n in range(1, 4)], path, compression="g4")
    return path


@pytest.fixture(scope="session")
def one_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inbound_docs") / "one.tif"
    write_fax_tiff([draw_page(1)], path, compression="g4")
    return path


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    site = inbound_site(tmp_path)
    server = ThreadedServer(site.settings()).start()
    try:
        yield Running(site, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def outgoing_mail(tmp_path_factory: pytest.TempPathFactory, one_page: Path) -> Iterator[OutgoingMail]:
    """Every kind of mail the service sends, made once by its real code path."""
    site = inbound_site(tmp_path_factory.mktemp("outgoing"))
    server = ThreadedServer(site.settings()).start()
    try:
        yield make_every_template(Running(site, server), one_page)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spamd]:
    """SpamAssassin, offline, for this test session; stopped at the end."""
    # A missing SpamAssassin must fail the suite, not skip the scores: set-up installs it.
    assert shutil.which("spamd") and shutil.which("spamc"), "spamd/spamc missing: run `bash scripts/setup`"
    daemon = start_spamd(tmp_path_factory.mktemp("spamd"))
    try:
        yield daemon
    finally:
        daemon.stop()
