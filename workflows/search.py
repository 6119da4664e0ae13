"""Archive search: what the index holds for a document, and searching as a user."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from flask import current_app, has_app_context
from mongoengine import signals

from models.document import Document
from models.user import User
from search_index.document import IndexRecord

log = logging.getLogger(__name__)
FACETS = ("direction", "doc_type", "issuer", "year", "state", "migrated")


def index_path() -> str:
    """The directory of the Whoosh index."""
    return os.path.join(current_app.config["DATA_DIR"], "search-index")


def record_for(doc: Document) -> IndexRecord:
    """Return the index record of a document: its searchable text, facets and principals."""
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
        "updated_at": doc.updated_at,
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


def enqueue_index(doc_ids: Iterable[str], *, remove: bool = False) -> None:
    """Queue index updates on the single-writer `search` queue."""
    from jobs import enqueue
    from jobs.search import index_documents, remove_documents

    ids = sorted({str(i) for i in doc_ids})
    if not ids:
        return
    func = remove_documents if remove else index_documents
    key = ("remove-" if remove else "index-") + (ids[0] if len(ids) == 1 else f"{len(ids)}")
    job_id = None
    if len(ids) == 1:
        doc = Document.objects(pk=ids[0]).only("version").first()
        job_id = f"{key}-{doc.version if doc else 'gone'}"
    enqueue(func, ids, queue="search", job_id=job_id, retries=3)


def _after_save(sender: type[Document], document: Document, **kwargs: Any) -> None:
    if has_app_context() and current_app.config.get("SEARCH_AUTO_INDEX", True):
        try:
            enqueue_index([str(document.pk)])
        except Exception:  # the check job repairs what a lost enqueue misses
            log.exception("could not queue index update for %s", document.pk)


def _after_delete(sender: type[Document], document: Document, **kwargs: Any) -> None:
    if has_app_context() and current_app.config.get("SEARCH_AUTO_INDEX", True):
        enqueue_index([str(document.pk)], remove=True)


signals.post_save.connect(_after_save, sender=Document)
signals.post_delete.connect(_after_delete, sender=Document)
