"""Documents: incoming (đến), outgoing (đi) and internal (nội bộ), one model family."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId
from mongoengine import (
    BooleanField,
    DateField,
    DateTimeField,
    DictField,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    IntField,
    ListField,
    ObjectIdField,
    Q,
    QuerySet,
    ReferenceField,
    StringField,
    signals,
)
from mongoengine import Document as MongoDocument

from models.audit import utcnow
from models.document_type import DocumentType
from models.organization import Unit
from models.user import User

DIRECTIONS = {"incoming": "Văn bản đến", "outgoing": "Văn bản đi", "internal": "Văn bản nội bộ"}
URGENCY_LEVELS = {0: "Thường", 1: "Khẩn", 2: "Thượng khẩn", 3: "Hỏa tốc"}
SIGNER_AUTHORITIES = {
    "": "Ký trực tiếp",
    "TM.": "TM. (thay mặt tập thể)",
    "KT.": "KT. (ký thay người đứng đầu)",
    "TL.": "TL. (thừa lệnh)",
    "TUQ.": "TUQ. (thừa ủy quyền)",
    "Q.": "Q. (quyền)",
}
CHANNELS = {
    "paper": "Bản giấy (scan)",
    "email": "Thư điện tử",
    "edxml": "Trục liên thông",
    "internal": "Nội bộ",
    "other": "Khác",
}
ASSIGNMENT_ROLES = {"lead": "Chủ trì", "coordinate": "Phối hợp", "info": "Nhận để biết"}
DUE_SOON = dt.timedelta(days=2)


class StoredFile(EmbeddedDocument):
    """A file in GridFS, described on the record that owns it."""

    meta = {"allow_inheritance": True}

    file_id = ObjectIdField(required=True)  # GridFS id
    filename = StringField(required=True, max_length=255)
    mime = StringField(required=True, max_length=120)
    size = IntField(required=True)
    sha256 = StringField(required=True, max_length=64)
    uploaded_at = DateTimeField(default=utcnow)
    uploaded_by = StringField()  # user id
    flags = ListField(StringField(max_length=40))  # damaged, encrypted, sha_mismatch, empty...
    text_extracted = BooleanField(default=False)


class FileRevision(StoredFile):
    """One revision of the main file; signed revisions are never overwritten."""

    rev = IntField(required=True)
    kind = StringField(default="upload")  # upload, converted, signed, sealed, stamped
    source_rev = IntField()  # the revision this one was derived from
    note = StringField(max_length=300)


class HistoryEntry(EmbeddedDocument):
    """An immutable line of the document's own history timeline."""

    at = DateTimeField(required=True, default=utcnow)
    actor_id = StringField()
    actor_name = StringField(required=True)
    on_behalf_of_id = StringField()
    on_behalf_of_name = StringField()  # "B thay A": B is the actor, A the principal
    action = StringField(required=True)  # a transition code or an event (registered, viewed...)
    label = StringField()  # Vietnamese description shown in the timeline
    from_state = StringField()
    to_state = StringField()
    comment = StringField()
    detail = DictField()
    legacy = BooleanField(default=False)  # a row of a migrated system's trace


class Assignment(EmbeddedDocument):
    """Who handles the document (lead, coordinating, for information) and by when."""

    id = ObjectIdField(required=True, default=ObjectId)
    role = StringField(required=True, choices=list(ASSIGNMENT_ROLES))
    unit = ReferenceField(Unit)
    user = ReferenceField(User)
    deadline_at = DateTimeField()
    assigned_at = DateTimeField(default=utcnow)
    assigned_by_id = StringField()
    parent_id = ObjectIdField()  # re-assignment within a unit points at the unit's assignment
    status = StringField(default="open")  # open, done, returned
    report = StringField()
    completed_at = DateTimeField()
    reminded_at = DateTimeField()
    extension_requested_to = DateTimeField()
    extension_reason = StringField()


class CircuitStep(EmbeddedDocument):
    """A visa / initial / signature step copied from a circuit template into the document."""

    index = IntField(required=True)
    group = IntField(required=True)  # steps with the same group run in parallel
    kind = StringField(required=True, choices=["visa", "initial", "signature"])
    mode = StringField(default="all", choices=["all", "any"])
    label = StringField()
    user_ids = ListField(StringField())  # the people named on this step
    done_by = ListField(StringField())  # who has acted (approved)
    status = StringField(default="pending")  # pending, active, done, rejected
    reject_to = StringField(default="previous", choices=["previous", "drafter"])
    deadline_at = DateTimeField()
    position = DictField()  # signature/initial box: {"page", "x", "y", "w", "h"} or search
    digital = BooleanField(default=True)  # an initial step may be a plain approval instead


