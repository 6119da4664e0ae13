"""Fixtures of the search index tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

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
