"""Digital signing records: signing identities, trust roots, authorizations, signatures."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentField,
    FloatField,
    ImageField,
    IntField,
    ListField,
    QuerySet,
    ReferenceField,
    StringField,
)

from models.audit import audited, utcnow
from models.document import Document as OfficialDocument
from models.user import User

BACKENDS = {
    "pkcs12": "Tệp PKCS#12 lưu trên máy chủ (mã hóa)",
    "pkcs11": "Thiết bị ký số / HSM (PKCS#11)",
    "csc": "Ký số từ xa (CSC API: SIM PKI, MySign...)",
}
SIGNATURE_KINDS = {
    "initial": "Ký nháy",
    "sign": "Ký ban hành",
    "seal": "Chữ ký số cơ quan (đóng dấu)",
    "attachment": "Ký tệp đính kèm",
}
RECORD_STATUSES = {
    "queued": "Đang chờ ký",
    "running": "Đang ký",
    "done": "Đã ký",
    "failed": "Không ký được",
}


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """Treat naive datetimes (mongomock) as UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class SealedSecrets(EmbeddedDocument):
    """Key material encrypted with the server master key (AES-GCM, bound to the identity id).

    The audit log masks every change under the field name ``encrypted_key``.
    """

    pkcs12 = BinaryField()  # the uploaded PKCS#12 file
    passphrase = BinaryField()  # its passphrase
    token_pin = BinaryField()  # PKCS#11 user PIN of a server token
    access_token = BinaryField()  # CSC OAuth2 bearer token
    signing_pin_hash = StringField()  # argon2 hash of the signer's signing PIN


class SigningIdentityQuerySet(QuerySet):
    """Queries on signing identities that mean something."""

    def usable(self) -> SigningIdentityQuerySet:
        return self.filter(active=True)

    def of_user(self, user: User) -> SigningIdentityQuerySet:
        """The user's own active identities (not the agency seal)."""
        return self.usable().filter(owner=user, agency_seal=False)

    def agency(self) -> SigningIdentityQuerySet:
        """The agency seal identities in use."""
        return self.usable().filter(agency_seal=True)


@audited
class SigningIdentity(Document):
    """A certificate and a way to use its key: a person's, or the agency seal. Never downloaded."""

    label = StringField(required=True, max_length=200)
    owner = ReferenceField(User)  # None for the agency seal
    agency_seal = BooleanField(default=False)
    backend = StringField(required=True, default="pkcs12", choices=list(BACKENDS.items()))
    encrypted_key = EmbeddedDocumentField(SealedSecrets, default=SealedSecrets)
    # PKCS#11 (a token or HSM attached to the server)
    pkcs11_lib = StringField(max_length=300)
    pkcs11_token = StringField(max_length=120)
    pkcs11_key_label = StringField(max_length=120)
    # Remote signing (Cloud Signature Consortium API v2)
    csc_base_url = StringField(max_length=300)
    csc_credential_id = StringField(max_length=200)
    csc_confirm_timeout = FloatField(default=90.0)
    # Certificate (copied at upload, for lists and quick checks)
    chain_der = ListField(BinaryField())  # issuers, for PKCS#11 tokens that hold no chain
    cert_subject = StringField(max_length=500)
    cert_common_name = StringField(max_length=200)
    cert_issuer = StringField(max_length=500)
    cert_serial = StringField(max_length=80)
    cert_sha256 = StringField(max_length=64)
    not_before = DateTimeField()
    not_after = DateTimeField()
    seal_image = ImageField(collection_name="signing_images")  # red seal (agency seal only)
    pin_failures = IntField(default=0)
    pin_locked_until = DateTimeField()
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    created_by_id = StringField()

    meta = {
        "collection": "signing_identity",
        "queryset_class": SigningIdentityQuerySet,
        "indexes": ["owner", "agency_seal", "active", "cert_sha256"],
        "ordering": ["-created_at"],
    }

    def __str__(self) -> str:
        return self.label or self.cert_common_name or ""

    @property
    def has_signing_pin(self) -> bool:
        return bool(self.encrypted_key and self.encrypted_key.signing_pin_hash)

    def secret_context(self) -> bytes:
        """Bind encrypted secrets to this identity: a blob copied elsewhere does not decrypt."""
        return f"signing-identity:{self.pk}".encode()

    def expires_at(self) -> dt.datetime | None:
        return _aware(self.not_after)

    def to_api(self) -> dict[str, Any]:
        """Return what the API shows: never key material."""
        return {
            "id": str(self.pk),
            "label": self.label,
            "owner": str(self.owner.pk) if self.owner else None,
            "agency_seal": self.agency_seal,
            "backend": self.backend,
            "certificate": {
                "subject": self.cert_subject,
                "common_name": self.cert_common_name,
                "issuer": self.cert_issuer,
                "serial": self.cert_serial,
                "sha256_fingerprint": self.cert_sha256,
                "not_before": _iso(self.not_before),
                "not_after": _iso(self.not_after),
            },
            "active": self.active,
        }


