"""History phase: the old processing trace becomes read-only history entries, in bulk.

An entry is keyed by (legacy id, history row): a row is pushed only if its document holds no
entry of that row yet, so a resumed run never repeats a line of the trace.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId

from models.document import Document
from workflows.errors import Conflict
from workflows.legacy import WARNING, ExportSource, HistoryRow, Mapping, read_history
from workflows.legacy_import_files import find_targets, not_imported
from workflows.legacy_import_run import ImportRun, update_each

TABLE = "history"
BATCH_ROWS = 2000
UNKNOWN_ACTOR = "Không rõ người xử lý"
LEGACY_ACTION = "legacy"


def build_entry(row: HistoryRow, fallback_time: dt.datetime) -> dict[str, Any]:
    """Return the read-only history entry of one legacy row (MongoDB form)."""
    actor = row.actor or UNKNOWN_ACTOR
    detail: dict[str, Any] = {"row": row.row}
    if row.unit:
        detail["unit"] = row.unit
    label = row.action or "(không ghi thao tác)"
    if "time" in row.unparsed:
        detail["time_text"] = row.unparsed["time"]
        label += f" (thời gian ghi ở hệ thống cũ: '{row.unparsed['time']}')"
    if row.html:
        detail["html"] = {k.replace(".", "·"): v for k, v in row.html.items()}
    # The raw form of HistoryEntry(...).to_mongo(), written directly for speed (tests compare).
    data: dict[str, Any] = {
        "at": (row.time or fallback_time).astimezone(dt.UTC),
        "actor_name": f"{actor} – {row.unit}" if row.unit else actor,
        "action": LEGACY_ACTION,
        "label": label,
        "detail": detail,
        "legacy": True,
    }
    if row.note:
        data["comment"] = row.note
    return data


class HistoryPhase:
    """Stream history.csv into the documents' history from the run's checkpoint."""

    def __init__(
        self, run: ImportRun, source: ExportSource, mapping: Mapping, fallback_time: dt.datetime
    ) -> None:
        self.run = run
        self.source = source
        self.mapping = mapping
        self.fallback_time = fallback_time
        self.collection = Document._get_collection()

    def run_phase(self) -> None:
        start = self.run.checkpoints[TABLE]
        reader = read_history(self.source, self.mapping, start_after=start)
        pending: list[HistoryRow] = []
        last = start
        for row in reader:
            last = row.row
            if not self.run.rejected(TABLE, row):
                pending.append(row)
            if len(pending) >= BATCH_ROWS or self.run.must_flush:
                self._flush(pending, last)
                pending = []
        self._flush(pending, max(last, reader.rows_read), next_phase="indexing")

    def _flush(self, rows: list[HistoryRow], last_row: int, next_phase: str | None = None) -> None:
        run = self.run
        projection = {"history.detail.row": 1, "created_at": 1}
        targets = find_targets([r.legacy_id or "" for r in rows], projection)
        present: dict[ObjectId, set[int]] = {}
        for doc in targets.values():
            rows_of = ((h.get("detail") or {}).get("row") for h in doc.get("history") or [])
            present[doc["_id"]] = {r for r in rows_of if isinstance(r, int)}
        pushes: dict[ObjectId, list[dict[str, Any]]] = {}
        for row in rows:
            legacy_id = row.legacy_id or ""
            target = targets.get(legacy_id)
            if not_imported(run, TABLE, row.row, legacy_id, target):
                continue
            assert target is not None
            run.count(TABLE, "imported")
            for problem in row.warnings:
                run.problem(TABLE, row.row, legacy_id, problem.kind, problem.reason, WARNING)
            if row.row in present[target["_id"]]:
                continue  # pushed by a run killed before its checkpoint
            # An unreadable time is placed at the document's own date, the text kept on it.
            fallback = target.get("created_at") or self.fallback_time
            if fallback.tzinfo is None:
                fallback = fallback.replace(tzinfo=dt.UTC)
            pushes.setdefault(target["_id"], []).append(build_entry(row, fallback))
        if pushes:
            operations = []
            for doc_id, entries in pushes.items():
                rows_pushed = [e["detail"]["row"] for e in entries]
                operations.append(
                    (
                        {"_id": doc_id, "history.detail.row": {"$nin": rows_pushed}},
                        {"$push": {"history": {"$each": entries}}},
                    )
                )
            if update_each(self.collection, operations) != len(operations):
                raise Conflict("Lịch sử văn bản chuyển đổi bị thay đổi trong lúc nhập; "
                               "hãy chạy tiếp lô.")  # fmt: skip
        run.commit(TABLE, last_row, next_phase=next_phase)
