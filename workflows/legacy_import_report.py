"""The report of a batch: reconciling totals, problems (inline and CSV), progress."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from models.legacy_import import ImportBatch, ImportProblem, empty_counts
from workflows.legacy_import_run import INFO, is_stalled

INLINE_PROBLEMS = 1000
SEVERITY_LABELS = {"reject": "Loại bỏ", "warning": "Cảnh báo", INFO: "Thông tin"}
TABLE_ORDER = ("manifest", "documents", "attachments", "history")


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
