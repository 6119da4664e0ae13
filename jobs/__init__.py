"""Background jobs on RQ: connection, queues, one enqueue helper, job status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

log = logging.getLogger(__name__)

# Queues are named by purpose; `search` has exactly one worker (one Whoosh writer).
QUEUES = ("default", "signing", "conversion", "import", "notifications", "search")
GENERAL_QUEUES = tuple(q for q in QUEUES if q != "search")

_fake_server: Any = None


def init_jobs(app: Flask) -> None:
    """Choose the Redis connection and whether jobs run in this process."""
    url = app.config["REDIS_URL"]
    if url:
        conn: Redis = Redis.from_url(url)
    else:
        import fakeredis

        global _fake_server
        if _fake_server is None:
            _fake_server = fakeredis.FakeServer()
        conn = fakeredis.FakeRedis(server=_fake_server)
    app.extensions["vanthu_redis"] = conn
    # With an in-memory database, only this process can see the data: run jobs here.
    inprocess = app.config.get("JOBS_INPROCESS")
    if inprocess is None:
        inprocess = app.config["EMBEDDED"] and not app.config["TESTING"]
    app.config["JOBS_INPROCESS"] = inprocess


def redis_connection() -> Redis:
    """Return the application's Redis connection."""
    conn: Redis = current_app.extensions["vanthu_redis"]
    return conn


def get_queue(name: str) -> Queue:
    """Return the RQ queue `name` on the application's connection."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name}")
    return Queue(name, connection=redis_connection(), serializer=JSONSerializer)


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    queue: str = "default",
    job_id: str | None = None,
    owner_id: str | None = None,
    description: str | None = None,
    timeout: int = 600,
    retries: int = 0,
    **kwargs: Any,
) -> Job:
    """Enqueue `func(*args, **kwargs)`; a job id already queued or running is not redone.

    Arguments must be ids and primitive values: payloads live in Redis, so no documents
    and never a secret.
    """
    conn = redis_connection()
    if job_id:
        try:
            existing = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
        except NoSuchJobError:
            existing = None
        if existing is not None and existing.get_status(refresh=True) in (
            JobStatus.QUEUED,
            JobStatus.STARTED,
            JobStatus.DEFERRED,
            JobStatus.SCHEDULED,
            JobStatus.FINISHED,
        ):
            return existing
    job = get_queue(queue).enqueue(
        func,
        args=args,
        kwargs=kwargs,
        job_id=job_id,
        description=description,
        job_timeout=timeout,
        result_ttl=current_app.config["JOB_RESULT_TTL_SECONDS"],
        failure_ttl=current_app.config["JOB_RESULT_TTL_SECONDS"],
        retry=Retry(max=retries, interval=[5, 30, 120][:retries]) if retries else None,
        meta={"owner_id": owner_id, "progress": {"done": 0, "total": 0}},
    )
    if current_app.config["JOBS_INPROCESS"]:
        from jobs.worker import ensure_inprocess_worker

        ensure_inprocess_worker(current_app._get_current_object())  # type: ignore[attr-defined]
    log.info("enqueued job=%s func=%s queue=%s", job.id, job.func_name, queue)
    return job


def report_progress(done: int, total: int, **extra: Any) -> None:
    """Store the current job's progress so `GET /api/v1/jobs/<id>` can show it."""
    job = get_current_job()
    if job is None:
        return
    job.meta["progress"] = {"done": done, "total": total, **extra}
    job.save_meta()


def fetch_job(job_id: str) -> Job | None:
    """Return the job with this id, or None."""
    try:
        return Job.fetch(job_id, connection=redis_connection(), serializer=JSONSerializer)
    except NoSuchJobError:
        return None


_STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.DEFERRED: "queued",
    JobStatus.SCHEDULED: "queued",
    JobStatus.STARTED: "started",
    JobStatus.FINISHED: "finished",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "failed",
    JobStatus.CANCELED: "canceled",
}


def job_to_api(job: Job) -> dict[str, Any]:
    """Return the job as the API shows it."""
    status = _STATUS.get(job.get_status(refresh=True) or JobStatus.QUEUED, "queued")
    progress = job.meta.get("progress") or {"done": 0, "total": 0}
    out: dict[str, Any] = {
        "id": job.id,
        "status": status,
        "progress": {"done": progress.get("done", 0), "total": progress.get("total", 0)},
    }
    if status == "finished":
        out["result"] = job.return_value()
    if status == "failed":
        # The user-facing message a job stored; never a traceback.
        out["error"] = job.meta.get("error") or "Tác vụ nền gặp lỗi. Vui lòng thử lại."
    return out
