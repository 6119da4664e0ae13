"""Column mappings: which source column feeds which field, as data an admin can edit."""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .text import fold_key, to_nfc

DEFAULT_MAPPING_PATH = Path(__file__).with_name("default_mapping.yaml")

DOCUMENT_FIELDS = (
    "legacy_id", "direction", "number", "doc_type", "agency", "signed_date", "received_date",
    "arrival_number", "subject", "signer", "recipients", "urgency", "secrecy", "deadline",
    "status_text", "body_text",
)  # fmt: skip
ATTACHMENT_FIELDS = ("legacy_id", "file", "name", "size", "sha256")
HISTORY_FIELDS = ("legacy_id", "time", "actor", "unit", "action", "note")
TABLE_FIELDS = {
    "documents": DOCUMENT_FIELDS,
    "attachments": ATTACHMENT_FIELDS,
    "history": HISTORY_FIELDS,
}
TABLE_LABELS = {"documents": "văn bản", "attachments": "tệp đính kèm", "history": "lịch sử xử lý"}
DIRECTIONS = ("incoming", "outgoing", "internal")
LEVEL_FIELDS = ("urgency", "secrecy")
DELIMITERS = (",", ";", "\t", "|")
ENCODINGS = ("utf-8", "utf-8-sig", "cp1258")
_TOP_KEYS = frozenset((
    "name", "files_dir", "documents", "attachments", "history", "values", "defaults", "csv",
    "timezone", "limits",
))  # fmt: skip
_TZ_RE = re.compile(r"^(?:Z|UTC|[+\-]\d{2}:?\d{2})$")


class MappingError(ValueError):
    """A mapping that cannot be used; ``errors`` lists every problem in Vietnamese."""

    def __init__(self, errors: list[str], source: str = "") -> None:
        self.errors = errors
        self.source = source
        where = f" ({source})" if source else ""
        super().__init__(f"Ánh xạ cột không hợp lệ{where}:\n- " + "\n- ".join(errors))


@dataclass(frozen=True, slots=True)
class TableMapping:
    """One table: candidate file names (first present wins) and source column -> field."""

    files: tuple[str, ...]
    columns: dict[str, str]

    def field_for(self) -> dict[str, str]:
        """Return field -> source column."""
        return {target: source for source, target in self.columns.items()}


@dataclass(frozen=True, slots=True)
class Mapping:
    """A validated mapping; build it with ``parse_mapping`` or ``load_mapping``."""

    name: str
    files_dir: str
    documents: TableMapping
    attachments: TableMapping
    history: TableMapping
    values: dict[str, dict[str, Any]]  # field -> folded source label -> our value
    defaults: dict[str, Any]
    delimiter: str | None  # None: detect
    encoding: str | None  # None: detect
    timezone: timezone
    limits: dict[str, int]
    data: dict[str, Any]  # the mapping as written (merged with the default), for storage

    def table(self, name: str) -> TableMapping:
        """Return the mapping of ``documents``, ``attachments`` or ``history``."""
        table: TableMapping = getattr(self, name)
        return table

    def limit(self, field: str) -> int:
        """Return the longest text kept for a field."""
        return self.limits.get(field, self.limits.get("default", 20000))

    def map_value(self, field: str, label: str) -> Any:
        """Translate a source label through the field's value map (KeyError when unknown)."""
        return self.values[field][fold_key(label)]


