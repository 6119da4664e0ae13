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
import csv
import datetime as dt
import importlib
import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from flask import current_app
from mongoengine.connection import get_db

from models import audit
from models.audit import utcnow
from models.document import Document
from models.legacy_import import (
    PHASES,
    ImportBatch,
    ImportMapping,
    ImportProblem,
    empty_counts,
    file_id_range,
)
from models.user import User
from workflows.errors import Conflict, NotFound, ValidationFailed
from workflows.legacy import (
    ExportError,
    ExportSource,
    Mapping,
    MappingError,
    default_mapping,
    estimate_rows,
    open_export,
    parse_mapping,
    parse_mapping_text,
    read_attachments,
    read_documents,
    read_history,
    read_manifest,
)
from workflows.legacy.mapping import DEFAULT_MAPPING_PATH
from workflows.legacy.reader import TableReader
from workflows.legacy_import_documents import DocumentContext, DocumentPhase
from workflows.legacy_import_files import AttachmentPhase
from workflows.legacy_import_history import HistoryPhase
from workflows.legacy_import_run import (
    INFO,
    LEASE_STALE,
    ImportRun,
    LeaseLost,
    ProgressCallback,
    acquire,
)

log = logging.getLogger(__name__)

INLINE_PROBLEMS = 1000
PURGE_CHUNK = 1000
DEFAULT_SYSTEM = "hệ thống cũ"
SEVERITY_LABELS = {"reject": "Loại bỏ", "warning": "Cảnh báo", INFO: "Thông tin"}
TABLE_ORDER = ("manifest", "documents", "attachments", "history")


# Search hooks --------------------------------------------------------------------------------


def _index_batch(doc_ids: list[str]) -> None:
    """Hand imported (or changed) documents to the search index; no-op without one.

    The single place the search layer plugs in: it is called after every committed batch
    of documents and again for documents whose attachments added text. Indexing must be
    idempotent (a resumed run hands some documents over twice).
    """
    hook = _search_function("index_documents")
    if hook is not None:
        hook(doc_ids)


def _unindex_batch(doc_ids: list[str]) -> None:
    """Remove purged documents from the search index; no-op without one."""
    hook = _search_function("remove_documents")
    if hook is not None:
        hook(doc_ids)


def _search_function(name: str) -> Any:
    try:
        module = importlib.import_module("search_index")
    except ImportError:
        return None
    return getattr(module, name, None)


# Sources and mappings ------------------------------------------------------------------------


def allowed_roots() -> list[Path]:
    """Return the server folders exports may be imported from (LEGACY_IMPORT_ROOTS)."""
    roots = current_app.config.get("LEGACY_IMPORT_ROOTS") or []
    if isinstance(roots, str):
        roots = [r for r in roots.split(os.pathsep) if r.strip()]
    return [Path(r).expanduser().resolve() for r in roots]


def resolve_server_path(text: str) -> Path:
    """Return an export path on this server if it lies under an allowed root."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("Vui lòng nhập đường dẫn bản xuất trên máy chủ.")
    roots = allowed_roots()
    if not roots:
        raise ValidationFailed(
            "Máy chủ chưa cấu hình thư mục được phép nhập (LEGACY_IMPORT_ROOTS): hãy tải tệp "
            ".zip lên hoặc nhờ quản trị máy chủ cấu hình."
        )
    path = Path(text).expanduser().resolve()
    if not any(path == root or path.is_relative_to(root) for root in roots):
        raise ValidationFailed(
            f"Đường dẫn '{text}' không nằm trong thư mục được phép nhập: "
            + ", ".join(str(r) for r in roots)
        )
    if not (path.is_dir() or (path.is_file() and path.suffix.lower() == ".zip")):
        raise ValidationFailed(f"Không tìm thấy thư mục hoặc tệp .zip '{text}' trên máy chủ.")
    return path


def list_exports(limit: int = 200) -> list[Path]:
    """Return exports found in the allowed roots (the roots and their children)."""
    found: list[Path] = []
    markers = ("manifest.json", "documents.jsonl", "documents.csv")
    for root in allowed_roots():
        candidates = [root]
        try:
            candidates += sorted(root.iterdir())
        except OSError:
            continue
        for path in candidates:
            is_export = path.is_dir() and any((path / m).exists() for m in markers)
            if is_export or (path.is_file() and path.suffix.lower() == ".zip"):
                found.append(path)
            if len(found) >= limit:
                return found
    return found


def upload_dir() -> Path:
    """Return the folder where uploaded export zips are kept."""
    path = Path(current_app.config["DATA_DIR"]) / "legacy-imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(stream: IO[bytes], filename: str) -> Path:
    """Store an uploaded export .zip on the server (streamed to disk); return its path."""
    target = upload_dir() / f"{uuid.uuid4().hex}.zip"
    head = stream.read(4)
    if head != b"PK\x03\x04":
        raise ValidationFailed(f"Tệp «{filename}» không phải tệp .zip.")
    with open(target, "wb") as out:
        out.write(head)
        while chunk := stream.read(1 << 20):
            out.write(chunk)
    return target


def default_mapping_text() -> str:
    """Return the default mapping as the admin sees it (commented YAML)."""
    return DEFAULT_MAPPING_PATH.read_text(encoding="utf-8")


def parse_mapping_input(text: str) -> Mapping:
    """Validate mapping text; raise ValidationFailed listing every problem."""
    try:
        return parse_mapping_text(text)
    except MappingError as exc:
        raise ValidationFailed(str(exc)) from exc


def save_mapping(name: str, text: str, user: User, mapping_id: str | None = None) -> ImportMapping:
    """Validate and store a named mapping (new, or replacing ``mapping_id``)."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed("Vui lòng đặt tên cho ánh xạ cột.")
    parse_mapping_input(text)
    clash = ImportMapping.objects(name=name).first()
    record = ImportMapping.objects(pk=mapping_id).first() if mapping_id else None
    if clash is not None and (record is None or clash.pk != record.pk):
        raise ValidationFailed(f"Đã có ánh xạ tên '{name}'.")
    record = record or ImportMapping()
    record.name, record.text = name, text
    record.updated_at, record.updated_by_name = utcnow(), user.full_name
    record.save()  # audited: every change of a mapping is in the log
    return record


