"""Delegations (ủy quyền) and standing deputy rights (cấp phó)."""

from __future__ import annotations

import datetime as dt

from mongoengine import (
    DateTimeField,
    Document,
    ListField,
    QuerySet,
    ReferenceField,
    StringField,
    ValidationError,
)

from models.audit import audited, utcnow
from models.user import User

SCOPES = {"process": "Xử lý văn bản", "initial": "Ký nháy", "sign": "Ký ban hành"}
KINDS = {
    "delegation": "Ủy quyền theo thời hạn (TUQ.)",
    "deputy": "Cấp phó được giao thường xuyên (KT.)",
}


class DelegationQuerySet(QuerySet):
    def active(self, at: dt.datetime | None = None) -> DelegationQuerySet:
        """Delegations in force at `at` (to the minute), not revoked."""
        at = at or utcnow()
        return self.filter(revoked_at=None, starts_at__lte=at).filter(
            __raw__={"$or": [{"ends_at": None}, {"ends_at": {"$gt": at}}]}
        )


@audited
class Delegation(Document):
    """`delegate` may act for `principal` within `scopes` from `starts_at` until `ends_at`."""

    principal = ReferenceField(User, required=True)  # A, who delegates
    delegate = ReferenceField(User, required=True)  # B, who acts "thay A"
    kind = StringField(required=True, default="delegation", choices=list(KINDS.items()))
    scopes = ListField(StringField(choices=list(SCOPES.items())), required=True)
    starts_at = DateTimeField(required=True, default=utcnow)
    ends_at = DateTimeField()  # required for a delegation; none for a standing deputy
    reason = StringField(max_length=500)
    created_by_id = StringField()
    revoked_at = DateTimeField()

    meta = {
        "collection": "delegation",
        "queryset_class": DelegationQuerySet,
        "indexes": ["principal", "delegate", "ends_at"],
        "ordering": ["-starts_at"],
    }

    def __str__(self) -> str:
        return f"{self.delegate} thay {self.principal}"

    def clean(self) -> None:
        if self.principal and self.delegate and self.principal.pk == self.delegate.pk:
            raise ValidationError("Không thể ủy quyền cho chính mình.")
        if self.kind == "delegation" and not self.ends_at:
            raise ValidationError("Ủy quyền phải có thời hạn kết thúc.")
        if self.ends_at and self.starts_at and self.ends_at <= self.starts_at:
            raise ValidationError("Thời điểm kết thúc phải sau thời điểm bắt đầu.")
        if not self.scopes:
            raise ValidationError("Chọn ít nhất một phạm vi ủy quyền.")
