"""Parsed rows of a legacy export and the problems found on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

REJECT = "reject"
WARNING = "warning"

# Stable problem kinds (the report stores these; reasons are the Vietnamese text).
MISSING_LEGACY_ID = "missing_legacy_id"
LEGACY_ID_TOO_LONG = "legacy_id_too_long"
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
INVALID_DIRECTION = "invalid_direction"
EXTRA_COLUMNS = "extra_columns"
CSV_ERROR = "csv_error"
MISSING_FILE_PATH = "missing_file_path"
UNSAFE_PATH = "unsafe_path"
INVALID_DATE = "invalid_date"
UNKNOWN_LABEL = "unknown_label"
TRUNCATED = "truncated"
INVALID_SIZE = "invalid_size"
INVALID_SHA256 = "invalid_sha256"
ENCODING_FALLBACK = "encoding_fallback"
MISSING_COLUMN = "missing_column"
MISSING_MANIFEST = "missing_manifest"
MALFORMED_MANIFEST = "malformed_manifest"
DUPLICATE = "duplicate"  # decided with DuplicateTracker
ALREADY_IMPORTED = "already_imported"  # decided by the orchestrator (database lookup)

FIELD_LABELS = {
    "legacy_id": "số hiệu cũ (legacy_id)",
    "direction": "chiều văn bản",
    "number": "số, ký hiệu",
    "doc_type": "loại văn bản",
    "agency": "cơ quan ban hành",
    "signed_date": "ngày ký",
    "received_date": "ngày đến",
    "arrival_number": "số đến",
    "subject": "trích yếu",
    "signer": "người ký",
    "recipients": "nơi nhận",
    "urgency": "độ khẩn",
    "secrecy": "độ mật",
    "deadline": "hạn xử lý",
    "status_text": "trạng thái",
    "body_text": "nội dung",
    "file": "đường dẫn tệp",
    "name": "tên tệp",
    "size": "kích thước",
    "sha256": "sha256",
    "time": "thời gian",
    "actor": "người xử lý",
    "unit": "đơn vị",
    "action": "thao tác",
    "note": "ghi chú",
}


@dataclass(slots=True, frozen=True)
class Problem:
    """One thing wrong with a row (or a file): stable ``kind``, Vietnamese ``reason``."""

    kind: str
    reason: str
    field: str | None = None
    severity: str = WARNING  # REJECT: the row must not be imported


@dataclass(slots=True)
class Row:
    """What every parsed row carries besides its fields.

    ``row`` is the 1-based record number in its file (header and blank lines excluded),
    ``line`` the physical line where the record starts. ``raw`` is the source record as read
    (column -> value), ``raw_text`` the line itself when it could not be parsed. ``html``
    keeps the original of fields that held HTML; ``unparsed`` keeps, as text, values that
    could not be converted (impossible dates, unknown labels); ``extra`` holds unmapped columns.
    """

    row: int
    line: int
    legacy_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    raw_text: str | None = None
    problems: list[Problem] = field(default_factory=list)
    html: dict[str, str] = field(default_factory=dict)
    unparsed: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def rejected(self) -> bool:
        """Tell whether a problem forbids importing the row."""
        return any(p.severity == REJECT for p in self.problems)

    @property
    def reject_reason(self) -> str | None:
        """Return the Vietnamese reasons for rejecting the row, or None."""
        reasons = [p.reason for p in self.problems if p.severity == REJECT]
        return "; ".join(reasons) if reasons else None

    @property
    def warnings(self) -> list[Problem]:
        """Return the problems that do not prevent the import."""
        return [p for p in self.problems if p.severity == WARNING]

    def report(self) -> list[dict[str, Any]]:
        """Return the row's problems as report entries {row, legacy_id, kind, reason, severity}."""
        return [
            {"row": self.row, "legacy_id": self.legacy_id, "kind": p.kind, "reason": p.reason,
             "severity": p.severity}
            for p in self.problems
        ]  # fmt: skip


@dataclass(slots=True)
class DocumentRow(Row):
    """A document: dates are ``date`` (or aware ``datetime`` when a time was written)."""

    direction: str | None = None  # incoming | outgoing | internal
    number: str = ""
    doc_type: str = ""
    agency: str = ""
    signed_date: date | None = None
    received_date: date | None = None
    arrival_number: str = ""
    subject: str = ""
    signer: str = ""
    recipients: list[str] = field(default_factory=list)
    urgency: int | None = None  # 0 Thường, 1 Khẩn, 2 Thượng khẩn, 3 Hỏa tốc
    secrecy: int | None = None  # 0 Thường, 1 Mật, 2 Tối mật, 3 Tuyệt mật
    deadline: date | None = None
    status_text: str = ""
    body_text: str = ""


@dataclass(slots=True)
class AttachmentRow(Row):
    """An attachment: ``file`` is the path as written ('/' separators, NFC)."""

    file: str = ""
    name: str = ""
    size: int | None = None
    sha256: str = ""  # lowercase hex, "" when absent or invalid


@dataclass(slots=True)
class HistoryRow(Row):
    """A legacy processing event; ``time`` is an aware datetime (midnight if no time)."""

    time: datetime | None = None
    actor: str = ""
    unit: str = ""
    action: str = ""
    note: str = ""


@dataclass(slots=True)
class Manifest:
    """What the export claims about itself (``present`` is False without manifest.json)."""

    present: bool = False
    system: str = ""
    organization: str = ""
    exported_at: datetime | None = None
    format_version: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
