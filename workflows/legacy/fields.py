"""Turn one raw source record into a typed row, following the mapping's field rules."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from . import rows as r
from .dates import as_datetime, parse_date
from .mapping import Mapping
from .source import clean_member_name
from .text import clean_text, fold_key

MAX_LEGACY_ID = 255
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_SIZE_RE = re.compile(r"^\d+$|^\d{1,3}(?:[.,\s]\d{3})+$")
_RECIPIENT_SPLIT_RE = re.compile(r"\s*[;\n]\s*")

# How each field is read: single-line text, multi-line text, date, label, ...
KINDS = {
    "legacy_id": "line",
    "direction": "direction",
    "number": "line",
    "doc_type": "line",
    "agency": "line",
    "signed_date": "date",
    "received_date": "date",
    "arrival_number": "line",
    "subject": "line",
    "signer": "text",
    "recipients": "list",
    "urgency": "level",
    "secrecy": "level",
    "deadline": "date",
    "status_text": "text",
    "body_text": "text",
    "file": "path",
    "name": "line",
    "size": "size",
    "sha256": "sha256",
    "time": "datetime",
    "actor": "line",
    "unit": "line",
    "action": "line",
    "note": "text",
}
ROW_TYPES: dict[str, Callable[..., r.Row]] = {
    "documents": r.DocumentRow,
    "attachments": r.AttachmentRow,
    "history": r.HistoryRow,
}


def value_to_text(value: Any) -> str:
    """Render a raw JSON/CSV value as text (None -> "", 12.0 -> "12", lists joined by '; ')."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "; ".join(value_to_text(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def lookup(record: dict[str, Any], key: str) -> Any:
    """Get a key from a record, following 'a.b' paths into nested JSON objects."""
    if key in record:
        return record[key]
    if "." in key:
        node: Any = record
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node
    return None


