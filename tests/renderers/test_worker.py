"""renderers.worker: warm worker processes, reused but never trusted after a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from renderers import DocumentRefused
from renderers.worker import run_isolated
from tests.support import assert_workers_die_with_a_killed_server

_LIMITS = {"timeout": 30.0, "memory_bytes": 1024 * 1024 * 1024}


def _pid(_: object) -> int:
    return os.getpid()


def _die(_: object) -> None:
    os._exit(3)


def _refuse(_: object) -> None:
    raise DocumentRefused("", "not today")


def test_a_worker_renders_one_document_after_another():
    first = run_isolated(_pid, None, label="a", **_LIMITS)
    assert run_isolated(_pid, None, label="b", **_LIMITS) == first
    assert first != os.getpid()


def test_a_worker_that_died_or_refused_is_never_used_again():
    dying = run_isolated(_pid, None, label="a", **_LIMITS)
    with pytest.raises(DocumentRefused) as refused:
        run_isolated(_die, None, label="crash.pdf", **_LIMITS)
    assert refused.value.filename == "crash.pdf"
    after_crash = run_isolated(_pid, None, label="b", **_LIMITS)
    assert after_crash != dying
    with pytest.raises(DocumentRefused, match="not today"):
        run_isolated(_refuse, None, label="c", **_LIMITS)
    assert run_isolated(_pid, None, label="d", **_LIMITS) != after_crash


_KILLED_SERVER = """
import os, sys
sys.path.insert(0, {repo!r})
from renderers.worker import run_isolated
from tests.renderers.test_worker import _pid

if __name__ == "__main__":
    limits = dict(timeout=30.0, memory_bytes=1024 * 1024 * 1024)
    print(run_isolated(_pid, None, label="a", **limits), flush=True)
    os.kill(os.getpid(), 9)  # the server dies without shutting anything down
"""


def test_a_render_worker_does_not_outlive_a_server_killed_with_kill_9(tmp_path: Path) -> None:
    """The warm worker kept for the next document ends with its server."""
    script = tmp_path / "server.py"
    script.write_text(_KILLED_SERVER.format(repo=str(Path(__file__).resolve().parents[2])))
    assert_workers_die_with_a_killed_server(script, expected_workers=1)
