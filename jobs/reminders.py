"""Periodic opinion work: reminders before the deadline, and closing at it.

`jobs/scheduler.py` enqueues `run_opinion_deadlines` once a minute; tests call it with a
frozen or given time.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from models.audit import utcnow

log = logging.getLogger(__name__)


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