class RowBuilder:
    """Build typed rows of one table from raw records (column name -> value)."""

    def __init__(self, mapping: Mapping, table: str) -> None:
        self.mapping = mapping
        self.table = table
        self.row_type = ROW_TYPES[table]
        self.columns = dict(mapping.table(table).columns)  # source column -> field
        self._labels = {
            name: ", ".join(str(k) for k in (mapping.data.get("values") or {}).get(name, {}))
            for name in ("direction", "urgency", "secrecy")
        }

    def bind_header(self, header: list[str]) -> list[r.Problem]:
        """Match the mapping's source columns to a CSV header; report mapped columns absent."""
        problems = []
        exact = set(header)
        folded: dict[str, str] = {}
        for name in header:
            folded.setdefault(fold_key(name), name)
        bound: dict[str, str] = {}
        for source, target in self.columns.items():
            real = source if source in exact else folded.get(fold_key(source))
            if real is None:
                problems.append(
                    r.Problem(
                        r.MISSING_COLUMN,
                        f"Không có cột '{source}' ({r.FIELD_LABELS[target]}) trong tiêu đề.",
                        target,
                    )
                )
            else:
                bound[real] = target
        self.columns = bound
        return problems

    def build(self, row: int, line: int, record: dict[str, Any]) -> r.Row:
        """Convert one raw record into a typed row with its problems."""
        out = self.row_type(row=row, line=line, raw=record)
        values: dict[str, Any] = {}
        mapped_sources = set()
        for source, target in self.columns.items():
            mapped_sources.add(source)
            values[target] = self._convert(out, target, lookup(record, source))
        for key, value in record.items():
            if key not in mapped_sources and not key.startswith("_"):
                text = clean_text(value_to_text(value)).text
                if text:
                    out.extra[key] = text
        self._apply_defaults(out, values)
        for name, value in values.items():
            if value is not None:
                setattr(out, name, value)
        out.legacy_id = values.get("legacy_id") or None
        self._check_identity(out)
        return out

    def _convert(self, out: r.Row, name: str, value: Any) -> Any:
        kind = KINDS[name]
        if kind == "list" and isinstance(value, list):
            items = [self._text(out, name, value_to_text(v), True) for v in value]
            return [i for i in items if i]
        text = self._text(out, name, value_to_text(value), kind not in ("text", "list"))
        if kind in ("line", "text"):
            return text
        if kind == "list":
            return [" ".join(part.split()) for part in _RECIPIENT_SPLIT_RE.split(text) if part]
        if not text:
            return None
        if kind in ("date", "datetime"):
            parsed = parse_date(text, tz=self.mapping.timezone)
            if parsed.problem:
                out.unparsed[name] = text
                out.problems.append(
                    r.Problem(
                        r.INVALID_DATE,
                        f"{r.FIELD_LABELS[name].capitalize()}: {parsed.problem}; "
                        "giữ nguyên dạng văn bản.",
                        name,
                    )
                )
                return None
            return (
                as_datetime(parsed.value, tz=self.mapping.timezone)
                if kind == "datetime"
                else (parsed.value)
            )
        if kind == "direction":
            return self._label(out, name, text, r.REJECT)
        if kind == "level":
            return self._label(out, name, text, r.WARNING)
        if kind == "size":
            if _SIZE_RE.match(text):
                return int(re.sub(r"\D", "", text))
            out.unparsed[name] = text
            out.problems.append(
                r.Problem(r.INVALID_SIZE, f"Kích thước '{text}' không phải số byte.", name)
            )
            return None
        if kind == "sha256":
            digest = text.lower()
            if _SHA256_RE.match(digest):
                return digest
            out.unparsed[name] = text
            out.problems.append(
                r.Problem(
                    r.INVALID_SHA256,
                    f"Mã sha256 '{text[:80]}' không hợp lệ (cần 64 ký tự hex); không kiểm được.",
                    name,
                )
            )
            return None
        if kind == "path":
            clean = clean_member_name(text)
            if clean is None:
                out.problems.append(
                    r.Problem(
                        r.UNSAFE_PATH,
                        f"Đường dẫn tệp '{text}' không an toàn (tuyệt đối hoặc có '..').",
                        name,
                        r.REJECT,
                    )
                )
                return text
            return clean
        raise AssertionError(kind)  # pragma: no cover

    def _text(self, out: r.Row, name: str, value: str, single_line: bool) -> str:
        cleaned = clean_text(value, single_line=single_line)
        if cleaned.html is not None:
            out.html[name] = cleaned.html
        text = cleaned.text
        limit = self.mapping.limit(name)
        if len(text) > limit:
            out.problems.append(
                r.Problem(
                    r.TRUNCATED,
                    f"{r.FIELD_LABELS[name].capitalize()} dài {len(text)} ký tự, "
                    f"chỉ giữ {limit} ký tự đầu.",
                    name,
                )
            )
            text = text[:limit]
        return text

    def _label(self, out: r.Row, name: str, text: str, severity: str) -> Any:
        try:
            return self.mapping.map_value(name, text)
        except KeyError:
            pass
        known = self._labels.get(name, "")
        if severity == r.REJECT:
            out.problems.append(
                r.Problem(
                    r.INVALID_DIRECTION,
                    f"Chiều văn bản '{text}' không hợp lệ (nhận: {known}).",
                    name,
                    r.REJECT,
                )
            )
        else:
            out.unparsed[name] = text
            out.problems.append(
                r.Problem(
                    r.UNKNOWN_LABEL,
                    f"{r.FIELD_LABELS[name].capitalize()} '{text}' không có trong bảng giá trị "
                    f"({known}); giữ nguyên dạng văn bản.",
                    name,
                )
            )
        return None

    def _apply_defaults(self, out: r.Row, values: dict[str, Any]) -> None:
        if self.table != "documents":
            return
        for name, default in self.mapping.defaults.items():
            if values.get(name) is None and name not in out.unparsed:
                if name == "direction" and any(p.field == name for p in out.problems):
                    continue
                values[name] = default
        if values.get("direction") is None and not any(
            p.kind == r.INVALID_DIRECTION for p in out.problems
        ):
            out.problems.append(
                r.Problem(
                    r.INVALID_DIRECTION,
                    f"Thiếu chiều văn bản (nhận: {self._labels['direction']}).",
                    "direction",
                    r.REJECT,
                )
            )

    def _check_identity(self, out: r.Row) -> None:
        if not out.legacy_id:
            out.problems.insert(
                0,
                r.Problem(
                    r.MISSING_LEGACY_ID,
                    "Thiếu số hiệu cũ (legacy_id).",
                    "legacy_id",
                    r.REJECT,
                ),
            )
        elif len(out.legacy_id) > MAX_LEGACY_ID:
            out.problems.insert(
                0,
                r.Problem(
                    r.LEGACY_ID_TOO_LONG,
                    f"Số hiệu cũ dài {len(out.legacy_id)} ký tự (tối đa {MAX_LEGACY_ID}).",
                    "legacy_id",
                    r.REJECT,
                ),
            )
        if self.table == "attachments" and not getattr(out, "file", ""):
            out.problems.append(
                r.Problem(r.MISSING_FILE_PATH, "Thiếu đường dẫn tệp.", "file", r.REJECT)
            )
