"""Import a legacy QLVB export: batches, the phased run, report, purge.

A batch runs three streaming phases, each from its own checkpoint: documents (bulk inserts of
read-only migrated documents), attachments (files streamed into GridFS, PDF text appended to
the document's ``content``) and history (the old trace as read-only entries). Killed at any
point and run again with the same batch id, it ends in the same state as an uninterrupted run.

Who sees migrated documents: they have no unit (``visible_unit_ids`` empty), so everyone
holding ``document.view_all`` (leaders, clerks, archivists, who also hold ``archive.search``)
sees them up to their clearance; the admin who started the import is added to
``visible_user_ids`` so that they can check what they imported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import logging
from pathlib import Path
from typing import Any

from flask import current_app
from mongoengine.connection import get_db

from models import audit
from models.audit import utcnow
from models.document import Document
from models.legacy_import import (
    PHASES,
    ImportBatch,
    ImportProblem,
    empty_counts,
    file_id_range,
    legacy_object_id,
)
from models.user import User
from workflows.errors import Conflict, NotFound, ValidationFailed
from workflows.legacy import (
    ExportError,
    ExportSource,
    Mapping,
    MappingError,
    estimate_rows,
    open_export,
    parse_mapping,
    read_attachments,
    read_documents,
    read_history,
    read_manifest,
)
from workflows.legacy.reader import TableReader
from workflows.legacy_import_documents import DocumentContext, DocumentPhase
from workflows.legacy_import_files import AttachmentPhase
from workflows.legacy_import_history import HistoryPhase
from workflows.legacy_import_index import IndexStep
from workflows.legacy_import_report import (
    SEVERITY_LABELS,
    batch_report,
    batch_status,
    counts_of,
    problems_csv,
    problems_for,
)
from workflows.legacy_import_run import (
    ImportRun,
    LeaseLost,
    ProgressCallback,
    acquire,
    is_stalled,
)
from workflows.legacy_import_sources import (
    allowed_roots,
    choose_mapping,
    default_mapping_text,
    list_exports,
    parse_mapping_input,
    resolve_server_path,
    save_mapping,
    save_upload,
)

__all__ = [
    "SEVERITY_LABELS",
    "allowed_roots",
    "batch_report",
    "batch_status",
    "can_purge",
    "can_resume",
    "choose_mapping",
    "counts_of",
    "create_batch",
    "default_mapping_text",
    "enqueue_purge",
    "enqueue_run",
    "get_batch",
    "is_stalled",
    "list_exports",
    "parse_mapping_input",
    "problems_csv",
    "problems_for",
    "purge_batch",
    "request_purge",
    "resolve_server_path",
    "resume",
    "run_batch",
    "save_mapping",
    "save_upload",
]

log = logging.getLogger(__name__)

PURGE_CHUNK = 1000
DEFAULT_SYSTEM = "hệ thống cũ"


# Search hooks --------------------------------------------------------------------------------


def _index_batch(doc_ids: list[str], procs: int = 1) -> None:
    """Hand imported documents to the search index; no-op without one.

    The last step of a run calls it with chunks of thousands of documents still pending
    after the background feed (jobs.search.IndexFeed, see legacy_import_index), and it must
    mark them ``index_status="indexed"``. Indexing must be idempotent (a resumed run hands
    some documents over twice). ``procs`` index processes analyse the documents.
    """
    hook = _search_function("index_documents")
    if hook is not None:
        hook(doc_ids, procs=procs)


def _index_step(run: ImportRun) -> IndexStep | None:
    """Return the run's search indexing step; None without a search index."""
    if _search_function("index_documents") is None:
        return None
    procs = int(current_app.config.get("SEARCH_INDEX_PROCS", 1))
    return IndexStep(run, _index_batch, procs, feed=_search_function("IndexFeed"))


def _awaiting_files(run: ImportRun, source: ExportSource, mapping: Mapping) -> set[Any]:
    """Return the ids of documents that attachment rows still to be read refer to."""
    if run.phase not in ("documents", "attachments"):
        return set()
    rows = read_attachments(source, mapping, start_after=run.checkpoints["attachments"])
    return {legacy_object_id(row.legacy_id) for row in rows if row.legacy_id}


