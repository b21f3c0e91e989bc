"""Every log line about a job carries its id (STYLE 6).

Where it sits: runners set `current_job` while they work on a job; the SMTP front door
sets it while it stores a submission. `JobIdFilter`, installed on the root handler by
`configure_logging`, copies it into each record as `job_id`.
"""

from __future__ import annotations

import contextvars
import logging
import sys

current_job: contextvars.ContextVar[str] = contextvars.ContextVar("current_job", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(job_id)s] %(message)s"


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job_id"):
            record.job_id = current_job.get()
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(JobIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiosmtpd logs every session at INFO; keep its chatter for DEBUG.
    logging.getLogger("mail.log").setLevel(max(logging.getLevelName(level), logging.WARNING))
