"""Signing identities: keys sealed at rest, the signing PIN, and authorizing a signature.

An identity is a certificate with its key: a PKCS#12 file, a key on a server token (PKCS#11)
or a remote-signing credential (CSC). Its secrets are encrypted with the master key. Before a
job may sign, ``authorize`` checks the signer's TOTP code or signing PIN in the web request
and records a ``SigningAuthorization`` (never the code).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bson import ObjectId
from flask import current_app, has_request_context, request

from models.audit import record, utcnow
from models.signature import SealedSecrets, SigningAuthorization, SigningIdentity
from models.user import User
from workflows.errors import DomainError, Forbidden, ValidationFailed
from workflows.signing import (
    CertInfo,
    CscClient,
    CscSettings,
    Pkcs12Identity,
    SigningError,
    decrypt_secret,
    encrypt_secret,
    load_pkcs12_identity,
    open_csc_identity,
    open_pkcs11_identity,
)
from workflows.signing import SigningIdentity as CoreIdentity

AUTHORIZATION_TTL = dt.timedelta(minutes=15)
PIN_MAX_FAILURES = 5
PIN_LOCK = dt.timedelta(minutes=15)


# Errors -------------------------------------------------------------------------------------


class SigningRefused(DomainError):
    """Signing cannot start or did not complete; the message says why, in Vietnamese."""

    code = "signing_refused"
    status = 400
    message = "Không ký được văn bản."

    @classmethod
    def from_core(cls, exc: SigningError) -> SigningRefused:
        """Wrap a signing-core error, keeping its Vietnamese message and code."""
        return cls(exc.message, code=exc.code)


class SigningCodeRequired(DomainError):
    code = "signing_code_required"
    status = 400
    message = "Vui lòng nhập mã OTP hoặc mã PIN ký số để xác nhận ký."


class InvalidSigningCode(DomainError):
    code = "invalid_signing_code"
    status = 403
    message = "Mã OTP hoặc mã PIN ký số không đúng."


# Identities ---------------------------------------------------------------------------------


def _master_key() -> bytes:
    """Return the 32-byte key that encrypts key material at rest.

    MASTER_KEY is meant to be `generate_master_key()` output (base64 of 32 bytes); any other
    configured secret (as app.py generates in embedded mode) is stretched with HKDF-SHA256.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from workflows.signing.errors import SecretError
    from workflows.signing.secrets import load_master_key

    configured = current_app.config["MASTER_KEY"]
    if not configured:
        raise SigningRefused("Máy chủ chưa cấu hình khóa chủ (MASTER_KEY) để bảo vệ khóa ký.")
    try:
        return load_master_key(configured)
    except SecretError:
        raw = configured.encode("utf-8") if isinstance(configured, str) else bytes(configured)
        kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vanthu-signing-keys")
        return kdf.derive(raw)


def _seal(identity: SigningIdentity, data: bytes) -> bytes:
    return encrypt_secret(_master_key(), data, context=identity.secret_context())


def _unseal(identity: SigningIdentity, blob: bytes | None) -> bytes:
    if not blob:
        raise SigningRefused("Chứng thư số thiếu dữ liệu khóa đã lưu. Liên hệ quản trị hệ thống.")
    return decrypt_secret(_master_key(), blob, context=identity.secret_context())


@contextmanager
def _refused_on_core_error() -> Iterator[None]:
    """Turn a signing-core error into SigningRefused, keeping its Vietnamese message and code."""
    try:
        yield
    except SigningError as exc:
        raise SigningRefused.from_core(exc) from exc


def _new_identity(
    info: CertInfo,
    backend: str,
    owner: User | None,
    agency_seal: bool,
    label: str | None,
    created_by: User | None,
) -> SigningIdentity:
    if agency_seal == (owner is not None):
        raise ValidationFailed(
            "Chọn người sở hữu chứng thư số, hoặc đánh dấu là chữ ký số cơ quan."
        )
    return SigningIdentity(
        id=ObjectId(),
        label=label
        or (f"Chữ ký số cơ quan: {info.common_name}" if agency_seal else info.common_name),
        owner=owner,
        agency_seal=agency_seal,
        backend=backend,
        encrypted_key=SealedSecrets(),
        cert_subject=info.subject,
        cert_common_name=info.common_name,
        cert_issuer=info.issuer,
        cert_serial=info.serial,
        cert_sha256=info.sha256_fingerprint,
        not_before=info.not_before,
        not_after=info.not_after,
        created_by_id=str(created_by.pk) if created_by else None,
    )


def _finish_identity(
    identity: SigningIdentity, pin: str | None, seal_image: bytes | None
) -> SigningIdentity:
    if pin:
        _set_pin_hash(identity, pin)
    if seal_image:
        identity.seal_image.put(io.BytesIO(seal_image))
    identity.save()
    record("signing_identity.upload", obj=identity, detail={"backend": identity.backend})
    return identity


