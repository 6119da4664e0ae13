"""API bearer tokens: issue, resolve, revoke."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app

from models.api_token import ApiToken
from models.audit import utcnow
from models.user import User, _aware


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, client: str | None = None) -> tuple[str, ApiToken]:
    """Create a token for `user`; the plaintext is returned once and never stored."""
    token = secrets.token_urlsafe(32)
    hours = current_app.config["API_TOKEN_TTL_HOURS"]
    record = ApiToken(
        token_hash=_digest(token),
        user=user,
        auth_version=str(user.auth_version),
        expires_at=utcnow() + dt.timedelta(hours=hours),
        client=(client or "")[:200],
    ).save()
    return token, record


def resolve_token(token: str) -> tuple[User, ApiToken] | None:
    """Return the user and record behind a valid token, or None."""
    if not token:
        return None
    record = ApiToken.objects(token_hash=_digest(token)).first()
    if record is None or record.revoked_at is not None:
        return None
    if _aware(record.expires_at) <= utcnow():
        return None
    user = record.user
    if user is None or not user.active or str(user.auth_version) != record.auth_version:
        return None
    ApiToken.objects(pk=record.pk).update_one(set__last_used_at=utcnow())
    return user, record


def revoke_token(record: ApiToken) -> None:
    """Revoke one token."""
    ApiToken.objects(pk=record.pk).update_one(set__revoked_at=utcnow())
