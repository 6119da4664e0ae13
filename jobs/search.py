"""Search index jobs; they run only on the `search` queue, which has exactly one worker."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from jobs import report_progress
from models.audit import utcnow
from models.document import Document

if TYPE_CHECKING:
    from search_index.document import IndexRecord

log = logging.getLogger(__name__)
BATCH = 500
#: Documents loaded from the database at a time while their records stream to the writer.
LOAD_CHUNK = 500


def index_documents(ids: list[str], procs: int = 1) -> dict[str, int]:
    """Write (or replace) the index records of these documents and case files.

    Records stream from the database in chunks into the writer's batches (one segment per
    batch: pass thousands of ids at once rather than many small calls); ``procs`` > 1 has
    the writer analyse batches in that many processes. Ids that are neither (deleted
    meanwhile) are removed from the index.
    """
    from models.case_file import CaseFile
    from search_index.writer import BATCH_SIZE
    from search_index.writer import index_documents as write
    from workflows.search import case_file_record, index_path, load_documents, records_for

    versions: dict[Any, int] = {}  # pk -> version of the record handed to the writer
    case_files: set[str] = set()

    def records() -> Iterator[IndexRecord]:
        for start in range(0, len(ids), LOAD_CHUNK):
            chunk = ids[start : start + LOAD_CHUNK]
            docs = load_documents(chunk)
            # In the caller's order (the database returns its own): callers put copies of
            # one text together so the writer analyses it once.
            position = {doc_id: n for n, doc_id in enumerate(chunk)}
            docs.sort(key=lambda doc: position.get(str(doc.pk), 0))
            for doc in docs:
                versions[doc.pk] = doc.version
            yield from records_for(docs)
            found = {str(d.pk) for d in docs}
            for case_file in CaseFile.objects(pk__in=[i for i in chunk if i not in found]):
                case_files.add(str(case_file.pk))
                yield case_file_record(case_file)

    # Every worker gets a batch even when there are fewer ids than procs full batches.
    batch = max(1, min(BATCH_SIZE, -(-len(ids) // max(1, procs))))
    written = write(index_path(), records(), batch_size=batch, procs=procs) if ids else 0
    mark_indexed(versions)
    gone = set(ids) - {str(pk) for pk in versions} - case_files
    if gone:
        remove_documents(sorted(gone))
    return {"indexed": written, "removed": len(gone)}


def mark_indexed(versions: dict[Any, int]) -> None:
    """Record that these documents are indexed at these versions (one update per version)."""
    by_version: dict[int, list[Any]] = {}
    for pk, version in versions.items():
        by_version.setdefault(version, []).append(pk)
    for version, pks in by_version.items():
        for start in range(0, len(pks), LOAD_CHUNK):
            Document.objects(pk__in=pks[start : start + LOAD_CHUNK]).update(
                set__index_status="indexed", set__indexed_version=version
            )


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