def create_pkcs12_identity(
    data: bytes,
    passphrase: str,
    *,
    owner: User | None = None,
    agency_seal: bool = False,
    label: str | None = None,
    pin: str | None = None,
    seal_image: bytes | None = None,
    created_by: User | None = None,
    check_dates: bool = True,
) -> SigningIdentity:
    """Store an uploaded PKCS#12 file, encrypted with the master key with its passphrase."""
    with _refused_on_core_error():
        parsed = Pkcs12Identity.from_pkcs12(data, passphrase)
        if check_dates:
            parsed.check_validity()
    identity = _new_identity(parsed.cert_info, "pkcs12", owner, agency_seal, label, created_by)
    identity.encrypted_key.pkcs12 = _seal(identity, data)
    identity.encrypted_key.passphrase = _seal(identity, passphrase.encode("utf-8"))
    return _finish_identity(identity, pin, seal_image)


def create_pkcs11_identity(
    lib_path: str,
    token_label: str,
    key_label: str,
    token_pin: str,
    *,
    owner: User | None = None,
    agency_seal: bool = False,
    label: str | None = None,
    chain_der: Sequence[bytes] = (),
    pin: str | None = None,
    seal_image: bytes | None = None,
    created_by: User | None = None,
) -> SigningIdentity:
    """Register a key on a server token or HSM (its PIN is stored encrypted)."""
    with _refused_on_core_error():
        opened = open_pkcs11_identity(
            lib_path,
            token_label=token_label,
            pin=token_pin,
            key_label=key_label,
            chain_der=chain_der,
        )
    identity = _new_identity(opened.cert_info, "pkcs11", owner, agency_seal, label, created_by)
    identity.pkcs11_lib, identity.pkcs11_token = lib_path, token_label
    identity.pkcs11_key_label = key_label
    identity.chain_der = list(chain_der)
    identity.encrypted_key.token_pin = _seal(identity, token_pin.encode("utf-8"))
    return _finish_identity(identity, pin, seal_image)


def create_csc_identity(
    base_url: str,
    credential_id: str,
    access_token: str,
    *,
    owner: User | None = None,
    agency_seal: bool = False,
    label: str | None = None,
    confirm_timeout: float = 90.0,
    pin: str | None = None,
    created_by: User | None = None,
) -> SigningIdentity:
    """Register a remote-signing credential (CSC API v2); its access token is stored encrypted."""
    client = CscClient(CscSettings(base_url, access_token, confirm_timeout=confirm_timeout))
    with _refused_on_core_error():
        opened = open_csc_identity(client, credential_id)
    identity = _new_identity(opened.cert_info, "csc", owner, agency_seal, label, created_by)
    identity.csc_base_url, identity.csc_credential_id = base_url, credential_id
    identity.csc_confirm_timeout = confirm_timeout
    identity.encrypted_key.access_token = _seal(identity, access_token.encode("utf-8"))
    return _finish_identity(identity, pin, None)


def load_identity(identity: SigningIdentity) -> CoreIdentity:
    """Open the key of a stored identity (cached per worker process)."""
    if not identity.active:
        raise SigningRefused("Chứng thư số này đã bị ngừng sử dụng.")
    secrets = identity.encrypted_key or SealedSecrets()
    if identity.backend == "pkcs12":
        passphrase = _unseal(identity, secrets.passphrase).decode("utf-8")
        return load_pkcs12_identity(
            secrets.pkcs12,
            passphrase,
            master_key=_master_key(),
            context=identity.secret_context(),
        )
    if identity.backend == "pkcs11":
        return open_pkcs11_identity(
            identity.pkcs11_lib,
            token_label=identity.pkcs11_token,
            pin=_unseal(identity, secrets.token_pin).decode("utf-8"),
            key_label=identity.pkcs11_key_label or None,
            chain_der=list(identity.chain_der),
        )
    if identity.backend == "csc":
        settings = CscSettings(
            identity.csc_base_url,
            _unseal(identity, secrets.access_token).decode("utf-8"),
            confirm_timeout=identity.csc_confirm_timeout or 90.0,
            poll_interval=float(current_app.config.get("SIGNING_CSC_POLL_SECONDS", 2.0)),
        )
        return open_csc_identity(CscClient(settings), identity.csc_credential_id)
    raise SigningRefused(f"Kiểu khóa ký không được hỗ trợ: {identity.backend}.")


def identity_for(user: User, kind: str) -> SigningIdentity:
    """Return the identity `user` signs `kind` with: their own, or the agency seal."""
    if kind in ("seal", "attachment"):
        if not user.can("document.seal"):
            raise Forbidden("Bạn không có quyền dùng chữ ký số của cơ quan.")
        found = SigningIdentity.objects.agency().order_by("-created_at").first()
        missing = "Cơ quan chưa có chứng thư số (chữ ký số cơ quan). Liên hệ quản trị hệ thống."
    else:
        found = SigningIdentity.objects.of_user(user).order_by("-created_at").first()
        missing = "Bạn chưa có chứng thư số trên hệ thống. Liên hệ quản trị hệ thống để được cấp."
    if found is None:
        raise SigningRefused(missing, code="no_identity")
    _check_dates(found)
    return found