def choose_mapping(mapping_id: str | None = None, text: str | None = None) -> tuple[Mapping, str]:
    """Return the mapping for a new batch: pasted text, a saved one, or the default."""
    if text and text.strip():
        return parse_mapping_input(text), "Ánh xạ nhập tay"
    if mapping_id:
        record = ImportMapping.objects(pk=mapping_id).first()
        if record is None:
            raise ValidationFailed("Không tìm thấy ánh xạ cột đã chọn.")
        return parse_mapping_input(record.text), record.name
    mapping = default_mapping()
    return mapping, mapping.name


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


def is_stalled(batch: ImportBatch) -> bool:
    """Tell whether a running batch stopped reporting (its process died)."""
    if batch.status != "running" or batch.heartbeat_at is None:
        return False
    beat = batch.heartbeat_at
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=dt.UTC)
    return beat < utcnow() - LEASE_STALE


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
            if run.phase == "documents":
                DocumentPhase(run, source, mapping, ctx, _index_batch).run_phase()
            if run.phase == "attachments":
                AttachmentPhase(run, source, mapping, _index_batch).run_phase()
            if run.phase == "history":
                HistoryPhase(run, source, mapping, fallback).run_phase()
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


# Report --------------------------------------------------------------------------------------


def counts_of(batch: ImportBatch) -> dict[str, dict[str, int]]:
    """Return the batch's counters with every key present."""
    counts = empty_counts()
    for table, values in (batch.counts or {}).items():
        counts.setdefault(table, {}).update(values)
    return counts


def problems_for(batch_id: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Return up to ``limit`` problems: rejections first, then warnings, then notes."""
    limit = INLINE_PROBLEMS if limit is None else limit
    out: list[dict[str, Any]] = []
    for severity in ("reject", "warning", INFO):
        for table in TABLE_ORDER:
            if len(out) >= limit:
                return out
            query = ImportProblem.objects(batch_id=batch_id, table=table, severity=severity)
            for p in query.order_by("row").limit(limit - len(out)):
                out.append(
                    {"row": p.row, "legacy_id": p.legacy_id, "kind": p.kind, "reason": p.reason,
                     "table": p.table, "severity": p.severity}
                )  # fmt: skip
    return out


def batch_report(batch: ImportBatch, problem_limit: int | None = None) -> dict[str, Any]:
    """Return the report: reconciling totals, problems (capped) and where the CSV is."""
    counts = counts_of(batch)
    problems = problems_for(str(batch.pk), problem_limit)
    seconds = batch.active_seconds or 0
    return {
        "batch_id": str(batch.pk),
        "status": batch.status,
        "source": batch.source_name,
        "legacy_system": batch.legacy_system,
        "documents": counts["documents"],
        "attachments": counts["attachments"],
        "history": counts["history"],
        "problems": problems,
        "problem_count": batch.problem_count,
        "problems_truncated": batch.problem_count > len(problems),
        "problems_csv": f"/api/v1/legacy-imports/{batch.pk}/problems.csv",
        "started_at": batch.started_at.isoformat() if batch.started_at else None,
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
        "seconds": seconds,
        "documents_per_second": round(counts["documents"]["total"] / seconds, 1)
        if seconds
        else None,
    }


def batch_status(batch: ImportBatch) -> dict[str, Any]:
    """Return what the progress bar polls: status, phase, progress, and the report when done."""
    out: dict[str, Any] = {
        "batch_id": str(batch.pk),
        "status": batch.status,
        "status_label": batch.status_label,
        "phase": batch.phase,
        "stalled": is_stalled(batch),
        "progress": batch.progress or {"done": 0, "total": 0},
        "counts": counts_of(batch),
        "problem_count": batch.problem_count,
        "error": batch.error,
        "job_id": batch.job_id,
    }
    if batch.status in ("done", "purged"):
        out["report"] = batch_report(batch, problem_limit=0)
    return out


def problems_csv(batch_id: str) -> Iterator[str]:
    """Yield every problem of a batch as CSV text (UTF-8 with BOM, for Excel)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    writer.writerow(["Bảng", "Dòng", "Số hiệu cũ", "Mức độ", "Loại", "Lý do"])
    for table in TABLE_ORDER:
        query = ImportProblem.objects(batch_id=batch_id, table=table).order_by("row")
        for p in query.no_cache():
            severity = SEVERITY_LABELS.get(p.severity, p.severity)
            writer.writerow([table, p.row or "", p.legacy_id or "", severity, p.kind, p.reason])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
