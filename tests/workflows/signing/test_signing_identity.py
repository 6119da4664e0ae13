"""Signing identities: PKCS#12 loading and caching, validity window, key match, secrets."""

from __future__ import annotations

import datetime as dt

import pytest

from workflows.signing import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    KeyMismatchError,
    Pkcs12Identity,
    SecretError,
    WrongPassphraseError,
    clear_identity_cache,
    decrypt_secret,
    encrypt_secret,
    generate_master_key,
    load_pkcs12_identity,
)

from .conftest import PASSPHRASE


def test_cert_info_describes_the_certificate(leader, pki):
    info = leader.cert_info
    assert info.common_name == "Nguyễn Văn An"
    assert info.subject.startswith("CN=Nguyễn Văn An,")
    assert int(info.serial, 16) == pki.leader.cert.serial_number
    assert len(info.sha256_fingerprint) == 64
    assert info.as_dict()["not_after"].endswith("+00:00")


def test_loaded_identity_is_cached_per_blob_and_passphrase(pki):
    blob = pki.deputy.pkcs12(PASSPHRASE.encode())
    first = load_pkcs12_identity(blob, PASSPHRASE)
    assert load_pkcs12_identity(blob, PASSPHRASE) is first
    with pytest.raises(WrongPassphraseError) as caught:
        load_pkcs12_identity(blob, "sai mật khẩu")
    assert "Mật khẩu" in caught.value.message
    clear_identity_cache()
    assert load_pkcs12_identity(blob, PASSPHRASE) is not first


def test_encrypted_blob_loads_with_master_key_only(pki):
    master = generate_master_key()
    blob = encrypt_secret(master, pki.leader.pkcs12(b"p12-pass"), context=b"user:42")
    identity = load_pkcs12_identity(blob, "p12-pass", master_key=master, context=b"user:42")
    assert identity.cert_info.common_name == "Nguyễn Văn An"
    clear_identity_cache()
    with pytest.raises(SecretError):
        load_pkcs12_identity(blob, "p12-pass", master_key=generate_master_key(), context=b"user:42")
    with pytest.raises(SecretError):
        load_pkcs12_identity(blob, "p12-pass", master_key=master, context=b"user:43")


def test_secret_roundtrip_and_tamper():
    master = generate_master_key()
    sealed = encrypt_secret(master, b"PKCS12 bytes")
    assert b"PKCS12" not in sealed
    assert decrypt_secret(master, sealed) == b"PKCS12 bytes"
    with pytest.raises(SecretError):
        decrypt_secret(master, sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(SecretError):
        encrypt_secret("not base64 !!", b"x")


def test_expired_certificate_is_refused(pki):
    with pytest.raises(CertificateExpiredError) as caught:
        load_pkcs12_identity(pki.expired.pkcs12(b"x"), "x")
    assert "hết hạn" in caught.value.message


def test_not_yet_valid_certificate_is_refused(pki):
    with pytest.raises(CertificateNotYetValidError) as caught:
        load_pkcs12_identity(pki.not_yet_valid.pkcs12(b"x"), "x")
    assert "chưa" in caught.value.message or "có hiệu lực từ" in caught.value.message


def test_validity_is_checked_at_signing_time_even_when_cached(pki):
    blob = pki.leader.pkcs12(b"x")
    load_pkcs12_identity(blob, "x")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=800)
    with pytest.raises(CertificateExpiredError):
        load_pkcs12_identity(blob, "x", now=later)


def test_key_that_does_not_match_the_certificate_is_refused(pki):
    with pytest.raises(KeyMismatchError):
        load_pkcs12_identity(pki.mismatched_pkcs12(b"x"), "x")
    with pytest.raises(KeyMismatchError) as caught:
        Pkcs12Identity.from_pem(pki.deputy.key_pem, pki.leader.cert_pem)
    assert caught.value.message == "Khóa bí mật không khớp với chứng thư số."
