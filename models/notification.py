"""In-app notifications (reminders, assignments, escalations)."""

from __future__ import annotations

from mongoengine import DateTimeField, Document, QuerySet, StringField

from models.audit import utcnow


class NotificationQuerySet(QuerySet):
    def unread_for(self, user_id: str) -> NotificationQuerySet:
        return self.filter(user_id=user_id, read_at=None)


class Notification(Document):
    """A message for one user, with a link to what it is about."""

    user_id = StringField(required=True)
    at = DateTimeField(required=True, default=utcnow)
    kind = StringField(required=True, max_length=40)  # assigned, due_soon, overdue, escalated...
    text = StringField(required=True, max_length=1000)
    link = StringField(max_length=500)
    dedupe_key = StringField(max_length=200)  # one reminder per key
    read_at = DateTimeField()

    meta = {
        "collection": "notification",
        "queryset_class": NotificationQuerySet,
        "indexes": [("user_id", "-at"), {"fields": ["dedupe_key"], "unique": True, "sparse": True}],
        "ordering": ["-at"],
    }