def _unindex_batch(doc_ids: list[str]) -> None:
    """Remove purged documents from the search index; no-op without one."""
    hook = _search_function("remove_documents")
    if hook is not None:
        hook(doc_ids)


def _search_function(name: str) -> Any:
    # The import writes the index itself, in batches, under the index's write lock: the
    # bulk path of the single-writer rule (jobs.search holds the same lock).
    module = importlib.import_module("jobs.search")
    return getattr(module, name, None)


# Batches -------------------------------------------------------------------------------------


def create_batch(
    path: Path,
    *,
    kind: str,
    name: str,
    mapping: Mapping,
    mapping_name: str,
    user: User | None = None,
) -> ImportBatch:
    """Check that the export opens, then record a queued batch."""
    try:
        with open_export(path, mapping.documents.files) as source:
            if read_documents(source, mapping).member is None:
                raise ExportError("Bản xuất không có tệp văn bản (documents.jsonl/.csv).")
    except ExportError as exc:
        raise ValidationFailed(str(exc)) from exc
    batch = ImportBatch(
        source_kind=kind,
        source_path=str(path),
        source_name=name[:300],
        mapping_name=mapping_name[:200],
        mapping_json=json.dumps(mapping.data, ensure_ascii=False, default=str),
        status="queued",
        phase=PHASES[0],
        checkpoints={p: 0 for p in PHASES},
        counts=empty_counts(),
        started_by_id=str(user.pk) if user else None,
        started_by_name=user.full_name if user else "Dòng lệnh (CLI)",
    ).save()
    audit.record("legacy_import.create", obj=batch, detail={"source": batch.source_name})
    return batch


def get_batch(batch_id: str) -> ImportBatch:
    """Return a batch or raise NotFound."""
    try:
        batch = ImportBatch.objects(pk=batch_id).first()
    except Exception:
        batch = None
    if batch is None:
        raise NotFound("Không tìm thấy lô chuyển đổi.")
    return batch


def can_resume(batch: ImportBatch) -> bool:
    """Tell whether a batch may be started again from its checkpoints."""
    if batch.status == "queued":
        return not _job_waiting(batch.job_id)  # its job was lost (Redis emptied, cancelled)
    return batch.status == "failed" or is_stalled(batch)


def _job_waiting(job_id: str | None) -> bool:
    from jobs import fetch_job

    job = fetch_job(job_id) if job_id else None
    return job is not None and job.get_status(refresh=True) in ("queued", "started", "deferred")


def can_purge(batch: ImportBatch) -> bool:
    """Tell whether a batch may be purged now."""
    return batch.status in ("done", "failed", "queued", "purging") or is_stalled(batch)


def enqueue_run(batch: ImportBatch, user: User | None) -> str:
    """Queue the import job of a batch; return the job id (one per attempt)."""
    from jobs import enqueue
    from jobs.legacy_import import run_import

    job_id = f"legacy-import-{batch.pk}-{batch.attempts}"
    job = enqueue(
        run_import,
        str(batch.pk),
        queue="import",
        job_id=job_id,
        owner_id=str(user.pk) if user else batch.started_by_id,
        description=f"Chuyển đổi dữ liệu: {batch.source_name}",
        timeout=int(current_app.config.get("LEGACY_IMPORT_JOB_TIMEOUT", 24 * 3600)),
    )
    ImportBatch.objects(pk=batch.pk).update_one(set__job_id=job.id)
    batch.job_id = job.id
    return str(job.id)


def resume(batch_id: str, user: User | None) -> str:
    """Queue a failed or stalled batch again; it continues from its checkpoints."""
    batch = get_batch(batch_id)
    if not can_resume(batch):
        raise Conflict("Lô này không cần chạy tiếp (đang chạy, đã xong hoặc đã xóa).")
    if batch.status == "running":
        # The old run is silent for longer than LEASE_STALE: release it for the new job.
        ImportBatch.objects(pk=batch.pk, status="running", heartbeat_at=batch.heartbeat_at).update(
            set__status="failed", set__error="Tiến trình nhập dừng đột ngột.", set__lease=None
        )
    audit.record("legacy_import.resume", obj=batch)
    return enqueue_run(get_batch(batch_id), user)