class Circuit(EmbeddedDocument):
    """The document's own copy of a circuit template, with its progress."""

    template_code = StringField()
    status = StringField(default="draft")  # draft, running, done, rejected
    steps = EmbeddedDocumentListField(CircuitStep)
    started_at = DateTimeField()


class Comment(EmbeddedDocument):
    id = ObjectIdField(required=True, default=ObjectId)
    at = DateTimeField(default=utcnow)
    author_id = StringField(required=True)
    author_name = StringField(required=True)
    text = StringField(required=True, max_length=5000)


class DocumentQuerySet(QuerySet):
    """Queries on documents that mean something."""

    def visible_to(self, user: User) -> DocumentQuerySet:
        """Documents `user` may open: unit, assignment, role grant, and clearance."""
        base = self.filter(secrecy__lte=user.clearance or 0)
        if user.can("document.view_all"):
            return base
        scope = Q(visible_user_ids=str(user.pk))
        if user.can("archive.search"):
            scope |= Q(migrated=True)  # records managers search the legacy archive
        if user.unit is not None:
            scope |= Q(visible_unit_ids=str(user.unit.pk))
        return base.filter(scope)

    def awaiting(self, user_ids: list[str]) -> DocumentQuerySet:
        """Documents waiting for an action by one of `user_ids` (me and who delegated to me)."""
        return self.filter(pending_user_ids__in=user_ids, migrated=False)

    def handled_by(self, user_id: str) -> DocumentQuerySet:
        return self.filter(participant_ids=user_id)

    def watched_by(self, user_id: str) -> DocumentQuerySet:
        return self.filter(watcher_ids=user_id)

    def overdue(self, now: dt.datetime | None = None) -> DocumentQuerySet:
        return self.filter(due_at__lt=now or utcnow(), closed=False)

    def due_soon(self, now: dt.datetime | None = None) -> DocumentQuerySet:
        now = now or utcnow()
        return self.filter(due_at__gte=now, due_at__lt=now + DUE_SOON, closed=False)


