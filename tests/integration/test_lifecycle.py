"""Nothing accepted is lost: crashes, restarts, shutdowns and failing steps.

These tests run `faxbridge serve` as a real child process where the process itself is
the point (kill -9, SIGTERM), and the app in a thread where a test step is plugged in.
"""

from __future__ import annotations

import json
import smtplib
from pathlib import Path

from bridge.outbound.jobs import FaxJob
from bridge.outbound.pipeline import IntakeStep, StepContext
from tests.conftest import register
from tests.support import (
    FAX_DOMAIN,
    MINIMAL_PDF,
    ServerProcess,
    Site,
    ThreadedServer,
    fax_message,
    past_intake,
    wait_for,
)

NUMBER = f"+12125550100@{FAX_DOMAIN}"


def submit_many(site: Site, sender: str, count: int) -> list[str]:
    """Send `count` faxes in one session; returns the queue ids from the 250 replies."""
    ids = []
    with smtplib.SMTP("127.0.0.1", site.ports["mx"], timeout=30) as connection:
        connection.ehlo("client.example.com")
        for n in range(count):
            message = fax_message(
                sender, NUMBER, subject=f"Fax {n}", attachments=[("a.pdf", "application/pdf", MINIMAL_PDF)]
            )
            connection.mail(sender)
            connection.rcpt(NUMBER)
            code, reply = connection.data(message.as_bytes())
            assert code == 250, reply
            ids.append(reply.decode().removeprefix("2.0.0 Queued as "))
    return ids


def test_submissions_survive_kill_9_right_after_250_and_are_processed_after_restart(site):
    register(site, "alice@example.com")
    server = ServerProcess(site).start()
    ids = submit_many(site, "alice@example.com", 8)
    server.kill9()  # no chance to finish anything, release leases or flush

    assert {row["id"] for row in site.query("SELECT id FROM submissions")} == set(ids)
    for job_id in ids:
        assert Path(site.job(job_id)["payload"] and json.loads(site.job(job_id)["payload"])["raw_path"]).exists()

    restarted = ServerProcess(site).start()
    try:
        def all_finished() -> bool:
            return all(site.job(job_id)["state"] == "done" for job_id in ids)

        wait_for(all_finished, timeout=60, what="every accepted fax to be processed after the restart")
        # Processed once each: one fax job and one call per submission, one receipt each.
        parents = site.query("SELECT id FROM jobs WHERE queue = 'transmit'")
        assert sorted(r["id"] for r in parents) == sorted(ids)
        calls = site.query("SELECT parent_id FROM jobs WHERE queue = 'call'")
        assert sorted(r["parent_id"] for r in calls) == sorted(ids)
        receipts = wait_for(
            lambda: len(site.mailbox("alice@example.com")) == len(ids) and site.mailbox("alice@example.com"),
            what="one receipt per fax",
        )
        assert len(receipts) == len(ids)
    finally:
        assert restarted.terminate() == 0


def test_sigterm_stops_accepting_and_leaves_nothing_running(site):
    register(site, "alice@example.com")
    server = ServerProcess(site).start()
    ids = submit_many(site, "alice@example.com", 5)
    assert server.terminate() == 0
    log = server.log.read_text()
    assert "stopped" in log
    states = {site.job(job_id)["state"] for job_id in ids}
    assert "running" not in states  # finished, or handed back to the queue
    # New mail is refused while the server is down, so senders retry later.
    try:
        smtplib.SMTP("127.0.0.1", site.ports["mx"], timeout=2)
        raise AssertionError("the port still accepts connections after SIGTERM")
    except OSError:
        pass


class ExplodeUntilFixed(IntakeStep):
    """A test step that fails like a bug would, until its marker file exists."""

    name = "explode"

    def __init__(self, context: StepContext) -> None:
        self.marker = context.settings.paths.var_dir / "fixed"

    async def process(self, job: FaxJob) -> None:
        if not self.marker.exists():
            raise RuntimeError("simulated bug in a step")


def test_exception_in_a_step_parks_the_job_failed_and_jobs_retry_runs_it_again(tmp_path):
    site = Site(tmp_path, extra='[intake]\npipeline = ["authenticate", "explode", "parse", "render"]\n').write()
    register(site, "alice@example.com")
    server = ThreadedServer(site.settings(), extra_steps={"outbound": {"explode": ExplodeUntilFixed}}).start()
    try:
        [job_id] = submit_many(site, "alice@example.com", 1)
        job = wait_for(lambda: (j := site.job(job_id))["state"] == "failed" and j, what="the job to fail")
        assert job["stage"] == "explode"
        assert "RuntimeError: simulated bug in a step" in job["last_error"]
        assert json.loads(job["steps_done"]) == ["authenticate"]

        shown = site.cli("jobs", "show", job_id).stdout
        assert "state:      failed" in shown and "simulated bug" in shown
        listed = site.cli("jobs", "list", "--state", "failed").stdout
        assert job_id in listed

        (site.var / "fixed").touch()
        retried = site.cli("jobs", "retry", job_id).stdout
        assert "queued again" in retried
        job = wait_for(lambda: past_intake(site, job_id), what="the retried job to finish")
        assert json.loads(job["payload"])["attachments"][0]["filename"] == "a.pdf"

        refused = site.cli("jobs", "retry", job_id, check=False)
        assert refused.returncode == 1 and "only failed or rejected jobs" in refused.stderr
    finally:
        server.stop()
