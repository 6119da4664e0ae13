"""Where legacy exports come from (server folders, uploads) and the column mappings."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import IO

from flask import current_app

from models.audit import utcnow
from models.legacy_import import ImportMapping
from models.user import User
from workflows.errors import ValidationFailed
from workflows.legacy import Mapping, MappingError, default_mapping, parse_mapping_text
from workflows.legacy.mapping import DEFAULT_MAPPING_PATH


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
