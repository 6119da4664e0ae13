"""Shared helpers of the search benchmarks: load the corpus and map it to index records."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

CORPUS = Path(os.environ.get("VANTHU_CORPUS", "/work/shared/data/corpus"))


def load_documents(limit: int | None = None) -> list[dict[str, Any]]:
    """Return the corpus documents (optionally only the first ``limit``)."""
    docs = []
    with gzip.open(CORPUS / "documents.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            docs.append(json.loads(line))
            if limit and len(docs) >= limit:
                break
    return docs


def load_queries(name: str) -> list[dict[str, Any]]:
    """Return the queries of ``queries-dev.jsonl`` or ``known-item-dev.jsonl``."""
    with open(CORPUS / name, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def to_record(doc: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Map a corpus document to an index record (title, text->body, agency->issuer, ...)."""
    issued = date.fromisoformat(doc["date"]) if doc.get("date") else None
    record = {
        "id": doc["id"],
        "kind": "document",
        "legacy_id": None,
        "number": doc.get("number"),
        "title": doc.get("title") or "",
        "body": doc.get("text") or "",
        "issuer": doc.get("agency") or "",
        "doc_type": doc.get("type") or "",
        "issued_on": issued,
        "year": issued.year if issued else None,
        "direction": "incoming",
        "state": "published",
        "migrated": True,
        "secrecy": 0,
        "principals": ["all"],
        "unit_ids": [],
        "updated_at": "corpus-1",
    }
    record.update(overrides)
    return record


def records(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield the index records of corpus documents."""
    for doc in docs:
        yield to_record(doc)
