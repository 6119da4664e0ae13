"""Documents phase: each accepted row becomes a read-only migrated Document, in bulk.

Documents get the id ``legacy_object_id(legacy_id)``, so inserting a row twice is a
duplicate-key error, never a second document: a re-run reports "already imported" and a
resumed run recognizes the rows it had written before it was killed (same batch, same row).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError

from models.audit import utcnow
from models.document import Document
from models.document_type import DocumentType
from models.legacy_import import legacy_object_id
from workflows.legacy import (
    REJECT,
    WARNING,
    DocumentRow,
    DuplicateTracker,
    ExportSource,
    Mapping,
    Problem,
    read_documents,
)
from workflows.legacy_import_run import INFO, ImportRun

TABLE = "documents"
BATCH_ROWS = 500
BATCH_CHARS = 16_000_000  # flush early when bodies are large: memory stays bounded
MAX_LEGACY_ID = 120  # Document.legacy_id
# Document field -> longest value the model accepts.
LIMITS = {
    "notation": 120,
    "doc_type_name": 120,
    "issuer": 300,
    "subject": 2000,
    "status_text": 300,
    "signer_title": 200,
    "signer_name": 200,
}
RECIPIENT_LIMIT = 300
NO_SUBJECT = "(Không có trích yếu)"
DUPLICATE_KEY = 11000
_AUTHORITY_RE = re.compile(r"^(TM|KT|TL|TUQ|Q)(?:\.\s*|\s+)(?=\S)")
_SIGNER_SPLIT_RE = re.compile(r"\s*\n\s*|\s+-\s+")
_LEADING_NUMBER_RE = re.compile(r"^\s*(\d{1,9})(?!\d)")
_DIGITS_RE = re.compile(r"^\d{1,9}$")


@dataclass(slots=True)
class DocumentContext:
    """What every row of one run shares: batch, system name, who may see, type ids."""

    batch_id: str
    legacy_system: str
    visible_user_ids: list[str]
    fallback_time: dt.datetime
    tz: dt.tzinfo
    doc_types: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        batch_id: str,
        legacy_system: str,
        visible_user_ids: list[str],
        fallback_time: dt.datetime,
        mapping: Mapping,
    ) -> DocumentContext:
        types = {t.name.casefold(): t.pk for t in DocumentType.objects.only("name") if t.name}
        return cls(batch_id, legacy_system, visible_user_ids, fallback_time, mapping.timezone,
                   types)  # fmt: skip


def reject_problem(row: DocumentRow) -> Problem | None:
    """Return a rejection the importer adds to the reader's (limits of our model)."""
    if row.legacy_id and len(row.legacy_id) > MAX_LEGACY_ID:
        return Problem(
            "legacy_id_too_long",
            f"Số hiệu cũ dài {len(row.legacy_id)} ký tự, hệ thống chỉ nhận tối đa "
            f"{MAX_LEGACY_ID} ký tự.",
            "legacy_id",
            REJECT,
        )
    return None


def _safe_key(key: str) -> str:
    """Make a source column name usable as a MongoDB key."""
    key = key.replace(".", "·")
    return "＄" + key[1:] if key.startswith("$") else key or "_"


def _safe_dict(values: dict[str, Any]) -> dict[str, Any]:
    return {_safe_key(str(k)): v for k, v in values.items()}


def _date_value(value: dt.date | None) -> dt.datetime | None:
    """Return a date as a DateField stores it (naive midnight)."""
    if value is None:
        return None
    return dt.datetime(value.year, value.month, value.day)


def _as_datetime(value: dt.date | None, tz: dt.tzinfo) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=tz)
    return value.astimezone(dt.UTC)


def split_signer(text: str) -> tuple[str, str, str]:
    """Split a printed signature block into (authority prefix, title, name)."""
    parts = [p for p in _SIGNER_SPLIT_RE.split(text.strip()) if p]
    if not parts:
        return "", "", ""
    if len(parts) == 1:
        only = parts[0]
        if only.upper() != only:  # a name, not a title in capitals
            return "", "", only
        parts = [only, ""]
    name = parts[-1]
    title = " ".join(parts[:-1])
    authority = ""
    match = _AUTHORITY_RE.match(title)
    if match:
        authority = f"{match.group(1)}."
        title = title[match.end() :]
    return authority, title, name


class _Fields:
    """Collects a document's values, cutting those over the model's limits (with warnings)."""

    def __init__(self, row: DocumentRow) -> None:
        self.row = row
        self.values: dict[str, Any] = {}
        self.full: dict[str, Any] = {}
        self.warnings: list[Problem] = []

    def text(self, name: str, value: str, label: str) -> None:
        limit = LIMITS[name]
        if len(value) > limit:
            self.full[name] = value
            self.warnings.append(
                Problem(
                    "truncated",
                    f"{label} dài {len(value)} ký tự, chỉ giữ {limit} ký tự đầu trên văn bản "
                    "(bản đầy đủ lưu ở dữ liệu gốc).",
                    name,
                )
            )
            value = value[:limit]
        self.values[name] = value


