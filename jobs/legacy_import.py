"""Run and purge legacy import batches on the `import` queue."""

from __future__ import annotations

import logging
from typing import Any

from rq import get_current_job

from jobs import report_progress
from models.audit import SYSTEM_ACTOR, Actor, acting_as
from models.legacy_import import ImportBatch
from models.user import User
from workflows import legacy_import
from workflows.errors import DomainError

log = logging.getLogger(__name__)


def _fail(message: str) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["error"] = message
        job.save_meta()


def _progress(progress: dict[str, Any]) -> None:
    extra = {k: v for k, v in progress.items() if k not in ("done", "total")}
    report_progress(progress.get("done", 0), progress.get("total", 0), **extra)


def _actor(user_id: str | None) -> Actor:
    user = User.objects(pk=user_id).first() if user_id else None
    return Actor(user_id=str(user.pk), name=user.full_name) if user else SYSTEM_ACTOR


def run_import(batch_id: str) -> dict[str, Any]:
    """Run (or resume) an import batch; the result is its report (problems capped)."""
    batch = ImportBatch.objects(pk=batch_id).only("started_by_id").first()
    with acting_as(_actor(batch.started_by_id if batch else None)):
        try:
            return legacy_import.run_batch(batch_id, progress=_progress)
        except DomainError as exc:
            _fail(exc.message)
            raise
        except Exception:
            current = ImportBatch.objects(pk=batch_id).only("error").first()
            _fail((current.error if current else None) or "Nhập dữ liệu cũ gặp lỗi.")
            raise


def purge_import(batch_id: str, user_id: str) -> dict[str, int]:
    """Delete every document and file of a batch marked for purging."""
    actor = _actor(user_id)
    with acting_as(actor):
        try:
            return legacy_import.purge_batch(batch_id, actor.name)
        except DomainError as exc:
            _fail(exc.message)
            raise
