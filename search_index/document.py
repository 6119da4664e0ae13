"""The record the index takes (a plain dict) and its translation into index fields."""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, NotRequired, Required, TypedDict

from search_index import analysis, schema
from search_index.terms import TermCounts, TermTable

Direction = Literal["incoming", "outgoing", "internal"]

#: Characters of body text kept (compressed) in the index for snippets.
SNIPPET_CHARS = 6000


class IndexRecord(TypedDict, total=False):
    """One searchable record, built by the app from its models (no model objects here)."""

    id: Required[str]
    kind: str  # "document" | "case_file" | "signature" | ...
    legacy_id: str | None
    number: str | None  # số ký hiệu, e.g. "70/2018/NĐ-CP"
    title: str  # trích yếu / subject
    body: str
    attachment_text: str
    issuer: str
    signer: str
    direction: Direction | str
    doc_type: str
    year: int | None
    issued_on: date | None
    unit_ids: list[str]
    state: str
    migrated: bool
    secrecy: int  # 0 (normal) .. 3 (top secret)
    principals: list[str]  # "unit:<id>", "user:<id>", "role:<code>", "all"
    case_file_ids: list[str]  # the case files holding it (a case file: its own id)
    retention: list[str]  # their retention: "permanent" or a number of years
    transfer: list[str]  # their transfer state: "pending", "transferred", "not_required"
    updated_at: NotRequired[datetime | str | None]


@dataclass(slots=True)
class PreparedDocument:
    """A record analysed into per-field term counts, tags, stored values and columns."""

    id: str
    terms: dict[str, TermCounts] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    stored: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)


def version_of(updated_at: datetime | date | str | None) -> str:
    """Return the version string recorded for a record (compare it with indexed_versions).

    Datetimes are taken in UTC without zone and to the millisecond, as MongoDB stores them,
    so a value read back from the database gives the same version as the one just saved.
    """
    if updated_at is None:
        return ""
    if isinstance(updated_at, datetime):
        if updated_at.tzinfo is not None:
            updated_at = updated_at.astimezone(UTC).replace(tzinfo=None)
        updated_at = updated_at.replace(microsecond=updated_at.microsecond // 1000 * 1000)
        return updated_at.isoformat(timespec="milliseconds")
    if isinstance(updated_at, date):
        return updated_at.isoformat()
    return str(updated_at)


class _SnippetCache:
    """Reuse the compressed snippet of identical texts (the same circular filed by many units)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._snippets: OrderedDict[str, bytes] = OrderedDict()

    def snippet(self, text: str) -> bytes:
        """Return the compressed snippet of ``text``."""
        hit = self._snippets.get(text)
        if hit is None:
            hit = self._snippets[text] = compress_snippet(text)
            if len(self._snippets) > self.size:
                self._snippets.popitem(last=False)
        return hit


_snippets = _SnippetCache()


def _length(token_count: int) -> int:
    # Unigrams plus pairs: the number of terms counted in the field.
    return max(0, 2 * token_count - 1)


def _date_key(value: date | datetime | str | None) -> int:
    if isinstance(value, datetime):
        return value.date().toordinal()
    if isinstance(value, date):
        return value.toordinal()
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10]).toordinal()
        except ValueError:
            return 0
    return 0


def compress_snippet(text: str) -> bytes:
    """Compress the part of a body kept for snippets."""
    return zlib.compress(text[:SNIPPET_CHARS].encode("utf-8"), 6)


def decompress_snippet(blob: bytes | None) -> str:
    """Return the snippet text stored for a document."""
    return zlib.decompress(blob).decode("utf-8") if blob else ""


def prepare(record: IndexRecord, terms: TermTable | None = None) -> PreparedDocument:
    """Analyse a record into what the index writes, with the term ids of ``terms``.

    A segment builder takes documents prepared with its own table (``builder.terms``).
    """
    terms = terms if terms is not None else TermTable()
    doc_id = str(record["id"])
    prepared = PreparedDocument(id=doc_id)
    title = record.get("title") or ""
    meta = " \n ".join(x for x in (record.get("issuer"), record.get("signer")) if x)
    body = record.get("body") or ""
    attachment = record.get("attachment_text") or ""
    # The snippet is the body's beginning (then the attachments'): one text for all copies.
    text = f"{body}\n{attachment}" if attachment and len(body) < SNIPPET_CHARS else body
    fields = (
        (schema.TITLE, title),
        (schema.META, meta),
        (schema.TEXT, body),
        (schema.ATTACHMENT, attachment),
    )
    for name, value in fields:
        if not value:
            continue
        # Each text is analysed apart: the counts are shared by every copy of a text in a
        # build (a circular filed by many units, one attachment filed twice), inverted once.
        exact, folded, count = terms.analyze(value)
        prepared.terms[name + schema.EXACT_SUFFIX] = exact
        prepared.terms[name + schema.FOLDED_SUFFIX] = folded
        prepared.lengths[name + schema.EXACT_SUFFIX] = _length(count)
        prepared.lengths[name + schema.FOLDED_SUFFIX] = _length(count)
    number = record.get("number") or ""
    legacy_id = record.get("legacy_id") or ""
    ident = terms.counts(analysis.notation_terms(number) + analysis.notation_terms(legacy_id))
    if ident:
        prepared.terms[schema.IDENT] = ident
        prepared.lengths[schema.IDENT] = int(ident.counts.sum())

    issued_on = record.get("issued_on")
    year = record.get("year") or (issued_on.year if isinstance(issued_on, date) else None)
    tags = {
        "id": [doc_id],
        "kind": [record.get("kind") or "document"],
        "direction": [record.get("direction") or ""],
        "doc_type": [(record.get("doc_type") or "").strip()],
        "issuer": [(record.get("issuer") or "").strip()],
        "year": [str(year) if year else ""],
        "unit": list(record.get("unit_ids") or []),
        "state": [record.get("state") or ""],
        "migrated": ["yes" if record.get("migrated") else "no"],
        "case_file": list(record.get("case_file_ids") or []),
        "retention": list(record.get("retention") or []),
        "transfer": list(record.get("transfer") or []),
        schema.PRINCIPAL: list(record.get("principals") or []),
        schema.SECRECY: [str(int(record.get("secrecy") or 0))],
    }
    prepared.tags = {name: [v for v in values if v] for name, values in tags.items()}
    prepared.stored = {
        "id": doc_id,
        "kind": tags["kind"][0],
        "legacy_id": legacy_id or None,
        "number": number or None,
        "title": title,
        "issued_on": issued_on.isoformat() if isinstance(issued_on, date) else issued_on,
        "updated_at": version_of(record.get("updated_at")),
        schema.SNIPPET: _snippets.snippet(text) if text else None,
    }
    prepared.columns = {
        "date_key": _date_key(issued_on),
        "doc_len": sum(
            n for name, n in prepared.lengths.items() if name.endswith(schema.EXACT_SUFFIX)
        ),
        "doc_id": doc_id,
        "version": version_of(record.get("updated_at")),
    }
    return prepared
