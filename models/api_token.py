"""Bearer tokens for the JSON API."""

from __future__ import annotations

from mongoengine import DateTimeField, Document, ReferenceField, StringField

from models.audit import utcnow
from models.user import User


class ApiToken(Document):
    """An API session; only the SHA-256 of the token is stored."""

    token_hash = StringField(required=True, unique=True)
    user = ReferenceField(User, required=True, reverse_delete_rule=2)  # CASCADE
    auth_version = StringField(required=True)
    created_at = DateTimeField(required=True, default=utcnow)
    expires_at = DateTimeField(required=True)
    revoked_at = DateTimeField()
    last_used_at = DateTimeField()
    client = StringField(max_length=200)

    meta = {"collection": "api_token", "indexes": ["user", "expires_at"]}