def build_document(row: DocumentRow, ctx: DocumentContext) -> tuple[dict[str, Any], list[Problem]]:
    """Return the document to insert (MongoDB form) and the importer's own warnings.

    Written as the raw document mongoengine would produce (``Document.to_mongo``): building
    model objects costs ~1 ms a row, a third of the whole import. The tests check that it
    loads, validates and serializes back unchanged.
    """
    f = _Fields(row)
    f.text("notation", row.number, "Số, ký hiệu")
    f.text("doc_type_name", row.doc_type, "Loại văn bản")
    f.text("issuer", row.agency, "Cơ quan ban hành")
    subject = row.subject
    if not subject:
        subject = NO_SUBJECT
        reason = f"Thiếu trích yếu: ghi tạm '{NO_SUBJECT}'."
        f.warnings.append(Problem("missing_subject", reason, "subject"))
    f.text("subject", subject, "Trích yếu")
    f.text("status_text", row.status_text, "Trạng thái")
    authority, title, name = split_signer(row.signer)
    f.text("signer_title", title, "Chức vụ người ký")
    f.text("signer_name", name, "Người ký")
    recipients = []
    for item in row.recipients:
        if len(item) > RECIPIENT_LIMIT:
            f.full.setdefault("recipients", row.recipients)
            item = item[:RECIPIENT_LIMIT]
        recipients.append(item)
    if "recipients" in f.full:
        reason = (
            f"Có nơi nhận dài quá {RECIPIENT_LIMIT} ký tự, đã cắt (bản đầy đủ lưu ở dữ liệu gốc)."
        )
        f.warnings.append(Problem("truncated", reason, "recipients"))
    secrecy = row.secrecy
    if secrecy is None:
        secrecy = 1 if "secrecy" in row.unparsed else 0
        if secrecy:
            reason = "Độ mật không rõ: tạm xếp mức 'Mật' để không lộ văn bản; cần kiểm tra lại."
            f.warnings.append(Problem("secrecy_assumed", reason, "secrecy"))
    number_match = _LEADING_NUMBER_RE.match(row.number)
    arrival_number = int(row.arrival_number) if _DIGITS_RE.match(row.arrival_number) else None
    arrival_at = _as_datetime(row.received_date, ctx.tz)
    issued = row.signed_date
    created_at = arrival_at or _as_datetime(issued, ctx.tz) or ctx.fallback_time
    raw: dict[str, Any] = {"row": row.row, "line": row.line}
    if row.html:
        raw["html"] = _safe_dict(row.html)
    if row.unparsed:
        raw["unparsed"] = _safe_dict(row.unparsed)
    if row.extra:
        raw["extra"] = _safe_dict(row.extra)
    if row.signer:
        raw["signer"] = row.signer
    if row.arrival_number and arrival_number is None:
        raw["arrival_number"] = row.arrival_number
    if f.full:
        raw["full"] = f.full
    data: dict[str, Any] = {
        "_id": legacy_object_id(row.legacy_id or ""),
        "direction": row.direction,
        "subject": f.values["subject"],
        "signer_authority": authority,
        "recipients_to": [],
        "recipients": recipients,
        "recipient_units": [],
        "urgency": row.urgency if row.urgency is not None else 0,
        "secrecy": secrecy,
        "unit_ids": [],
        "revisions": [],
        "attachments": [],
        "state": "migrated",
        "state_entered_at": created_at,
        "closed": True,
        "assignments": [],
        "history": [],
        "comments": [],
        "pending_user_ids": [],
        "participant_ids": [],
        "watcher_ids": [],
        "visible_user_ids": list(ctx.visible_user_ids),
        "visible_unit_ids": [],
        "migrated": True,
        "legacy_id": row.legacy_id,
        "legacy_system": ctx.legacy_system[:120],
        "import_batch_id": ctx.batch_id,
        "legacy_raw": raw,
        "version": 1,
        "created_at": created_at,
        "updated_at": utcnow(),
        "index_status": "pending",
        "indexed_version": 0,
    }
    optional = {
        "doc_type": ctx.doc_types.get(row.doc_type.casefold()) if row.doc_type else None,
        "number": int(number_match.group(1)) if number_match else None,
        "issued_on": _date_value(issued),
        "content": row.body_text,
        "deadline_on": _date_value(row.deadline),
        "arrival_number": arrival_number,
        "arrival_at": arrival_at,
        **{k: v for k, v in f.values.items() if k != "subject"},
    }
    data.update((k, v) for k, v in optional.items() if v is not None and v != "")
    return data, f.warnings


