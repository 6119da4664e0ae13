"""Search index jobs; they run only on the `search` queue, which has exactly one worker."""

from __future__ import annotations

import logging
from typing import Any

from jobs import report_progress
from models.audit import utcnow
from models.document import Document

log = logging.getLogger(__name__)
BATCH = 500
#: Documents loaded from the database at a time while their records stream to the writer.
LOAD_CHUNK = 500


class IndexFeed:
    """Hand documents to the index in batches while the caller goes on with other work.

    Records are read when added; a document is marked indexed once its segment is committed,
    and only if it did not change after it was read (it then stays ``pending``). Holds the
    index lock until ``close`` (see search_index.writer.BulkWriter).
    """

    def __init__(self, procs: int = 1, *, background: bool = False) -> None:
        from search_index.writer import BATCH_SIZE, BulkWriter
        from workflows.search import index_path

        self.procs = max(1, procs)
        self.read: dict[str, tuple[Any, int, Any]] = {}  # id -> (pk, version, updated_at)
        self.found: set[str] = set()  # every document and case file read
        self.writer = BulkWriter(
            index_path(),
            procs=self.procs,
            batch_size=BATCH_SIZE,
            background=background,
            on_commit=self._mark,
        )

    @property
    def busy(self) -> bool:
        """Tell whether every index process has work (adding more would wait)."""
        return self.writer.busy

    @property
    def written(self) -> int:
        """Records committed so far."""
        return self.writer.written

    def add(self, ids: list[str], batch_size: int | None = None) -> None:
        """Read these documents and case files (in this order) and queue their records."""
        from models.case_file import CaseFile
        from workflows.search import case_file_record, load_documents, records_for

        if batch_size is not None:
            self.writer.batch_size = max(1, batch_size)
        for start in range(0, len(ids), LOAD_CHUNK):
            chunk = ids[start : start + LOAD_CHUNK]
            docs = load_documents(chunk)
            # In the caller's order (the database returns its own): callers put copies of
            # one text together so the writer analyses it once.
            position = {doc_id: n for n, doc_id in enumerate(chunk)}
            docs.sort(key=lambda doc: position.get(str(doc.pk), 0))
            for doc in docs:
                self.read[str(doc.pk)] = (doc.pk, doc.version, doc.updated_at)
            records = records_for(docs)
            found = {str(d.pk) for d in docs}
            for case_file in CaseFile.objects(pk__in=[i for i in chunk if i not in found]):
                found.add(str(case_file.pk))
                records.append(case_file_record(case_file))
            self.found |= found
            self.writer.add(records)

    def poll(self) -> None:
        """Commit what the index processes finished (and mark it), without waiting."""
        self.writer.poll()

    def close(self) -> int:
        """Write everything queued and wait for it; return the records written."""
        return self.writer.close()

    def abort(self) -> None:
        """Stop without committing what is still being built (it stays pending)."""
        self.writer.abort()

    def _mark(self, ids: list[str]) -> None:
        """Mark committed documents indexed at the version read, unless changed since."""
        groups: dict[tuple[int, Any], list[Any]] = {}
        for doc_id in ids:
            read = self.read.pop(doc_id, None)
            if read is not None:
                groups.setdefault(read[1:], []).append(read[0])
        collection = Document._get_collection()
        for (version, updated_at), pks in groups.items():
            for start in range(0, len(pks), LOAD_CHUNK):
                collection.update_many(
                    {"_id": {"$in": pks[start : start + LOAD_CHUNK]}, "updated_at": updated_at},
                    {"$set": {"index_status": "indexed", "indexed_version": version}},
                )


def index_documents(ids: list[str], procs: int = 1) -> dict[str, int]:
    """Write (or replace) the index records of these documents and case files.

    Records stream from the database in chunks into the writer's batches (one segment per
    batch: pass thousands of ids at once rather than many small calls); ``procs`` > 1 has
    the writer analyse batches in that many processes. Ids that are neither (deleted
    meanwhile) are removed from the index.
    """
    from search_index.writer import BATCH_SIZE

    if not ids:
        return {"indexed": 0, "removed": 0}
    feed = IndexFeed(procs)
    try:
        # Every worker gets a batch even when there are fewer ids than procs full batches.
        feed.add(ids, batch_size=min(BATCH_SIZE, -(-len(ids) // feed.procs)))
        written = feed.close()
    except BaseException:
        feed.abort()
        raise
    gone = set(ids) - feed.found
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
