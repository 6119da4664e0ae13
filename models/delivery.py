"""Deliveries of internal documents (văn bản nội bộ): one record per recipient."""

from __future__ import annotations

from typing import Any

from mongoengine import (
    DateTimeField,
    Document,
    ObjectIdField,
    Q,
    QuerySet,
    ReferenceField,
    StringField,
)

from models.audit import utcnow
from models.organization import Unit
from models.user import User

RECIPIENT_KINDS = {"unit": "Đơn vị", "user": "Cá nhân"}
HOW = {
    "sent": "Gửi",
    "forwarded": "Chuyển tiếp",
    "redistributed": "Phân phối lại",
}


def recipient_key(kind: str, ident: Any) -> str:
    """Return the stable key of a recipient: 'unit:<id>' or 'user:<id>'."""
    return f"{kind}:{ident}"


class DeliveryQuerySet(QuerySet):
    """Queries on deliveries that mean something."""

    def for_user(self, user: User) -> DeliveryQuerySet:
        """Deliveries addressed to `user` in person or to the user's unit."""
        scope = Q(user=user)
        if user.unit is not None:
            scope |= Q(unit=user.unit, user=None)
        return self.filter(scope, delivered_at__ne=None)

    def of_document(self, doc_id: Any) -> DeliveryQuerySet:
        return self.filter(document=doc_id)

    def in_thread(self, thread_id: Any) -> DeliveryQuerySet:
        return self.filter(thread_id=thread_id)


class Delivery(Document):
    """An internal document delivered to one unit or one person, and whether it was read.

    The thread of replies is kept on the deliveries (`thread_id` is the first document's id,
    `reply_to` the document answered), so the shared Document model needs no new fields.
    A delivery made ready before the document's workflow sends it has no `delivered_at`.
    """

    document = ReferenceField("Document", required=True)
    thread_id = ObjectIdField(required=True)
    reply_to = ObjectIdField()
    key = StringField(required=True, max_length=40)  # recipient_key(kind, id)
    kind = StringField(required=True, choices=list(RECIPIENT_KINDS))
    unit = ReferenceField(Unit)
    user = ReferenceField(User)
    name = StringField(required=True, max_length=300)  # recipient's name when delivered
    how = StringField(default="sent", choices=list(HOW))
    sender_id = StringField(required=True)
    sender_name = StringField(required=True, max_length=200)
    on_behalf_of_id = StringField()  # "B thay A" when a delegate re-distributes
    on_behalf_of_name = StringField(max_length=200)
    note = StringField(max_length=2000)
    forwarded_from = ObjectIdField()  # the delivery this one was forwarded or re-distributed from
    redistributed_by = StringField()  # id of the unit head (or delegate) who re-distributed
    created_at = DateTimeField(default=utcnow)
    delivered_at = DateTimeField()
    read_at = DateTimeField()
    read_by_id = StringField()
    read_by_name = StringField(max_length=200)

    meta = {
        "collection": "delivery",
        "queryset_class": DeliveryQuerySet,
        "indexes": [
            {"fields": ["document", "key"], "unique": True},
            ("user", "-delivered_at"),
            ("unit", "-delivered_at"),
            "thread_id",
            "forwarded_from",
        ],
        "ordering": ["created_at"],
    }

    def __str__(self) -> str:
        return f"{HOW.get(self.how, self.how)} tới {self.name}"

    def to_api(self) -> dict[str, Any]:
        """Return the delivery as the JSON API shows it."""
        return {
            "id": str(self.pk),
            "recipient": {"kind": self.kind, "id": self.key.split(":", 1)[1], "name": self.name},
            "how": self.how,
            "sender": self.sender_name,
            "on_behalf_of": self.on_behalf_of_name,
            "note": self.note,
            "forwarded_from": str(self.forwarded_from) if self.forwarded_from else None,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "read_at": self.read_at.isoformat() if self.read_at else None,
            "read_by": self.read_by_name,
        }
