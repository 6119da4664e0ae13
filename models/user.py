"""People who use the portal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mongoengine import (
    BooleanField,
    DateTimeField,
    Document,
    EmailField,
    ImageField,
    IntField,
    ListField,
    QuerySet,
    ReferenceField,
    StringField,
)

from models.audit import audited, utcnow
from models.organization import Position, Unit
from models.role import Role

SECRECY_LEVELS = {0: "Thường", 1: "Mật", 2: "Tối mật", 3: "Tuyệt mật"}


class UserQuerySet(QuerySet):
    """Queries on users that mean something."""

    def active(self) -> UserQuerySet:
        return self.filter(active=True)

    def heads_of(self, unit: Unit) -> UserQuerySet:
        """Return the active heads of `unit` (by their position level)."""
        heads = Position.objects(level__in=["unit_head", "agency_head"])
        return self.active().filter(unit=unit, position__in=heads)


@audited
class User(Document):
    """A person with an account: who they are, where they work, what they may do."""

    username = StringField(required=True, unique=True, max_length=60, regex=r"^[a-z0-9_.\-]+$")
    full_name = StringField(required=True, max_length=120)
    email = EmailField()
    phone = StringField(max_length=30)
    unit = ReferenceField(Unit, reverse_delete_rule=3)
    position = ReferenceField(Position, reverse_delete_rule=3)
    roles = ListField(ReferenceField(Role, reverse_delete_rule=3))
    active = BooleanField(default=True)
    clearance = IntField(default=0, choices=list(SECRECY_LEVELS.items()))
    signature_image = ImageField(collection_name="user_images")
    initial_image = ImageField(collection_name="user_images")

    password_hash = StringField()
    must_change_password = BooleanField(default=False)
    password_changed_at = DateTimeField()
    auth_version = IntField(default=1)  # bumped to end every session and token
    is_demo_account = BooleanField(default=False)
    totp_secret = StringField()
    totp_enabled = BooleanField(default=False)
    totp_last_step = IntField(default=0)  # a code is accepted once
    failed_logins = IntField(default=0)
    locked_until = DateTimeField()
    last_login_at = DateTimeField()
    created_at = DateTimeField(default=utcnow)

    meta = {
        "collection": "user",
        "queryset_class": UserQuerySet,
        "indexes": ["unit", "position", "roles"],
        "ordering": ["full_name"],
    }

    def __str__(self) -> str:
        return self.full_name or self.username or ""

    # Flask-Login protocol ---------------------------------------------------------------
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        # The version makes a password change or an admin reset end older sessions.
        return f"{self.pk}:{self.auth_version}"

    # Rights -------------------------------------------------------------------------------
    @property
    def permissions(self) -> frozenset[str]:
        cached: frozenset[str] | None = getattr(self, "_permissions_cache", None)
        if cached is None:
            cached = frozenset(p for role in self.roles if role for p in role.permissions)
            self._permissions_cache = cached
        return cached

    def can(self, permission: str) -> bool:
        """Tell whether one of the user's roles grants `permission`."""
        return permission in self.permissions

    @property
    def role_codes(self) -> list[str]:
        return [r.code for r in self.roles if r]

    def principals(self) -> list[str]:
        """Return the principals a visibility check matches against."""
        out = ["all", f"user:{self.pk}"] + [f"role:{c}" for c in self.role_codes]
        out += [f"perm:{p}" for p in sorted(self.permissions)]
        if self.unit is not None:
            out.append(f"unit:{self.unit.pk}")
        return out

    def is_locked(self, now: dt.datetime | None = None) -> bool:
        now = now or utcnow()
        return self.locked_until is not None and _aware(self.locked_until) > now

    def to_api(self) -> dict[str, Any]:
        """Return the public representation used by the JSON API."""
        return {
            "id": str(self.pk),
            "username": self.username,
            "full_name": self.full_name,
            "email": self.email,
            "phone": self.phone,
            "unit": {"id": str(self.unit.pk), "name": self.unit.name} if self.unit else None,
            "position": self.position.name if self.position else None,
            "roles": self.role_codes,
            "permissions": sorted(self.permissions),
            "clearance": self.clearance,
        }


def _aware(value: dt.datetime) -> dt.datetime:
    """Treat naive datetimes (mongomock, old data) as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