def run_batch(
    batch_id: str, *, progress: ProgressCallback | None = None, force: bool = False
) -> dict[str, Any]:
    """Run (or resume) a batch to the end in this process; return its report."""
    batch, lease = acquire(batch_id, force=force)
    run = ImportRun(batch, lease, progress)
    log.info("legacy import batch=%s attempt=%s phase=%s", batch_id, batch.attempts, run.phase)
    try:
        mapping = parse_mapping(batch.mapping_data, source=batch.mapping_name or "")
        with open_export(batch.source_path, mapping.documents.files) as source:
            fallback = _prepare(run, batch, source, mapping)
            ctx = DocumentContext.load(
                run.batch_id,
                batch.legacy_system or DEFAULT_SYSTEM,
                [batch.started_by_id] if batch.started_by_id else [],
                fallback,
                mapping,
            )
            index = _index_step(run)
            try:
                if index is not None and run.phase in PHASES:
                    # Index the documents stored while the rest of the tables load.
                    index.start(later=_awaiting_files(run, source, mapping))
                if run.phase == "documents":
                    DocumentPhase(run, source, mapping, ctx).run_phase()
                if run.phase == "attachments":
                    AttachmentPhase(run, source, mapping).run_phase()
                if index is not None:
                    index.more()  # the documents that got files, while the history loads
                if run.phase == "history":
                    HistoryPhase(run, source, mapping, fallback).run_phase()
            except BaseException:
                if index is not None:
                    index.abort()
                raise
        if index is not None:
            index.run_step()
        _check_manifest_counts(run, batch)
        run.totals = {p: run.checkpoints[p] for p in PHASES}  # estimates become the counts
        run.phase = "done"
        batch = run.finish(
            {"status": "done", "phase": "done", "finished_at": utcnow(), "totals": run.totals,
             "progress": run.progress()}
        )  # fmt: skip
        run.report_progress()
    except LeaseLost:
        raise
    except Exception as exc:
        message = _failure_message(exc)
        log.exception("legacy import failed batch=%s", batch_id)
        with contextlib.suppress(LeaseLost):
            run.finish({"status": "failed", "error": message})
        raise
    audit.record(
        "legacy_import.done",
        obj=batch,
        detail={"documents": batch.counts.get("documents"), "problems": batch.problem_count},
    )
    return batch_report(batch)


