"""RQ workers: the CLI worker process and the in-process worker of embedded mode."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty

from jobs import QUEUES, get_queue

log = logging.getLogger(__name__)


class ThreadWorker(SimpleWorker):
    """A SimpleWorker that runs in a thread: no signal handlers, timer-based timeouts."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


_started: dict[int, threading.Thread] = {}
_start_lock = threading.Lock()


def ensure_inprocess_worker(app: Flask) -> None:
    """Start, once per app, a daemon thread that works every queue in this process."""
    with _start_lock:
        thread = _started.get(id(app))
        if thread is not None and thread.is_alive():
            return

        def run() -> None:
            with app.app_context():
                queues = [get_queue(q) for q in QUEUES]
                worker = ThreadWorker(
                    queues, connection=queues[0].connection, serializer=JSONSerializer
                )
                log.info("in-process worker started for %s", ", ".join(QUEUES))
                # The RQ scheduler forks, and a fork cannot see in-memory data: no scheduler here.
                worker.work(burst=False, logging_level="WARNING", with_scheduler=False)

        thread = threading.Thread(target=run, name="vanthu-inprocess-worker", daemon=True)
        thread.start()
        _started[id(app)] = thread


def run_worker(queue_names: list[str], burst: bool = False, **kwargs: Any) -> bool:
    """Work `queue_names` in this process (inside the current app context)."""
    queues = [get_queue(q) for q in queue_names]
    worker = Worker(queues, connection=queues[0].connection, serializer=JSONSerializer)
    return worker.work(burst=burst, with_scheduler=True, **kwargs)