def _check_dates(identity: SigningIdentity, now: dt.datetime | None = None) -> None:
    """Refuse at once (in the request) a certificate that cannot sign now."""
    now = now or utcnow()
    cn = identity.cert_common_name or identity.label
    expires, starts = identity.expires_at(), identity.not_before
    if starts is not None and (starts if starts.tzinfo else starts.replace(tzinfo=dt.UTC)) > now:
        raise SigningRefused(
            f"Chứng thư số của {cn} chỉ có hiệu lực từ {starts:%d/%m/%Y}.",
            code="cert_not_yet_valid",
        )
    if expires is not None and expires < now:
        raise SigningRefused(
            f"Chứng thư số của {cn} đã hết hạn ngày {expires:%d/%m/%Y}.", code="cert_expired"
        )


# Signing PIN and authorization --------------------------------------------------------------


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def _set_pin_hash(identity: SigningIdentity, pin: str) -> None:
    pin = (pin or "").strip()
    if not pin.isdigit() or not 6 <= len(pin) <= 12:
        raise ValidationFailed("Mã PIN ký số phải gồm 6 đến 12 chữ số.")
    identity.encrypted_key.signing_pin_hash = _hasher().hash(pin)


def set_signing_pin(identity: SigningIdentity, pin: str) -> None:
    """Set (or change) the PIN that authorizes signing with this identity."""
    _set_pin_hash(identity, pin)
    identity.pin_failures = 0
    identity.pin_locked_until = None
    identity.save()


def _pin_matches(identity: SigningIdentity, code: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(identity.encrypted_key.signing_pin_hash, code))
    except (VerificationError, InvalidHashError):
        return False


def _pin_failed(identity: SigningIdentity) -> None:
    identity.reload("pin_failures")
    if identity.pin_failures + 1 >= PIN_MAX_FAILURES:
        SigningIdentity.objects(pk=identity.pk).update_one(
            set__pin_failures=0, set__pin_locked_until=utcnow() + PIN_LOCK
        )
    else:
        SigningIdentity.objects(pk=identity.pk).update_one(inc__pin_failures=1)


def _client_ip() -> str | None:
    return request.remote_addr if has_request_context() else None


def authorize(
    user: User,
    code: str | None,
    *,
    identity: SigningIdentity | None = None,
    document_ids: Iterable[str] = (),
    ip: str | None = None,
) -> SigningAuthorization:
    """Verify the signer's TOTP code or signing PIN now; record that they authorized signing.

    Called in the web request: the code never reaches a job, Redis or a log.
    """
    from workflows.auth import check_otp_step
    from workflows.errors import AuthError

    code = (code or "").strip().replace(" ", "")
    document_ids = [str(d) for d in document_ids]
    if not code:
        raise SigningCodeRequired()
    ip = ip or _client_ip()
    method = None
    has_pin = identity is not None and identity.has_signing_pin
    if identity is not None and has_pin:
        locked = identity.pin_locked_until
        if locked is not None and (locked if locked.tzinfo else locked.replace(tzinfo=dt.UTC)) > (
            utcnow()
        ):
            raise InvalidSigningCode(
                "Mã PIN ký số tạm bị khóa do nhập sai nhiều lần. Vui lòng thử lại sau ít phút.",
                code="signing_pin_locked",
            )
        if _pin_matches(identity, code):
            method = "pin"
            if identity.pin_failures:
                SigningIdentity.objects(pk=identity.pk).update_one(set__pin_failures=0)
    if method is None and user.totp_enabled:
        try:
            # a fresh copy: the replay guard compares with the last accepted time step
            check_otp_step(User.objects.get(pk=user.pk), code, ip)
            method = "totp"
        except AuthError:
            pass
    if method is None:
        if identity is not None and has_pin:
            _pin_failed(identity)
        elif not user.totp_enabled:
            raise SigningRefused(
                "Bạn chưa bật xác thực OTP và chưa có mã PIN ký số, nên chưa thể ký. "
                "Vui lòng bật OTP hoặc liên hệ quản trị hệ thống.",
                code="no_signing_factor",
            )
        record("signature.authorization_failed", obj=user, detail={"documents": len(document_ids)})
        raise InvalidSigningCode()
    now = utcnow()
    ttl = int(current_app.config.get("SIGNING_AUTHORIZATION_SECONDS", AUTHORIZATION_TTL.seconds))
    return SigningAuthorization(
        user=user,
        method=method,
        document_ids=document_ids,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl),
        ip=ip,
    ).save()
