"""Signing models: secrets never leave, authorizations expire, one record per signature."""

from __future__ import annotations

import datetime as dt

import pytest
from mongoengine.errors import NotUniqueError

from models.audit import AuditEntry
from models.signature import SignatureRecord, SigningAuthorization, SigningIdentity
from tests.workflows import test_signature as shared
from workflows import signature, signing_identity

fast_pin_hash, sig_pki = shared.fast_pin_hash, shared.sig_pki


def test_identity_api_and_audit_never_show_key_material(users, sig_pki):
    identity = signing_identity.create_pkcs12_identity(
        sig_pki.p12("leader"), shared.PASSPHRASE, owner=users["giamdoc"], pin=shared.PIN
    )
    shown = identity.to_api()
    assert shown["certificate"]["common_name"] == "Nguyễn Văn An"
    assert "encrypted_key" not in str(shown) and "pkcs12" not in shown
    signing_identity.set_signing_pin(identity, "13572468")
    update = AuditEntry.objects(object_type="SigningIdentity", action="update").first()
    assert update is not None
    assert set(update.detail["changes"].values()) <= {"***", 0, None}
    assert all(
        k.startswith("encrypted_key") or k.startswith("pin_") for k in update.detail["changes"]
    )
    assert shared.PASSPHRASE not in str(list(AuditEntry.objects.values_list("detail")))


def test_authorization_is_for_one_user_some_documents_and_a_short_time(users):
    now = dt.datetime.now(dt.UTC)
    granted = SigningAuthorization(
        user=users["giamdoc"],
        method="pin",
        document_ids=["a", "b"],
        expires_at=now + dt.timedelta(minutes=15),
    ).save()
    director = str(users["giamdoc"].pk)
    assert granted.valid_for(director, "a", now)
    assert not granted.valid_for(director, "c", now)
    assert not granted.valid_for(str(users["phogiamdoc"].pk), "a", now)
    assert not granted.valid_for(director, "a", now + dt.timedelta(minutes=16))
    assert "code" not in SigningAuthorization._fields and "pin" not in SigningAuthorization._fields


def test_one_record_per_signature_key(make_document, users):
    doc = make_document("outgoing", "chuyenvien", signer=users["giamdoc"])
    fields = {"document": doc, "revision": 1, "kind": "sign", "signer": users["giamdoc"]}
    key = signature.record_key(doc.pk, 1, "sign", users["giamdoc"].pk)
    SignatureRecord(key=key, **fields).save()
    with pytest.raises(NotUniqueError):
        SignatureRecord(key=key, **fields).save()
    assert SignatureRecord.objects.get().to_api()["status"] == "queued"
    assert signature.field_name_for("sign", users["giamdoc"].pk, 1).endswith("-r1")


def test_identity_querysets(users, sig_pki):
    mine = signing_identity.create_pkcs12_identity(
        sig_pki.p12("leader"), shared.PASSPHRASE, owner=users["giamdoc"]
    )
    seal = signing_identity.create_pkcs12_identity(
        sig_pki.p12("seal"), shared.PASSPHRASE, agency_seal=True
    )
    assert list(SigningIdentity.objects.of_user(users["giamdoc"])) == [mine]
    assert list(SigningIdentity.objects.agency()) == [seal]
    mine.update(set__active=False)
    assert not SigningIdentity.objects.of_user(users["giamdoc"]).count()
