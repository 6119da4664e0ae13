"""Archive search: what the index holds for a document, and searching as a user."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any, cast

from bson import ObjectId
from flask import current_app, has_app_context
from mongoengine import signals

from models.case_file import CaseFile, holders_of, retention_key
from models.document import Document
from models.user import User
from search_index.document import IndexRecord, version_of

log = logging.getLogger(__name__)
FACETS = (
    "kind",
    "direction",
    "doc_type",
    "issuer",
    "year",
    "state",
    "migrated",
    "retention",
    "transfer",
)
CASE_FILE_TYPE = "Hồ sơ"
Holders = list[tuple[str, str, str]]


def index_path() -> str:
    """The directory of the Whoosh index."""
    return os.path.join(current_app.config["DATA_DIR"], "search-index")


def document_version(updated_at: Any, holders: Holders) -> str:
    """Return the version the index keeps for a document: its own, plus its case-file tags.

    Filing a document (or transferring its file) changes what the index holds for it
    without touching the document, so the tags are part of the version the check compares.
    """
    own = version_of(updated_at)
    if not holders:
        return own
    return own + "|" + ",".join(":".join(tag) for tag in sorted(holders))


def case_file_version(version: Any) -> str:
    """Return the version the index keeps for a case file."""
    return f"case-file:{version}"


#: The document fields an index record reads (and the version indexing records).
RECORD_FIELDS = (
    "issued_on", "registered_year", "created_at", "legacy_id", "notation", "arrival_number",
    "subject", "content", "attachment_text", "issuer", "signer_authority", "signer_title",
    "signer_name", "direction", "doc_type_name", "visible_unit_ids", "unit_ids",
    "visible_user_ids", "state", "migrated", "secrecy", "updated_at", "version",
)  # fmt: skip


class LoadedDocument(SimpleNamespace):
    """The RECORD_FIELDS of a document, read without building the model (bulk indexing).

    Building a mongoengine document sets every one of its ~60 fields through descriptors,
    most of the cost of indexing thousands of documents; this holds only what records read,
    converted as the model would, and shares the model's own derived values.
    """

    def principals(self) -> list[str]:
        """Who may see the document: the model's own rule."""
        return Document.principals(cast(Document, self))

    @property
    def display_signer(self) -> str:
        """The signer line: the model's own rule."""
        return cast(str, _SIGNER_LINE(cast(Document, self)))


_SIGNER_LINE = vars(Document)["display_signer"].fget


_FIELD_DEFAULTS = {name: Document._fields[name].default for name in RECORD_FIELDS}


def load_documents(ids: Iterable[Any]) -> list[LoadedDocument]:
    """Load the RECORD_FIELDS of these documents (missing ones are left out), in no order."""
    oids = [ObjectId(i) for i in ids if ObjectId.is_valid(i)]
    projection = dict.fromkeys(RECORD_FIELDS, 1)
    fields = Document._fields
    out = []
    for raw in Document._get_collection().find({"_id": {"$in": oids}}, projection):
        values: dict[str, Any] = {}
        for name, default in _FIELD_DEFAULTS.items():
            value = raw.get(name)
            if value is None:
                values[name] = default() if callable(default) else default
            else:
                values[name] = fields[name].to_python(value)
        out.append(LoadedDocument(pk=raw["_id"], **values))
    return out


def record_for(doc: Document | LoadedDocument, holders: Holders | None = None) -> IndexRecord:
    """Return the index record of a document: its searchable text, facets and principals."""
    if holders is None:
        holders = holders_of([doc.pk]).get(str(doc.pk), [])
    year = (
        doc.issued_on.year
        if doc.issued_on
        else doc.registered_year or (doc.created_at.year if doc.created_at else None)
    )
    return {
        "id": str(doc.pk),
        "kind": "document",
        "legacy_id": doc.legacy_id,
        "number": doc.notation or (str(doc.arrival_number) if doc.arrival_number else None),
        "title": doc.subject or "",
        "body": doc.content or "",
        "attachment_text": doc.attachment_text or "",
        "issuer": doc.issuer or "",
        "signer": doc.display_signer or "",
        "direction": doc.direction,
        "doc_type": doc.doc_type_name or "",
        "year": year,
        "issued_on": doc.issued_on,
        "unit_ids": sorted({*doc.visible_unit_ids, *doc.unit_ids}),
        "state": doc.state,
        "migrated": bool(doc.migrated),
        "secrecy": doc.secrecy or 0,
        "principals": doc.principals(),
        "case_file_ids": [tag[0] for tag in holders],
        "retention": [tag[1] for tag in holders],
        "transfer": [tag[2] for tag in holders],
        "updated_at": document_version(doc.updated_at, holders),
    }


