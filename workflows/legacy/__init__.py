"""Read legacy QLVB exports (folder or .zip): mapping, text rules, streaming rows, files.

This package only reads and classifies; storing into the database is the importer's job.
"""

from .dates import VIETNAM_TZ, ParsedDate, as_datetime, parse_date
from .dedupe import DuplicateTracker
from .files import FileCheck, PdfText, extract_pdf_text, inspect_attachment, resolve_attachment
from .mapping import (
    Mapping,
    MappingError,
    default_mapping,
    load_mapping,
    parse_mapping,
    parse_mapping_text,
)
from .reader import (
    TableReader,
    estimate_rows,
    read_attachments,
    read_documents,
    read_history,
    read_manifest,
)
from .rows import REJECT, WARNING, AttachmentRow, DocumentRow, HistoryRow, Manifest, Problem, Row
from .source import ExportError, ExportSource, open_export

__all__ = [
    "REJECT",
    "VIETNAM_TZ",
    "WARNING",
    "AttachmentRow",
    "DocumentRow",
    "DuplicateTracker",
    "ExportError",
    "ExportSource",
    "FileCheck",
    "HistoryRow",
    "Manifest",
    "Mapping",
    "MappingError",
    "ParsedDate",
    "PdfText",
    "Problem",
    "Row",
    "TableReader",
    "as_datetime",
    "default_mapping",
    "estimate_rows",
    "extract_pdf_text",
    "inspect_attachment",
    "load_mapping",
    "open_export",
    "parse_date",
    "parse_mapping",
    "parse_mapping_text",
    "read_attachments",
    "read_documents",
    "read_history",
    "read_manifest",
    "resolve_attachment",
]
