"""Legacy imports: one batch per run of an export, its problems, saved column mappings."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bson import ObjectId
from mongoengine import (
    DateTimeField,
    DictField,
    Document,
    FloatField,
    IntField,
    StringField,
)

from models.audit import audited, utcnow
from models.document import StoredFile

STATUSES = {
    "queued": "Đang chờ",
    "running": "Đang chạy",
    "done": "Hoàn thành",
    "failed": "Bị lỗi / dừng giữa chừng",
    "purging": "Đang xóa",
    "purged": "Đã xóa",
}
PHASES = ("documents", "attachments", "history")
PHASE_LABELS = {
    "documents": "Văn bản",
    "attachments": "Tệp đính kèm",
    "history": "Lịch sử xử lý",
    "indexing": "Lập chỉ mục tìm kiếm",
    "done": "Xong",
}
TABLE_LABELS = {**PHASE_LABELS, "manifest": "manifest.json"}


def empty_counts() -> dict[str, dict[str, int]]:
    """Return the report's zeroed counters; each table's total is the sum of the others."""
    return {
        "documents": {
            "total": 0, "imported": 0, "already_imported": 0, "duplicates": 0, "rejected": 0,
        },
        "attachments": {
            "total": 0, "stored": 0, "flawed": 0, "missing": 0, "already_imported": 0,
            "duplicates": 0, "rejected": 0,
        },
        "history": {"total": 0, "imported": 0, "already_imported": 0, "rejected": 0},
    }  # fmt: skip


def legacy_object_id(legacy_id: str) -> ObjectId:
    """Return the document id a legacy id always maps to (so writes are idempotent)."""
    digest = hashlib.blake2b(
        b"vanthu/legacy-document/" + legacy_id.encode("utf-8"), digest_size=12
    ).digest()
    return ObjectId(digest)


def legacy_file_id(batch_id: str, row: int) -> ObjectId:
    """Return the GridFS id of the file of attachments row ``row`` of a batch.

    Eight bytes name the batch and four the row, so everything a batch wrote to GridFS,
    even chunks of a file a killed run never finished, is one id range (``file_id_range``).
    """
    prefix = hashlib.blake2b(b"vanthu/legacy-file/" + batch_id.encode(), digest_size=8).digest()
    return ObjectId(prefix + row.to_bytes(4, "big"))


def file_id_range(batch_id: str, first_row: int = 0) -> dict[str, ObjectId]:
    """Return a ``{"$gte", "$lte"}`` filter on the GridFS ids of a batch from ``first_row``."""
    return {
        "$gte": legacy_file_id(batch_id, first_row),
        "$lte": legacy_file_id(batch_id, 2**32 - 1),
    }


class LegacyFile(StoredFile):
    """A migrated attachment: which export row and path it came from (its idempotency key)."""

    legacy_path = StringField(max_length=1000)  # as written in attachments.csv
    legacy_key = StringField(max_length=1000)  # casefolded path: one file per (document, path)
    legacy_row = IntField()
    legacy_status = StringField(max_length=40)  # ok or the reader's most serious flag


class ImportBatch(Document):
    """One run of a legacy export into the database (re-runs are new batches)."""

    source_kind = StringField(required=True, choices=("path", "upload", "cli"))
    source_path = StringField(required=True)  # folder or .zip on this server
    source_name = StringField(max_length=300)  # what the admin chose or uploaded
    mapping_name = StringField(max_length=200)
    mapping_json = StringField(required=True)  # the merged mapping, as data (JSON text)
    status = StringField(required=True, default="queued", choices=list(STATUSES))
    phase = StringField(default="documents")
    checkpoints = DictField()  # table -> last committed row
    counts = DictField()  # see empty_counts()
    totals = DictField()  # table -> estimated rows (progress bar)
    progress = DictField()  # rows done/total, files, rate, ETA at the last checkpoint
    problem_count = IntField(default=0)
    rejected_count = IntField(default=0)
    files_bytes = IntField(default=0)
    legacy_system = StringField(max_length=120)
    organization = StringField(max_length=300)
    manifest = DictField()  # what the export claims (counts, exported_at)
    started_by_id = StringField()
    started_by_name = StringField(max_length=200)
    job_id = StringField()
    attempts = IntField(default=0)
    lease = StringField()  # the run currently allowed to write this batch
    created_at = DateTimeField(default=utcnow)
    started_at = DateTimeField()
    heartbeat_at = DateTimeField()
    finished_at = DateTimeField()
    active_seconds = FloatField(default=0)  # time spent running, summed over attempts
    error = StringField()
    purged_at = DateTimeField()
    purged_by_name = StringField(max_length=200)
    purge_counts = DictField()

    meta = {
        "collection": "import_batch",
        "indexes": ["-created_at", "status"],
        "ordering": ["-created_at"],
    }

    def __str__(self) -> str:
        return f"Lô chuyển đổi {self.source_name or self.source_path}"

    @property
    def mapping_data(self) -> dict[str, Any]:
        """Return the stored mapping data."""
        data: dict[str, Any] = json.loads(self.mapping_json or "{}")
        return data

    @property
    def status_label(self) -> str:
        return STATUSES.get(self.status, self.status)


class ImportProblem(Document):
    """One rejection or warning of a batch (kept apart: an export can have 100k of them)."""

    batch_id = StringField(required=True)
    table = StringField(required=True)  # documents, attachments, history, manifest
    row = IntField()
    legacy_id = StringField()
    kind = StringField(required=True)
    reason = StringField(required=True)
    severity = StringField(default="warning")  # reject or warning

    meta = {
        "collection": "import_problem",
        "indexes": [("batch_id", "table", "row")],
        "ordering": ["table", "row"],
    }


class ImportMapping(Document):
    """A column mapping an admin saved (YAML text, validated before it is stored)."""

    name = StringField(required=True, unique=True, max_length=200)
    text = StringField(required=True)
    updated_at = DateTimeField(default=utcnow)
    updated_by_name = StringField(max_length=200)

    meta = {"collection": "import_mapping", "ordering": ["name"]}

    def __str__(self) -> str:
        return self.name


audited(ImportMapping)
