"""Periodic deadline work: opinion reminders before the deadline, and closing at it.

Run `run_opinion_deadlines` every minute. With RQ's cron (rq >= 2.5), a cron config file
calls `register_cron(cron)`; any other scheduler may enqueue it through `jobs.enqueue`
with the job id it returns from `job_id_for`, so two ticks of the same minute run once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from models.audit import utcnow

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 60


def _parse_now(now_iso: str | None) -> dt.datetime:
    if not now_iso:
        return utcnow()
    value = dt.datetime.fromisoformat(now_iso)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def run_opinion_deadlines(now_iso: str | None = None) -> dict[str, Any]:
    """Send the reminders that are due and close the requests whose deadline has passed."""
    from workflows import opinion

    now = _parse_now(now_iso)
    reminded = opinion.send_reminders(now)
    closed = opinion.close_expired(now)
    if reminded or closed:
        log.info(
            "opinion deadlines at %s: %d reminders, %d closed",
            now.isoformat(),
            reminded,
            len(closed),
        )
    return {"reminders": reminded, "closed": closed}


def job_id_for(now: dt.datetime | None = None) -> str:
    """A deterministic job id per minute, for `jobs.enqueue`."""
    return f"opinion-deadlines-{(now or utcnow()).strftime('%Y%m%d%H%M')}"


def register_cron(cron: Any) -> None:
    """Register the periodic run with an RQ cron scheduler (or `rq.cron` module)."""
    cron.register(
        run_opinion_deadlines, "notifications", interval=INTERVAL_SECONDS, name="opinion-deadlines"
    )
