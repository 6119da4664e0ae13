"""Opinion collection (lấy ý kiến): a request to units and people, and their answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mongoengine import (
    BooleanField,
    DateTimeField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    IntField,
    ListField,
    QuerySet,
    ReferenceField,
    StringField,
)

from models.audit import utcnow
from models.document import HistoryEntry, StoredFile
from models.organization import Unit
from models.user import User

ANSWERS = {"agree": "Đồng ý", "disagree": "Không đồng ý", "other": "Ý kiến khác"}
CLOSE_REASONS = {"deadline": "Hết hạn", "early": "Kết thúc sớm"}
NO_ANSWER = "Không có ý kiến (quá hạn)"


def aware(value: dt.datetime) -> dt.datetime:
    """Treat a naive datetime (mongomock, old data) as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class OpinionTarget(EmbeddedDocument):
    """A unit or person asked for an opinion, with the answer once given."""

    key = StringField(required=True, max_length=40)  # "unit:<id>" or "user:<id>"
    kind = StringField(required=True, choices=["unit", "user"])
    unit = ReferenceField(Unit)
    user = ReferenceField(User)
    name = StringField(required=True, max_length=300)
    answer = StringField(choices=list(ANSWERS))
    comment = StringField(max_length=5000)
    file = EmbeddedDocumentField(StoredFile)
    answered_at = DateTimeField()
    answered_by_id = StringField()
    answered_by_name = StringField(max_length=200)
    on_behalf_of_id = StringField()  # "B thay A": B answered, A held the right
    on_behalf_of_name = StringField(max_length=200)
    revisions = IntField(default=0)  # 1 after the first answer, more after revisions
    missed = BooleanField(default=False)  # closed without an answer

    @property
    def answer_label(self) -> str:
        if self.answer:
            return ANSWERS[self.answer]
        return NO_ANSWER if self.missed else "Chưa trả lời"

    @property
    def answered_by_text(self) -> str:
        """Who answered, as "B thay A" when by delegation."""
        if not self.answered_by_name:
            return ""
        if self.on_behalf_of_name:
            return f"{self.answered_by_name} thay {self.on_behalf_of_name}"
        return self.answered_by_name

    def to_api(self, with_answer: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "kind": self.kind,
            "id": self.key.split(":", 1)[1],
            "name": self.name,
            "answered": self.answer is not None,
            "missed": self.missed,
        }
        if with_answer:
            out.update(
                answer=self.answer,
                answer_label=self.answer_label,
                comment=self.comment,
                file=(
                    {"filename": self.file.filename, "size": self.file.size, "mime": self.file.mime}
                    if self.file
                    else None
                ),
                answered_at=self.answered_at.isoformat() if self.answered_at else None,
                answered_by=self.answered_by_name,
                on_behalf_of=self.on_behalf_of_name,
                revisions=self.revisions,
            )
        return out


class OpinionExtension(EmbeddedDocument):
    """One extension of the deadline."""

    at = DateTimeField(required=True, default=utcnow)
    by_id = StringField(required=True)
    by_name = StringField(required=True, max_length=200)
    on_behalf_of_name = StringField(max_length=200)
    from_deadline = DateTimeField(required=True)
    to_deadline = DateTimeField(required=True)
    reason = StringField(max_length=2000)


class OpinionRequestQuerySet(QuerySet):
    """Queries on opinion requests that mean something."""

    def addressed_to(self, keys: list[str]) -> OpinionRequestQuerySet:
        """Requests where one of `keys` ("unit:<id>", "user:<id>") is asked."""
        return self.filter(target_keys__in=keys)

    def requested_by(self, user_id: str) -> OpinionRequestQuerySet:
        return self.filter(requester=user_id)

    def still_open(self) -> OpinionRequestQuerySet:
        return self.filter(closed=False)

    def expired(self, now: dt.datetime) -> OpinionRequestQuerySet:
        """Open requests whose deadline has passed."""
        return self.filter(closed=False, deadline_at__lte=now)


class OpinionRequest(Document):
    """A request for opinions with its recipients, answers, deadline and its own history."""

    subject = StringField(required=True, max_length=2000)
    content = StringField(max_length=20000)
    files = EmbeddedDocumentListField(StoredFile)
    requester = ReferenceField(User, required=True)
    requester_name = StringField(required=True, max_length=200)
    requester_unit_id = StringField()
    targets = EmbeddedDocumentListField(OpinionTarget)
    target_keys = ListField(StringField())  # denormalized for "requests for me"
    deadline_at = DateTimeField(required=True)
    opened_at = DateTimeField(default=utcnow)  # start of the current deadline period
    answers_visible = BooleanField(default=False)  # recipients see each other's answers
    source_document = ReferenceField("Document")  # the draft the request came from
    # Lifecycle, driven by the published "opinion" workflow (see workflows/opinion.py)
    workflow_code = StringField(required=True, default="opinion")
    workflow_version = IntField(required=True, default=1)
    state = StringField(required=True, default="open")
    closed = BooleanField(default=False)
    closed_at = DateTimeField()
    closed_by_name = StringField(max_length=200)
    close_reason = StringField(choices=list(CLOSE_REASONS))
    reminders_sent = ListField(StringField(max_length=60))  # "<deadline epoch>:<minutes>"
    extensions = EmbeddedDocumentListField(OpinionExtension)
    history = EmbeddedDocumentListField(HistoryEntry)
    summary_file = EmbeddedDocumentField(StoredFile)  # the PDF kept when the request closed
    version = IntField(required=True, default=1)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    meta = {
        "collection": "opinion_request",
        "queryset_class": OpinionRequestQuerySet,
        "indexes": [
            ("target_keys", "-created_at"),
            ("requester", "-created_at"),
            ("closed", "deadline_at"),
            "source_document",
        ],
        "ordering": ["-created_at"],
    }

    def __str__(self) -> str:
        return f"Lấy ý kiến: {self.subject[:80]}" if self.subject else "Lấy ý kiến"

    def target(self, key: str) -> OpinionTarget | None:
        return next((t for t in self.targets if t.key == key), None)

    @property
    def counts(self) -> dict[str, int]:
        """How many answered each way, and how many did not answer."""
        out = {k: 0 for k in ANSWERS}
        out["none"] = 0
        for t in self.targets:
            out[t.answer or "none"] += 1
        return out

    def to_api(self, show_answers_of: set[str] | None = None) -> dict[str, Any]:
        """Return the request as the JSON API shows it; answers only of the keys given."""
        return {
            "id": str(self.pk),
            "subject": self.subject,
            "content": self.content,
            "requester": {"id": str(self.requester.pk), "name": self.requester_name},
            "deadline_at": aware(self.deadline_at).isoformat(),
            "answers_visible": self.answers_visible,
            "state": self.state,
            "status": "closed" if self.closed else "open",
            "closed_at": aware(self.closed_at).isoformat() if self.closed_at else None,
            "close_reason": self.close_reason,
            "source_document": str(self.source_document.pk) if self.source_document else None,
            "files": [{"filename": f.filename, "size": f.size, "mime": f.mime} for f in self.files],
            "targets": [
                t.to_api(show_answers_of is None or t.key in show_answers_of) for t in self.targets
            ],
            "extensions": [
                {
                    "at": aware(e.at).isoformat(),
                    "by": e.by_name,
                    "from": aware(e.from_deadline).isoformat(),
                    "to": aware(e.to_deadline).isoformat(),
                    "reason": e.reason,
                }
                for e in self.extensions
            ],
            "version": self.version,
        }
