"""Archive search: Vietnamese-aware, permission-filtered full-text index on Whoosh.

Writes go through ``writer`` (one writer at a time, file lock with timeout); searches
through ``searcher.search``. Records are plain dicts (``document.IndexRecord``).
"""

from search_index.document import IndexRecord, version_of
from search_index.errors import (
    IndexBusyError,
    IndexMissingError,
    IndexOutdatedError,
    SearchIndexError,
    SearchQueryError,
)
from search_index.searcher import search, warm
from search_index.writer import (
    Drift,
    check,
    delete_documents,
    index_documents,
    index_status,
    indexed_versions,
    open_or_create,
    optimize,
    rebuild,
    recreate,
)

__all__ = [
    "Drift",
    "IndexBusyError",
    "IndexMissingError",
    "IndexOutdatedError",
    "IndexRecord",
    "SearchIndexError",
    "SearchQueryError",
    "check",
    "delete_documents",
    "index_documents",
    "index_status",
    "indexed_versions",
    "open_or_create",
    "optimize",
    "rebuild",
    "recreate",
    "search",
    "version_of",
    "warm",
]