class Document(MongoDocument):
    """A document with its Decree 30 metadata, files, workflow state and history."""

    direction = StringField(required=True, choices=list(DIRECTIONS))
    doc_type = ReferenceField(DocumentType)
    doc_type_name = StringField(max_length=120)  # snapshot (also for migrated documents)
    # Number and notation (số, ký hiệu): the number within its register book, and the text.
    number = IntField()
    notation = StringField(max_length=120)  # "15/QĐ-SCT"; for incoming, as printed
    register_book = ReferenceField("RegisterBook")
    registered_year = IntField()
    issuer = StringField(max_length=300)  # issuing body as printed
    issuer_unit = ReferenceField(Unit)  # our drafting unit (outgoing, internal)
    issued_on = DateField()
    place = StringField(max_length=100)
    subject = StringField(required=True, max_length=2000)  # trích yếu
    content = StringField()  # body text, when known (search)
    attachment_text = StringField()  # text extracted from the attached PDFs (search)
    signer_authority = StringField(default="", choices=list(SIGNER_AUTHORITIES))
    signer_title = StringField(max_length=200)
    signer_name = StringField(max_length=200)
    signer = ReferenceField(User)
    recipients_to = ListField(StringField(max_length=300))  # Kính gửi
    recipients = ListField(StringField(max_length=300))  # Nơi nhận
    recipient_units = ListField(ReferenceField(Unit))  # internal dispatch targets
    urgency = IntField(default=0, choices=list(URGENCY_LEVELS))
    secrecy = IntField(default=0, choices=[0, 1, 2, 3])
    pages = IntField(min_value=0)
    copies = IntField(min_value=0)
    deadline_on = DateField()  # handling deadline asked by the sender / the leader
    unit_ids = ListField(StringField())  # units involved
    # Incoming only
    arrival_number = IntField()
    arrival_at = DateTimeField()
    channel = StringField(choices=list(CHANNELS))
    source_document = ReferenceField("Document")  # the outgoing one it came from
    # Files
    revisions = EmbeddedDocumentListField(FileRevision)
    attachments = EmbeddedDocumentListField(StoredFile)
    # Workflow
    workflow_code = StringField()
    workflow_version = IntField()
    state = StringField(required=True, default="draft")
    state_entered_at = DateTimeField(default=utcnow)
    closed = BooleanField(default=False)
    circuit = EmbeddedDocumentField(Circuit)
    assignments = EmbeddedDocumentListField(Assignment)
    presented_to_id = StringField()  # the leader the document was presented to
    due_at = DateTimeField()  # the nearest open deadline (state SLA or assignment)
    history = EmbeddedDocumentListField(HistoryEntry)
    comments = EmbeddedDocumentListField(Comment)
    # Who: denormalized id lists for queries and the search index's principals
    created_by_id = StringField()
    owner_unit_id = StringField()
    pending_user_ids = ListField(StringField())  # who must act now
    participant_ids = ListField(StringField())  # who has acted or was assigned
    watcher_ids = ListField(StringField())
    visible_user_ids = ListField(StringField())
    visible_unit_ids = ListField(StringField())
    # Migration
    migrated = BooleanField(default=False)
    legacy_id = StringField(max_length=120)
    legacy_system = StringField(max_length=120)
    import_batch_id = StringField()
    status_text = StringField(max_length=300)
    legacy_raw = DictField()
    # Bookkeeping
    version = IntField(required=True, default=1)  # optimistic concurrency
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    index_status = StringField(default="pending")  # pending, indexed, failed
    indexed_version = IntField(default=0)

    meta = {
        "collection": "document",
        "queryset_class": DocumentQuerySet,
        "indexes": [
            ("direction", "-created_at"),
            "state",
            "notation",
            ("register_book", "number"),
            "arrival_number",
            "pending_user_ids",
            "participant_ids",
            "watcher_ids",
            "visible_user_ids",
            "visible_unit_ids",
            "due_at",
            "registered_year",
            {"fields": ["legacy_id"], "unique": True, "sparse": True},
            "import_batch_id",
            "index_status",
        ],
        "ordering": ["-created_at"],
    }

    def __str__(self) -> str:
        label = self.notation or DIRECTIONS.get(self.direction, "")
        return f"{label}: {self.subject[:80]}" if self.subject else label

    @property
    def current_revision(self) -> FileRevision | None:
        return self.revisions[-1] if self.revisions else None

    def revision(self, rev: int) -> FileRevision | None:
        return next((r for r in self.revisions if r.rev == rev), None)

    @property
    def current_pdf(self) -> FileRevision | None:
        """The newest PDF revision: what is previewed and signed."""
        return next((r for r in reversed(self.revisions) if r.mime == "application/pdf"), None)

    @property
    def display_signer(self) -> str:
        parts = [f"{self.signer_authority} {self.signer_title or ''}".strip(), self.signer_name]
        return " - ".join(p for p in parts if p)

    def principals(self) -> list[str]:
        """Who may see this document, as search-index principals."""
        out = [f"user:{u}" for u in self.visible_user_ids]
        out += [f"unit:{u}" for u in self.visible_unit_ids]
        out.append("perm:document.view_all")
        if self.migrated:
            out.append("perm:archive.search")
        return out

    def to_api(self, detail: bool = False) -> dict[str, Any]:
        """Return the document as the JSON API shows it."""
        out: dict[str, Any] = {
            "id": str(self.pk),
            "direction": self.direction,
            "number": self.number,
            "notation": self.notation,
            "doc_type": self.doc_type_name,
            "issuer": self.issuer,
            "issued_on": self.issued_on.isoformat() if self.issued_on else None,
            "subject": self.subject,
            "urgency": self.urgency,
            "secrecy": self.secrecy,
            "state": self.state,
            "arrival_number": self.arrival_number,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "migrated": self.migrated,
            "legacy_id": self.legacy_id,
            "version": self.version,
        }
        if detail:
            out.update(
                place=self.place,
                signer=self.display_signer,
                recipients_to=self.recipients_to,
                recipients=self.recipients,
                pages=self.pages,
                copies=self.copies,
                deadline_on=self.deadline_on.isoformat() if self.deadline_on else None,
                channel=self.channel,
                status_text=self.status_text,
                revisions=[
                    {
                        "rev": r.rev,
                        "filename": r.filename,
                        "mime": r.mime,
                        "size": r.size,
                        "sha256": r.sha256,
                        "kind": r.kind,
                    }
                    for r in self.revisions
                ],
                attachments=[
                    {
                        "filename": a.filename,
                        "mime": a.mime,
                        "size": a.size,
                        "sha256": a.sha256,
                        "flags": list(a.flags),
                    }
                    for a in self.attachments
                ],
                history=[
                    {
                        "at": h.at.isoformat(),
                        "actor": h.actor_name,
                        "on_behalf_of": h.on_behalf_of_name,
                        "action": h.action,
                        "label": h.label,
                        "from": h.from_state,
                        "to": h.to_state,
                        "comment": h.comment,
                        "legacy": h.legacy,
                    }
                    for h in self.history
                ],
            )
        return out


def _touch(sender: type[Document], document: Document, **kwargs: Any) -> None:
    """Keep updated_at true on every save of a change: the search index versions by it."""
    changed = document._get_changed_fields() if document.pk is not None else []
    if changed and "updated_at" not in changed:
        document.updated_at = utcnow()


signals.pre_save.connect(_touch, sender=Document)
