"""Search index jobs; they run only on the `search` queue, which has exactly one worker."""

from __future__ import annotations

import logging
from typing import Any

from jobs import report_progress
from models.audit import utcnow
from models.document import Document

log = logging.getLogger(__name__)
BATCH = 500


def index_documents(ids: list[str]) -> dict[str, int]:
    """Write (or replace) the index records of these documents."""
    from search_index.writer import index_documents as write

    from workflows.search import index_path, record_for

    docs = list(Document.objects(pk__in=ids))
    written = write(index_path(), (record_for(d) for d in docs)) if docs else 0
    for doc in docs:
        Document.objects(pk=doc.pk).update_one(
            set__index_status="indexed", set__indexed_version=doc.version
        )
    gone = set(ids) - {str(d.pk) for d in docs}
    if gone:
        remove_documents(sorted(gone))
    return {"indexed": written, "removed": len(gone)}


def remove_documents(ids: list[str]) -> dict[str, int]:
    """Remove documents from the index."""
    from search_index.writer import delete_documents, open_or_create

    from workflows.search import index_path

    open_or_create(index_path())
    return {"removed": delete_documents(index_path(), ids)}


def current_versions() -> dict[str, str]:
    """{id: version} of every document as the index should hold it."""
    from search_index.document import version_of

    rows = Document._get_collection().find({}, {"updated_at": 1})
    return {str(r["_id"]): version_of(r.get("updated_at")) for r in rows}


def rebuild(resume: bool = True) -> dict[str, Any]:
    """Rebuild the index in id order, resumably: documents already current are skipped."""
    from search_index.writer import check, open_or_create, recreate

    from workflows.search import index_path

    path = index_path()
    if resume:
        open_or_create(path)
        drift = check(path, current_versions())
        todo = sorted(drift.missing + drift.stale)
        if drift.extra:
            remove_documents(drift.extra)
    else:
        recreate(path)
        todo = sorted(current_versions())
    total = len(todo)
    done = 0
    started = utcnow()
    report_progress(0, total)
    for start in range(0, total, BATCH):
        ids = todo[start : start + BATCH]
        index_documents(ids)
        done += len(ids)
        report_progress(done, total)
    seconds = (utcnow() - started).total_seconds()
    log.info("search rebuild: %d documents in %.1f s", done, seconds)
    return {"indexed": done, "seconds": round(seconds, 1)}
