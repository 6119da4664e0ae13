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
    """Write (or replace) the index records of these documents and case files.

    Ids that are neither (deleted meanwhile) are removed from the index.
    """
    from models.case_file import CaseFile
    from search_index.writer import index_documents as write
    from workflows.search import case_file_record, index_path, records_for

    docs = list(Document.objects(pk__in=ids))
    found = {str(d.pk) for d in docs}
    case_files = list(CaseFile.objects(pk__in=[i for i in ids if i not in found]))
    found |= {str(c.pk) for c in case_files}
    records = records_for(docs) + [case_file_record(c) for c in case_files]
    written = write(index_path(), records) if records else 0
    for doc in docs:
        Document.objects(pk=doc.pk).update_one(
            set__index_status="indexed", set__indexed_version=doc.version
        )
    gone = set(ids) - found
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
    """{id: version} of every document and case file as the index should hold it."""
    from models.case_file import CaseFile, holders_of
    from workflows.search import case_file_version, document_version

    holders = holders_of(None)
    rows = Document._get_collection().find({}, {"updated_at": 1})
    out = {
        str(r["_id"]): document_version(r.get("updated_at"), holders.get(str(r["_id"]), []))
        for r in rows
    }
    for row in CaseFile._get_collection().find({}, {"version": 1}):
        out[str(row["_id"])] = case_file_version(row.get("version"))
    return out


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