@audited
class TrustRoot(Document):
    """A CA certificate an admin trusts when verifying signatures."""

    name = StringField(required=True, max_length=200)
    cert_der = BinaryField(required=True)
    subject = StringField(max_length=500)
    sha256 = StringField(required=True, unique=True, max_length=64)
    not_after = DateTimeField()
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    created_by_id = StringField()

    meta = {"collection": "trust_root", "indexes": ["active"], "ordering": ["name"]}

    def __str__(self) -> str:
        return self.name or self.subject or ""


class SigningAuthorization(Document):
    """That a signer proved, in a web request, they want these documents signed.

    Holds how (TOTP or signing PIN), never the code itself; jobs check it before signing.
    """

    user = ReferenceField(User, required=True)
    method = StringField(required=True, choices=["totp", "pin"])
    document_ids = ListField(StringField())
    created_at = DateTimeField(required=True, default=utcnow)
    expires_at = DateTimeField(required=True)
    ip = StringField(max_length=64)

    meta = {"collection": "signing_authorization", "indexes": ["user", "expires_at"]}

    def valid_for(self, user_id: str, doc_id: str, now: dt.datetime | None = None) -> bool:
        """Tell whether this authorization lets `user_id` sign `doc_id` now."""
        now = now or utcnow()
        expires = _aware(self.expires_at)
        return (
            str(self.user.pk) == user_id
            and doc_id in self.document_ids
            and expires is not None
            and expires > now
        )


class SignatureRecordQuerySet(QuerySet):
    """Queries on signature records that mean something."""

    def of_document(self, doc: OfficialDocument) -> SignatureRecordQuerySet:
        return self.filter(document=doc).order_by("created_at")

    def done(self) -> SignatureRecordQuerySet:
        return self.filter(status="done")


class SignatureRecord(Document):
    """One signature on a document: who, for whom, with which certificate, on which revision."""

    key = StringField(required=True, unique=True)  # sign-<doc>-<revision>-<kind>-<signer>
    document = ReferenceField(OfficialDocument, required=True)
    revision = IntField(required=True)  # the revision the signer was shown and authorized
    source_revision = IntField()  # the revision actually signed (newer if others signed first)
    signed_revision = IntField()  # the revision this signature produced
    revision_sha256 = StringField(max_length=64)  # digest of the signed (source) revision
    result_sha256 = StringField(max_length=64)
    kind = StringField(required=True, choices=list(SIGNATURE_KINDS.items()))
    signer = ReferenceField(User, required=True)
    on_behalf_of = ReferenceField(User)  # the principal when signing by delegation
    authority = StringField(max_length=10)  # "", "KT.", "TUQ." ... as shown in the block
    identity = ReferenceField(SigningIdentity)
    backend = StringField(max_length=20)
    cert_subject = StringField(max_length=500)
    cert_common_name = StringField(max_length=200)
    cert_serial = StringField(max_length=80)
    cert_sha256 = StringField(max_length=64)
    signed_at = DateTimeField()
    field_name = StringField(max_length=120)
    attachment_name = StringField(max_length=255)  # kind "attachment": which file
    transition_code = StringField(max_length=60)
    inputs = DictField()  # the transition's inputs (a comment), never a code or PIN
    job_id = StringField(max_length=200)
    authorization = ReferenceField(SigningAuthorization)
    status = StringField(required=True, default="queued", choices=list(RECORD_STATUSES.items()))
    error = StringField(max_length=1000)  # Vietnamese message shown to the user
    error_code = StringField(max_length=60)
    attempts = IntField(default=0)
    transitioned_at = DateTimeField()
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    meta = {
        "collection": "signature_record",
        "queryset_class": SignatureRecordQuerySet,
        "indexes": [("document", "created_at"), "signer", "status", "job_id"],
        "ordering": ["created_at"],
    }

    def __str__(self) -> str:
        return f"{SIGNATURE_KINDS.get(self.kind, self.kind)}: {self.cert_common_name or ''}"

    def to_api(self) -> dict[str, Any]:
        """Return the record as the JSON API shows it."""
        return {
            "id": str(self.pk),
            "document": str(self.document.pk) if self.document else None,
            "kind": self.kind,
            "status": self.status,
            "revision": self.revision,
            "source_revision": self.source_revision,
            "signed_revision": self.signed_revision,
            "revision_sha256": self.revision_sha256,
            "signer": self.signer.full_name if self.signer else None,
            "on_behalf_of": self.on_behalf_of.full_name if self.on_behalf_of else None,
            "authority": self.authority or "",
            "certificate": {
                "subject": self.cert_subject,
                "common_name": self.cert_common_name,
                "serial": self.cert_serial,
                "sha256_fingerprint": self.cert_sha256,
            },
            "signed_at": _iso(self.signed_at),
            "field_name": self.field_name,
            "attachment": self.attachment_name,
            "backend": self.backend,
            "job_id": self.job_id,
            "error": self.error,
        }


def _iso(value: dt.datetime | None) -> str | None:
    aware = _aware(value)
    return aware.isoformat() if aware else None
