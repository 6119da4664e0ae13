"""Document operations: access lists, internal delivery (creation and editing follow)."""

from __future__ import annotations

import logging
from typing import Any

from models import audit
from models.document import Document
from models.organization import Agency
from models.user import User
from workflows.errors import NotFound

log = logging.getLogger(__name__)


def refresh_access(doc: Document) -> None:
    """Recompute who may see the document (ids kept on it for queries and the index)."""
    users = {
        doc.created_by_id,
        doc.presented_to_id,
        *doc.pending_user_ids,
        *doc.participant_ids,
        *doc.watcher_ids,
    }
    if doc.signer is not None:
        users.add(str(doc.signer.pk))
    if doc.circuit is not None:
        users.update(u for step in doc.circuit.steps for u in step.user_ids)
    units = {doc.owner_unit_id}
    if doc.issuer_unit is not None:
        units.add(str(doc.issuer_unit.pk))
    for a in doc.assignments:
        if a.user is not None:
            users.add(str(a.user.pk))
        if a.unit is not None:
            units.add(str(a.unit.pk))
    doc.visible_user_ids = sorted(u for u in users if u)
    doc.visible_unit_ids = sorted(u for u in units if u)


def can_view(doc: Document, user: User) -> bool:
    """Tell whether `user` may open `doc` (unit, involvement, role grant, clearance)."""
    if (doc.secrecy or 0) > (user.clearance or 0):
        return False
    if user.can("document.view_all"):
        return True
    if str(user.pk) in doc.visible_user_ids:
        return True
    return user.unit is not None and str(user.unit.pk) in doc.visible_unit_ids


def get_for(user: User, doc_id: Any, *, log_view: bool = True) -> Document:
    """Return a document `user` may open; anything else is 'not found' (no id probing)."""
    try:
        doc = Document.objects(pk=doc_id).first()
    except Exception:
        doc = None
    if doc is None or not can_view(doc, user):
        raise NotFound("Không tìm thấy văn bản hoặc bạn không có quyền xem.")
    if log_view and (doc.secrecy or 0) > 0:
        audit.record("document.view", obj=doc, detail={"secrecy": doc.secrecy})
    return doc


def deliver_internally(doc_id: str, actor_id: str) -> list[Document]:
    """Create the incoming documents of the internal units an issued document is sent to."""
    from workflows import register_book
    from workflows.engine import start

    source = Document.objects(pk=doc_id).first()
    actor = User.objects(pk=actor_id).first()
    if source is None:
        return []
    agency = Agency.current()
    created = []
    for unit in source.recipient_units:
        if unit is None or Document.objects(source_document=source, owner_unit_id=str(unit.pk)):
            continue  # delivered once, even if the effect runs again
        incoming = Document(
            direction="incoming",
            doc_type=source.doc_type,
            doc_type_name=source.doc_type_name,
            notation=source.notation,
            issuer=agency.name if agency else source.issuer,
            issued_on=source.issued_on,
            subject=source.subject,
            content=source.content,
            signer_authority=source.signer_authority,
            signer_title=source.signer_title,
            signer_name=source.signer_name,
            urgency=source.urgency,
            secrecy=source.secrecy,
            pages=source.pages,
            channel="internal",
            source_document=source,
            revisions=list(source.revisions),
            attachments=list(source.attachments),
            owner_unit_id=str(unit.pk),
            created_by_id=actor_id,
        )
        register_book.assign_arrival_number(incoming, actor_id=actor_id)
        start(incoming, actor)
        created.append(incoming)
        log.info("delivered document %s to unit %s as %s", doc_id, unit.pk, incoming.pk)
    return created