def _failure_message(exc: Exception) -> str:
    if isinstance(exc, ExportError | MappingError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"Không đọc được bản xuất: {exc.strerror or exc}."
    if isinstance(exc, Conflict):
        return exc.message
    return "Lỗi hệ thống khi nhập; dữ liệu đã nhập được giữ, hãy bấm 'Chạy tiếp'."


def _prepare(
    run: ImportRun, batch: ImportBatch, source: ExportSource, mapping: Mapping
) -> dt.datetime:
    """Undo problems past the checkpoints, read the manifest, size the tables."""
    run.roll_back_problems()
    manifest = read_manifest(source)
    ImportProblem.objects(batch_id=run.batch_id, table="manifest").delete()
    entries = [
        {"batch_id": run.batch_id, "table": "manifest", "row": None, "legacy_id": None,
         "kind": p.kind, "reason": p.reason, "severity": "warning"}
        for p in manifest.problems
    ]  # fmt: skip
    if entries:
        ImportProblem._get_collection().insert_many(entries)
    run.problem_count = ImportProblem.objects(batch_id=run.batch_id).count()
    readers: dict[str, TableReader[Any]] = {
        "documents": read_documents(source, mapping),
        "attachments": read_attachments(source, mapping),
        "history": read_history(source, mapping),
    }
    run.totals = {
        table: manifest.counts.get(table) or estimate_rows(source, reader)
        for table, reader in readers.items()
    }
    system = manifest.system or batch.legacy_system or DEFAULT_SYSTEM
    ImportBatch.objects(pk=run.batch_id, lease=run.lease).update_one(
        set__legacy_system=system[:120],
        set__organization=manifest.organization[:300],
        set__manifest={
            "present": manifest.present,
            "counts": manifest.counts,
            "exported_at": manifest.exported_at.isoformat() if manifest.exported_at else None,
        },
        set__totals=run.totals,
        set__problem_count=run.problem_count,
        set__progress=run.progress(),
    )
    batch.legacy_system = system[:120]
    run.report_progress()
    fallback = manifest.exported_at or batch.created_at or utcnow()
    if fallback.tzinfo is None:
        fallback = fallback.replace(tzinfo=dt.UTC)
    return fallback


def _check_manifest_counts(run: ImportRun, batch: ImportBatch) -> None:
    """Warn when the manifest claims other counts than the export holds."""
    claimed = (ImportBatch.objects(pk=run.batch_id).only("manifest").first() or batch).manifest
    entries = []
    for table in PHASES:
        expected = (claimed.get("counts") or {}).get(table)
        actual = run.counts[table]["total"]
        if isinstance(expected, int) and expected != actual:
            entries.append(
                {"batch_id": run.batch_id, "table": "manifest", "row": None, "legacy_id": None,
                 "kind": "count_mismatch", "severity": "warning",
                 "reason": f"manifest.json ghi {expected} dòng {table}, bản xuất có {actual}."}
            )  # fmt: skip
    if entries:
        ImportProblem._get_collection().insert_many(entries)
        run.problem_count += len(entries)
        ImportBatch.objects(pk=run.batch_id, lease=run.lease).update_one(
            set__problem_count=run.problem_count
        )


# Purge ---------------------------------------------------------------------------------------


def request_purge(batch_id: str, user: User | None) -> ImportBatch:
    """Mark a batch for purging (no new run can start on it)."""
    batch = get_batch(batch_id)
    if not can_purge(batch):
        raise Conflict("Lô đang chạy: chờ nó dừng rồi mới xóa được.")
    ImportBatch.objects(pk=batch.pk).update_one(set__status="purging", set__lease=None)
    audit.record("legacy_import.purge_requested", obj=batch)
    return get_batch(batch_id)


def purge_batch(batch_id: str, actor_name: str | None = None) -> dict[str, int]:
    """Delete every document and file of a batch marked for purging (resumable)."""
    batch = get_batch(batch_id)
    if batch.status != "purging":
        raise Conflict("Lô chưa được yêu cầu xóa.")
    collection = Document._get_collection()
    documents = 0
    while True:
        ids = [d["_id"] for d in collection.find({"import_batch_id": batch_id}, {"_id": 1})
               .limit(PURGE_CHUNK)]  # fmt: skip
        if not ids:
            break
        _unindex_batch([str(i) for i in ids])
        documents += collection.delete_many({"_id": {"$in": ids}}).deleted_count
    db = get_db()
    id_range = file_id_range(batch_id)
    files = db["fs.files"].delete_many({"_id": id_range}).deleted_count
    db["fs.chunks"].delete_many({"files_id": id_range})
    if batch.source_kind == "upload":
        Path(batch.source_path).unlink(missing_ok=True)
    counts = {"documents": documents, "files": files}
    ImportBatch.objects(pk=batch.pk).update_one(
        set__status="purged",
        set__purged_at=utcnow(),
        set__purged_by_name=actor_name or audit.current_actor().name,
        set__purge_counts=counts,
    )
    audit.record("legacy_import.purge", obj=batch, detail=counts)
    log.info("legacy import purged batch=%s documents=%d files=%d", batch_id, documents, files)
    return counts


def enqueue_purge(batch: ImportBatch, user: User) -> str:
    """Queue the purge job of a batch marked for purging; return the job id."""
    from jobs import enqueue
    from jobs.legacy_import import purge_import

    job = enqueue(
        purge_import,
        str(batch.pk),
        str(user.pk),
        queue="import",
        job_id=f"legacy-purge-{batch.pk}",
        owner_id=str(user.pk),
        description=f"Xóa lô chuyển đổi: {batch.source_name}",
        timeout=int(current_app.config.get("LEGACY_IMPORT_JOB_TIMEOUT", 24 * 3600)),
    )
    return str(job.id)
