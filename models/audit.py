"""Append-only audit log and the signal hooks that feed it."""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mongoengine import (
    DateTimeField,
    DictField,
    Document,
    QuerySet,
    StringField,
    signals,
)


def utcnow() -> dt.datetime:
    """Return the current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Actor:
    """Who is acting, for the audit log; set per request or job."""

    user_id: str | None
    name: str
    ip: str | None = None
    on_behalf_of: str | None = None


SYSTEM_ACTOR = Actor(user_id=None, name="Hệ thống")
_current_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar(
    "current_actor", default=SYSTEM_ACTOR
)


def current_actor() -> Actor:
    """Return the actor of the current request or job."""
    return _current_actor.get()


def set_actor(actor: Actor) -> contextvars.Token[Actor]:
    """Make `actor` the current actor; return the token to reset it."""
    return _current_actor.set(actor)


def reset_actor(token: contextvars.Token[Actor]) -> None:
    """Restore the actor that was current before `set_actor`."""
    _current_actor.reset(token)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Run a block with `actor` as the current actor."""
    token = set_actor(actor)
    try:
        yield
    finally:
        reset_actor(token)


class AppendOnlyQuerySet(QuerySet):
    """A queryset that refuses bulk updates and deletes."""

    def update(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("audit entries are append-only")

    def update_one(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("audit entries are append-only")

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("audit entries are append-only")

    def modify(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("audit entries are append-only")


class AuditEntry(Document):
    """One audited event: a login, a change, a view of a secret document."""

    at = DateTimeField(required=True, default=utcnow)
    action = StringField(required=True)  # login.success, login.failure, create, update, ...
    actor_id = StringField()
    actor_name = StringField(required=True)
    on_behalf_of = StringField()
    object_type = StringField()
    object_id = StringField()
    object_label = StringField()
    detail = DictField()
    ip = StringField()

    meta = {
        "collection": "audit_entry",
        "queryset_class": AppendOnlyQuerySet,
        "indexes": ["-at", "action", "actor_id", ("object_type", "object_id")],
        "ordering": ["-at"],
    }

    def save(self, *args: Any, **kwargs: Any) -> AuditEntry:
        if self.pk is not None:
            raise PermissionError("audit entries are append-only")
        return super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError("audit entries are append-only")


def record(
    action: str,
    *,
    obj: Document | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    label: str | None = None,
    detail: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """Append an entry to the audit log."""
    actor = actor or current_actor()
    if obj is not None:
        object_type = object_type or type(obj).__name__
        object_id = object_id or str(obj.pk)
        label = label or str(obj)
    return AuditEntry(
        action=action,
        actor_id=actor.user_id,
        actor_name=actor.name,
        on_behalf_of=actor.on_behalf_of,
        object_type=object_type,
        object_id=object_id,
        object_label=(label or "")[:300],
        detail=detail or {},
        ip=actor.ip,
    ).save()


# Field values never copied into the log, only the fact that they changed.
SECRET_FIELDS = frozenset({"password_hash", "totp_secret", "token_hash", "encrypted_key"})


def _printable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value if not isinstance(value, str) else value[:200]
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value[:20]]
    if isinstance(value, Document):
        return str(value.pk)
    return str(value)[:200]


def _pre_save(sender: type[Document], document: Document, **kwargs: Any) -> None:
    changed = document._get_changed_fields() if document.pk is not None else []
    document._audit_changed = [f for f in changed if not f.startswith("_")]


def _post_save(sender: type[Document], document: Document, **kwargs: Any) -> None:
    created = kwargs.get("created", False)
    fields = getattr(document, "_audit_changed", [])
    if not created and not fields:
        return
    changes = {
        f: ("***" if f.split(".")[0] in SECRET_FIELDS else _printable(_lookup(document, f)))
        for f in fields
    }
    record("create" if created else "update", obj=document, detail={"changes": changes})


def _lookup(document: Document, dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        try:
            value = value[int(part)] if part.isdigit() else getattr(value, part)
        except (AttributeError, IndexError, KeyError, TypeError):
            return None
    return value


def _post_delete(sender: type[Document], document: Document, **kwargs: Any) -> None:
    record("delete", obj=document)


def audited(cls: type[Document]) -> type[Document]:
    """Write every create, update and delete of `cls` to the audit log."""
    signals.pre_save_post_validation.connect(_pre_save, sender=cls)
    signals.post_save.connect(_post_save, sender=cls)
    signals.post_delete.connect(_post_delete, sender=cls)
    return cls
