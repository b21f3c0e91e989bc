"""Fixtures of the inbound tests: fax documents and a running server with its web
endpoint on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from renderers.faxtiff import write_fax_tiff
from tests.faxline.conftest import draw_page
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