class DocumentPhase:
    """Stream the documents table into the database from the run's checkpoint."""

    def __init__(
        self,
        run: ImportRun,
        source: ExportSource,
        mapping: Mapping,
        ctx: DocumentContext,
    ) -> None:
        self.run = run
        self.source = source
        self.mapping = mapping
        self.ctx = ctx
        self.collection = Document._get_collection()
        self.tracker = DuplicateTracker()

    def _rebuild_tracker(self, upto: int) -> None:
        """Replay rows 1..upto so duplicates are decided as in an uninterrupted run."""
        if upto <= 0:
            return
        for row in read_documents(self.source, self.mapping):
            if row.row > upto:
                break
            if not row.rejected and reject_problem(row) is None and row.legacy_id:
                self.tracker.first_row(row.legacy_id, row.row)

    def run_phase(self) -> None:
        start = self.run.checkpoints[TABLE]
        self._rebuild_tracker(start)
        reader = read_documents(self.source, self.mapping, start_after=start)
        pending: list[DocumentRow] = []
        chars = 0
        last = start
        for row in reader:
            last = row.row
            if self._classify(row):
                pending.append(row)
                chars += len(row.body_text) + 2000
            if len(pending) >= BATCH_ROWS or chars >= BATCH_CHARS or self.run.must_flush:
                self._flush(pending, last)
                pending, chars = [], 0
        self._flush(pending, max(last, reader.rows_read), next_phase="attachments")

    def _classify(self, row: DocumentRow) -> bool:
        """Count a rejected or duplicate row; return True when the row is to be stored."""
        run = self.run
        extra = reject_problem(row)
        if row.rejected or extra is not None:
            if extra is not None:
                row.problems.insert(0, extra)
            run.count(TABLE, "rejected")
            run.row_problems(TABLE, row)
            return False
        assert row.legacy_id is not None
        duplicate = self.tracker.problem(row.legacy_id, row.row)
        if duplicate is not None:
            run.count(TABLE, "duplicates")
            run.problem(TABLE, row.row, row.legacy_id, duplicate.kind, duplicate.reason, REJECT)
            return False
        return True

    def _flush(self, rows: list[DocumentRow], last_row: int, next_phase: str | None = None) -> None:
        run = self.run
        built: list[tuple[DocumentRow, dict[str, Any], list[Problem]]] = []
        for row in rows:
            data, warnings = build_document(row, self.ctx)
            built.append((row, data, warnings))
        failed = self._insert([data for _, data, _ in built])
        existing = self._existing([built[i][0] for i in failed]) if failed else {}
        for index, (row, _data, warnings) in enumerate(built):
            if index in failed:
                owner = existing.get(row.legacy_id or "")
                if owner != (self.ctx.batch_id, row.row):
                    self._not_imported(row, owner)
                    continue
            run.count(TABLE, "imported")
            run.row_problems(TABLE, row, only_warnings=True)
            for p in warnings:
                run.problem(TABLE, row.row, row.legacy_id, p.kind, p.reason, WARNING)
        run.commit(TABLE, last_row, next_phase=next_phase)

    def _not_imported(self, row: DocumentRow, owner: tuple[str, int] | None) -> None:
        run = self.run
        if owner is not None and owner[0] == self.ctx.batch_id:
            run.count(TABLE, "duplicates")
            run.problem(TABLE, row.row, row.legacy_id, "duplicate",
                        f"Trùng số hiệu cũ '{row.legacy_id}' với dòng {owner[1]}: bỏ qua dòng "
                        "này.", REJECT)  # fmt: skip
            return
        run.count(TABLE, "already_imported")
        run.problem(TABLE, row.row, row.legacy_id, "already_imported",
                    f"Văn bản số hiệu cũ '{row.legacy_id}' đã được nhập trước đây: không nhập "
                    "lại.", INFO)  # fmt: skip

    def _insert(self, docs: list[dict[str, Any]]) -> set[int]:
        """Insert in bulk; return the positions refused as duplicates."""
        if not docs:
            return set()
        try:
            self.collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
            if other:
                raise
            return {int(e["index"]) for e in errors}
        return set()

    def _existing(self, rows: list[DocumentRow]) -> dict[str, tuple[str, int]]:
        """Return legacy id -> (batch id, row) of documents already holding these ids."""
        ids = [r.legacy_id for r in rows if r.legacy_id]
        projection = {"legacy_id": 1, "import_batch_id": 1, "legacy_raw.row": 1}
        found: dict[str, tuple[str, int]] = {}
        oids: list[ObjectId] = [legacy_object_id(i) for i in ids]
        for cursor in (
            self.collection.find({"_id": {"$in": oids}}, projection),
            self.collection.find({"legacy_id": {"$in": ids}}, projection),
        ):
            for raw in cursor:
                key = raw.get("legacy_id")
                if key and key not in found:
                    row = (raw.get("legacy_raw") or {}).get("row") or 0
                    found[key] = (raw.get("import_batch_id") or "", int(row))
            if len(found) == len(set(ids)):
                break
        return found