def _parse_table(name: str, data: Any, errors: list[str]) -> TableMapping:
    label = f"{name} ({TABLE_LABELS[name]})"
    if not isinstance(data, MappingABC):
        errors.append(f"Mục '{label}' phải là một bảng có 'files' và 'columns'.")
        return TableMapping((), {})
    unknown = set(data) - {"files", "columns"}
    if unknown:
        errors.append(f"Mục '{label}': khóa không được hỗ trợ {sorted(map(str, unknown))}.")
    files = data.get("files") or ()
    if isinstance(files, str):
        files = (files,)
    if not files or not all(isinstance(f, str) and f.strip() for f in files):
        errors.append(f"Mục '{label}': 'files' phải là tên tệp hoặc danh sách tên tệp.")
        files = ()
    columns = data.get("columns")
    if not isinstance(columns, MappingABC) or not columns:
        errors.append(f"Mục '{label}': 'columns' phải là bảng 'cột nguồn: trường đích'.")
        return TableMapping(tuple(files), {})
    allowed = TABLE_FIELDS[name]
    result: dict[str, str] = {}
    sources_by_target: dict[str, list[str]] = {}
    for source, target in columns.items():
        source_name = to_nfc(str(source)).strip()
        if not isinstance(target, str) or target not in allowed:
            errors.append(
                f"Mục '{label}': cột nguồn '{source_name}' trỏ tới trường '{target}' không tồn "
                f"tại. Trường hợp lệ: {', '.join(allowed)}."
            )
            continue
        result[source_name] = target
        sources_by_target.setdefault(target, []).append(source_name)
    for target, sources in sources_by_target.items():
        if len(sources) > 1:
            errors.append(
                f"Mục '{label}': trường '{target}' được ánh xạ từ nhiều cột: "
                f"{', '.join(repr(s) for s in sources)}."
            )
    if "legacy_id" not in sources_by_target:
        errors.append(f"Mục '{label}': thiếu cột nguồn cho trường bắt buộc 'legacy_id'.")
    if name == "attachments" and "file" not in sources_by_target:
        errors.append(f"Mục '{label}': thiếu cột nguồn cho trường bắt buộc 'file'.")
    return TableMapping(tuple(str(f).strip() for f in files), result)


def _parse_values(data: Any, errors: list[str]) -> dict[str, dict[str, Any]]:
    if not isinstance(data, MappingABC):
        errors.append("Mục 'values' phải là bảng 'trường: {nhãn nguồn: giá trị}'.")
        return {}
    result: dict[str, dict[str, Any]] = {}
    for field, labels in data.items():
        if field not in ("direction", *LEVEL_FIELDS):
            errors.append(
                f"Mục 'values': không hỗ trợ bảng giá trị cho trường '{field}' "
                "(chỉ direction, urgency, secrecy)."
            )
            continue
        if not isinstance(labels, MappingABC) or not labels:
            errors.append(f"Mục 'values.{field}' phải là bảng 'nhãn nguồn: giá trị'.")
            continue
        folded: dict[str, Any] = {}
        first_label: dict[str, str] = {}
        for label, value in labels.items():
            if field == "direction" and value not in DIRECTIONS:
                errors.append(
                    f"Mục 'values.direction': nhãn '{label}' trỏ tới '{value}', chỉ nhận "
                    f"{', '.join(DIRECTIONS)}."
                )
                continue
            if field in LEVEL_FIELDS and (type(value) is not int or not 0 <= value <= 3):
                errors.append(
                    f"Mục 'values.{field}': nhãn '{label}' phải ứng với mức 0, 1, 2 hoặc 3 "
                    f"(đang là '{value}')."
                )
                continue
            key = fold_key(str(label))
            if key in folded and folded[key] != value:
                errors.append(
                    f"Mục 'values.{field}': nhãn '{first_label[key]}' và '{label}' giống nhau "
                    "khi bỏ dấu nhưng ứng với giá trị khác nhau."
                )
            folded[key] = value
            first_label.setdefault(key, str(label))
        result[field] = folded
    return result


def _parse_defaults(data: Any, errors: list[str]) -> dict[str, Any]:
    if not isinstance(data, MappingABC):
        errors.append("Mục 'defaults' phải là bảng 'trường: giá trị'.")
        return {}
    result: dict[str, Any] = {}
    for field, value in data.items():
        if field == "direction":
            if value is not None and value not in DIRECTIONS:
                errors.append(f"Mục 'defaults': direction chỉ nhận {', '.join(DIRECTIONS)}.")
                continue
        elif field in LEVEL_FIELDS:
            if value is not None and (type(value) is not int or not 0 <= value <= 3):
                errors.append(f"Mục 'defaults': {field} phải là mức 0, 1, 2 hoặc 3.")
                continue
        else:
            errors.append(
                f"Mục 'defaults': không hỗ trợ giá trị mặc định cho '{field}' "
                "(chỉ direction, urgency, secrecy)."
            )
            continue
        result[field] = value
    return result


def _parse_timezone(value: Any, errors: list[str]) -> timezone:
    text = str(value).strip()
    if not _TZ_RE.match(text):
        errors.append(f"Mục 'timezone': '{text}' không hợp lệ (ví dụ '+07:00').")
        return timezone(timedelta(hours=7))
    if text in ("Z", "UTC"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])), text)


