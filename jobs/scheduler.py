"""Periodic jobs: enqueued once per interval with a deterministic id."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from jobs import enqueue

log = logging.getLogger(__name__)


def _periodic() -> list[tuple[str, Callable[..., Any], int]]:
    """(name, job function, interval seconds); later capabilities add theirs here."""
    from jobs.deadlines import run_deadlines

    jobs: list[tuple[str, Callable[..., Any], int]] = [("deadlines", run_deadlines, 60)]
    from jobs.archive import run_archive_deadlines

    jobs.append(("archive", run_archive_deadlines, 3600))  # transfer deadlines are days
    try:
        from jobs.reminders import run_opinion_deadlines
    except ImportError:
        pass
    else:
        jobs.append(("opinions", run_opinion_deadlines, 60))
    return jobs


def tick(now: float | None = None) -> list[str]:
    """Enqueue every periodic job whose slot starts now; a slot is enqueued once."""
    now = now or time.time()
    ids = []
    for name, func, interval in _periodic():
        slot = int(now // interval)
        job = enqueue(func, queue="notifications", job_id=f"periodic-{name}-{slot}", timeout=300)
        ids.append(job.id)
    return ids


def run_scheduler(app: Flask, stop: threading.Event | None = None, period: float = 15.0) -> None:
    """Loop: tick every `period` seconds until `stop` is set."""
    stop = stop or threading.Event()
    with app.app_context():
        while not stop.is_set():
            try:
                tick()
            except Exception:
                log.exception("scheduler tick failed")
            stop.wait(period)


def ensure_inprocess_scheduler(app: Flask) -> None:
    """Embedded mode: run the scheduler as a daemon thread of the portal."""
    if app.extensions.get("vanthu_scheduler"):
        return
    thread = threading.Thread(
        target=run_scheduler, args=(app,), name="vanthu-scheduler", daemon=True
    )
    app.extensions["vanthu_scheduler"] = thread
    thread.start()
