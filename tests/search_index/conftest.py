"""Fixtures of the search index tests: records and small indexes in tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from search_index import writer
from search_index.document import IndexRecord


def make_record(doc_id: str, title: str, body: str = "", **extra: Any) -> IndexRecord:
    """Return an index record with harmless defaults (public, not secret)."""
    record: dict[str, Any] = {
        "id": doc_id,
        "kind": "document",
        "legacy_id": None,
        "number": None,
        "title": title,
        "body": body,
        "attachment_text": "",
        "issuer": "UBND tỉnh Hà Giang",
        "signer": "Nguyễn Văn An",
        "direction": "incoming",
        "doc_type": "Công văn",
        "year": 2024,
        "issued_on": date(2024, 3, 1),
        "unit_ids": ["u1"],
        "state": "published",
        "migrated": False,
        "secrecy": 0,
        "principals": ["all"],
        "updated_at": "v1",
    }
    record.update(extra)
    return record  # type: ignore[return-value]


@pytest.fixture
def record() -> Callable[..., IndexRecord]:
    """Factory of index records (see make_record)."""
    return make_record


@pytest.fixture
def index_with(tmp_path: Path) -> Callable[..., Path]:
    """Build an index in tmp_path from records and return its directory."""

    def build(*records: IndexRecord, **kwargs: Any) -> Path:
        path = tmp_path / "index"
        writer.index_documents(path, records, **kwargs)
        return path

    return build