def _parse_csv(data: Any, errors: list[str]) -> tuple[str | None, str | None]:
    if not isinstance(data, MappingABC):
        errors.append("Mục 'csv' phải là bảng có 'delimiter' và 'encoding'.")
        return None, None
    delimiter = data.get("delimiter", "auto")
    encoding = str(data.get("encoding", "auto")).lower()
    if delimiter != "auto" and delimiter not in DELIMITERS:
        errors.append(f"Mục 'csv.delimiter': '{delimiter}' không hợp lệ (auto , ; \\t |).")
    if encoding != "auto" and encoding not in ENCODINGS:
        errors.append(f"Mục 'csv.encoding': '{encoding}' không hợp lệ (auto, utf-8, cp1258).")
    return (
        None if delimiter == "auto" else delimiter,
        None if encoding == "auto" else encoding,
    )


def _parse_limits(data: Any, errors: list[str]) -> dict[str, int]:
    if not isinstance(data, MappingABC):
        errors.append("Mục 'limits' phải là bảng 'trường: số ký tự'.")
        return {}
    result = {}
    for field, value in data.items():
        if type(value) is not int or value < 1:
            errors.append(f"Mục 'limits': '{field}' phải là số nguyên dương.")
        else:
            result[str(field)] = value
    return result


def parse_mapping(data: Any, *, source: str = "") -> Mapping:
    """Validate mapping data (as loaded from YAML/JSON); missing sections come from the default.

    Raises ``MappingError`` listing every problem found.
    """
    if not isinstance(data, MappingABC):
        raise MappingError(["Tệp ánh xạ phải là một bảng YAML/JSON."], source)
    errors: list[str] = []
    unknown = set(data) - _TOP_KEYS
    if unknown:
        errors.append(f"Khóa không được hỗ trợ: {', '.join(sorted(map(str, unknown)))}.")
    base = _default_data() if data is not _default_data() else {}
    merged = {**base, **data}
    if "documents" not in data:
        errors.append("Thiếu mục 'documents' (ánh xạ cột của văn bản).")
    tables = {name: _parse_table(name, merged.get(name), errors) for name in TABLE_FIELDS}
    values = _parse_values(merged.get("values", {}), errors)
    defaults = _parse_defaults(merged.get("defaults") or {}, errors)
    delimiter, encoding = _parse_csv(merged.get("csv") or {}, errors)
    tz = _parse_timezone(merged.get("timezone", "+07:00"), errors)
    limits = _parse_limits(merged.get("limits") or {}, errors)
    document_targets = set(tables["documents"].columns.values())
    if "direction" not in document_targets and defaults.get("direction") is None:
        errors.append(
            "Mục 'documents': chưa có cột nguồn cho 'direction' và cũng không có "
            "'defaults.direction' (incoming, outgoing hoặc internal)."
        )
    if "direction" in document_targets and "direction" not in values:
        errors.append("Thiếu 'values.direction' để đổi nhãn chiều văn bản (den, di, noi_bo...).")
    files_dir = str(merged.get("files_dir") or "files").strip().strip("/")
    if errors:
        raise MappingError(errors, source)
    return Mapping(
        name=str(merged.get("name") or source or "Ánh xạ"),
        files_dir=files_dir,
        documents=tables["documents"],
        attachments=tables["attachments"],
        history=tables["history"],
        values=values,
        defaults=defaults,
        delimiter=delimiter,
        encoding=encoding,
        timezone=tz,
        limits=limits,
        data=dict(merged),
    )


def parse_mapping_text(text: str, *, source: str = "") -> Mapping:
    """Parse mapping text in YAML or JSON (JSON is valid YAML)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError([f"Không đọc được YAML/JSON: {exc}"], source) from exc
    return parse_mapping(data, source=source)


def load_mapping(path: str | Path | None = None) -> Mapping:
    """Load a mapping file (YAML or JSON); without a path, the default mapping."""
    if path is None:
        return default_mapping()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MappingError([f"Không mở được tệp ánh xạ: {exc.strerror}"], str(path)) from exc
    return parse_mapping_text(text, source=path.name)


@cache
def _default_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_MAPPING_PATH.read_text(encoding="utf-8"))
    return data


@cache
def default_mapping() -> Mapping:
    """Return the default mapping (the layout of LEGACY_EXPORT.md)."""
    return parse_mapping(_default_data(), source=DEFAULT_MAPPING_PATH.name)
