"""The versioned Whoosh schema of the archive index and the version file stored beside it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from whoosh import columns, fields, formats
from whoosh.analysis import IDAnalyzer
from whoosh.system import pack_uint

from search_index.analysis import NotationAnalyzer, SyllableAnalyzer

#: Bump whenever fields, analysis or term layout change: a mismatch means "rebuild the index".
SCHEMA_VERSION = 3
VERSION_FILE = "SCHEMA_VERSION"

# Scored text fields: each has an exact ("_x") and a diacritic-folded ("_f") twin.
TITLE = "title"
META = "meta"  # issuer and signer
TEXT = "text"  # body
# Text extracted from attachments: a field of its own, so that copies of one body (a
# circular filed by many units, each with its own attachments) keep sharing one analysis
# and one inverted run. Scored with the body's weight, BM25F sums both as one text.
ATTACHMENT = "attach"
TEXT_FIELDS = (TITLE, META, TEXT, ATTACHMENT)
EXACT_SUFFIX = "_x"
FOLDED_SUFFIX = "_f"
#: Exact number / legacy id keys with their left prefixes ("70", "70.2018", "70.2018.nd", ...).
IDENT = "ident"

#: Filter and facet fields (exact values, several per document allowed).
FACET_FIELDS = (
    "kind",
    "direction",
    "doc_type",
    "issuer",
    "year",
    "unit",
    "state",
    "migrated",
    # Archive: the case files holding a record, their retention ("permanent" or years) and
    # transfer state ("pending", "transferred", "not_required").
    "case_file",
    "retention",
    "transfer",
)
PRINCIPAL = "principal"
SECRECY = "secrecy"

#: Stored fields returned with hits.
STORED_FIELDS = ("id", "kind", "legacy_id", "number", "title", "issued_on", "updated_at")
#: Compressed prefix of the body kept for snippets when the caller cannot supply the text.
SNIPPET = "snippet"


class TermCountField(fields.FieldType):
    """A scorable field whose value is text or an already computed ``{term: count}`` map.

    Positions are not kept (phrases go through pair terms), which keeps postings small.
    """

    def __init__(self, analyzer: Any) -> None:
        super().__init__(formats.Frequency(), analyzer, scorable=True)

    def index(self, value: Any, **kwargs: Any) -> Iterator[tuple[bytes, int, float, bytes]]:
        """Yield ``(term bytes, freq, weight, value bytes)`` sorted by term."""
        if isinstance(value, Mapping):
            counts: Mapping[str, int] = value
        else:
            counts = {}
            for token in self.analyzer(value):
                counts[token.text] = counts.get(token.text, 0) + 1
        for term in sorted(counts):
            freq = counts[term]
            yield term.encode("utf-8"), freq, float(freq), pack_uint(freq)


class TagField(fields.FieldType):
    """An unscored field of exact values (facets, filters, principals); a list means many."""

    def __init__(self) -> None:
        super().__init__(formats.Existence(), IDAnalyzer())

    def index(self, value: Any, **kwargs: Any) -> Iterator[tuple[bytes, int, float, bytes]]:
        """Yield one posting per distinct value."""
        values = [value] if isinstance(value, str) else value
        for term in sorted(set(values)):
            yield term.encode("utf-8"), 1, 1.0, b""


class ColumnField(fields.FieldType):
    """An unindexed per-document value kept in a column (fast to read for every document)."""

    indexed = False

    def __init__(self, column: columns.Column, numeric: bool = False) -> None:
        super().__init__(None, None)
        self.column_type = column
        self.numeric = numeric

    def to_column_value(self, value: Any) -> Any:
        """Encode a value for the column (ints stay ints, text becomes UTF-8)."""
        return int(value) if self.numeric else str(value).encode("utf-8")

    def from_column_value(self, value: Any) -> Any:
        """Decode a column value."""
        return value if self.numeric else value.decode("utf-8")


def build_schema() -> fields.Schema:
    """Return the Whoosh schema for SCHEMA_VERSION."""
    spec: dict[str, fields.FieldType] = {
        "id": fields.ID(stored=True, unique=True),
        "legacy_id": fields.STORED(),
        "number": fields.STORED(),
        "title": fields.STORED(),
        "issued_on": fields.STORED(),
        "updated_at": fields.STORED(),
        # Sort key for "date" ordering and the version used by drift checks.
        "date_key": ColumnField(columns.NumericColumn("q", default=0), numeric=True),
        # Exact document length in terms (all text fields), for length normalization.
        "doc_len": ColumnField(columns.NumericColumn("I", default=0), numeric=True),
        "doc_id": ColumnField(columns.VarBytesColumn()),
        "version": ColumnField(columns.VarBytesColumn()),
        SNIPPET: fields.STORED(),
        IDENT: TermCountField(NotationAnalyzer()),
        PRINCIPAL: TagField(),
        SECRECY: TagField(),
    }
    for name in TEXT_FIELDS:
        spec[name + EXACT_SUFFIX] = TermCountField(SyllableAnalyzer(folded=False))
        spec[name + FOLDED_SUFFIX] = TermCountField(SyllableAnalyzer(folded=True))
    for name in FACET_FIELDS:
        spec[name] = TagField()
    # "title" is both stored (display) and the prefix of the scored fields; no clash.
    return fields.Schema(**spec)


def read_version(path: str | Path) -> int | None:
    """Return the schema version stored beside the index, or None when absent or unreadable."""
    try:
        return int((Path(path) / VERSION_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def write_version(path: str | Path, version: int = SCHEMA_VERSION) -> None:
    """Store the schema version beside the index."""
    target = Path(path) / VERSION_FILE
    tmp = target.with_suffix(".tmp")
    tmp.write_text(f"{version}\n", encoding="ascii")
    tmp.replace(target)