def records_for(docs: list[Document] | list[LoadedDocument]) -> list[IndexRecord]:
    """Return the index records of a batch of documents (one case-file query for all)."""
    holders = holders_of([d.pk for d in docs])
    return [record_for(d, holders.get(str(d.pk), [])) for d in docs]


def case_file_record(case_file: CaseFile) -> IndexRecord:
    """Return the index record of a case file: found by title, code, note and owner."""
    retention = case_file.retention
    day = case_file.closed_on or case_file.start_on
    if day is None and case_file.opened_at is not None:
        day = case_file.opened_at.date()
    owner_unit = case_file.owner_unit
    return {
        "id": str(case_file.pk),
        "kind": "case_file",
        "number": case_file.code,
        "title": case_file.title,
        "body": f"{case_file.full_code()}\n{case_file.note or ''}",
        "issuer": owner_unit.name if owner_unit else "",
        "signer": case_file.owner_user.full_name if case_file.owner_user else "",
        "doc_type": CASE_FILE_TYPE,
        "year": case_file.year,
        "issued_on": day,
        "unit_ids": [str(owner_unit.pk)] if owner_unit else [],
        "state": case_file.state,
        "migrated": False,
        "secrecy": 0,
        "principals": case_file.principals(),
        "case_file_ids": [str(case_file.pk)],
        "retention": [retention_key(retention.years, bool(retention.permanent))],
        "transfer": [case_file.transfer_state],
        "updated_at": case_file_version(case_file.version),
    }


def principals_for(user: User) -> list[str]:
    """The principals a user's searches are filtered by, inside the index query."""
    return user.principals()


def search_for(
    user: User,
    query: str,
    *,
    filters: dict[str, Any] | None = None,
    sort: str = "relevance",
    limit: int = 10,
    offset: int = 0,
) -> dict[str, Any]:
    """Search as `user`: only documents they may open count, in hits, totals and facets."""
    from search_index.searcher import search

    path = index_path()
    if not os.path.isdir(path):
        return {"total": 0, "hits": [], "facets": {f: [] for f in FACETS}}
    return search(
        path,
        query,
        principals=principals_for(user),
        clearance=user.clearance or 0,
        filters=filters or {},
        facets=FACETS,
        sort="date" if sort == "date" else "relevance",
        limit=limit,
        offset=offset,
    )


def enqueue_index(ids: Iterable[str], *, remove: bool = False) -> None:
    """Queue index updates (documents or case files) on the single-writer `search` queue."""
    from jobs import enqueue
    from jobs.search import index_documents, remove_documents

    ids = sorted({str(i) for i in ids})
    if not ids:
        return
    func = remove_documents if remove else index_documents
    key = ("remove-" if remove else "index-") + (ids[0] if len(ids) == 1 else f"{len(ids)}")
    job_id = None
    if len(ids) == 1 and not remove:
        # The same version of one document is indexed once, however often it is saved.
        doc = Document.objects(pk=ids[0]).only("updated_at", "version").first()
        if doc is not None:
            stamp = re.sub(r"[^0-9A-Za-z]", "", version_of(doc.updated_at))
            job_id = f"{key}-{doc.version}-{stamp}"
    enqueue(func, ids, queue="search", job_id=job_id, retries=3)


def queue_update(ids: Iterable[Any]) -> None:
    """Queue index updates of records changed by the app, when automatic indexing is on."""
    if not (has_app_context() and current_app.config.get("SEARCH_AUTO_INDEX", True)):
        return
    try:
        enqueue_index(str(i) for i in ids)
    except Exception:  # the check job repairs what a lost enqueue misses
        log.exception("could not queue index update for %s", ids)


def _after_save(sender: type[Document], document: Document, **kwargs: Any) -> None:
    queue_update([document.pk])


def _after_delete(sender: type[Document], document: Document, **kwargs: Any) -> None:
    if has_app_context() and current_app.config.get("SEARCH_AUTO_INDEX", True):
        enqueue_index([str(document.pk)], remove=True)


signals.post_save.connect(_after_save, sender=Document)
signals.post_delete.connect(_after_delete, sender=Document)
