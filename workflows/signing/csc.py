"""Remote signing through the Cloud Signature Consortium API v2 (Viettel MySign and peers).

Flow per signature (or per batch): credentials/authorize with the document hashes and a
label, then signatures/signHash in asynchronous mode, then signatures/signPolling until
the user confirms on the phone, refuses, or the confirmation timeout passes.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from asn1crypto import algos
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pyhanko.sign.signers import ExternalSigner, Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from .errors import (
    RemoteSigningError,
    RemoteSigningRefusedError,
    RemoteSigningTimeoutError,
)
from .identity import SigningIdentity

log = logging.getLogger(__name__)

HASH_OIDS = {
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
RSA_OID = "1.2.840.113549.1.1.1"
ECDSA_OIDS = {
    "sha256": "1.2.840.10045.4.3.2",
    "sha384": "1.2.840.10045.4.3.3",
    "sha512": "1.2.840.10045.4.3.4",
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
PENDING_ERRORS = {"authorization_pending", "request_pending", "pending", "slow_down"}
REFUSED_ERRORS = {"access_denied", "refused", "rejected", "user_rejected", "user_refused"}
EXPIRED_ERRORS = {"expired", "expired_token", "expired_request", "timeout"}


@dataclass(frozen=True)
class CscSettings:
    """How to reach one CSC service; ``access_token`` is the OAuth2 bearer token."""

    base_url: str
    access_token: str
    confirm_timeout: float = 90.0
    poll_interval: float = 2.0
    request_timeout: float = 15.0
    verify_tls: bool | str = True
    client_data: str | None = None


@dataclass(frozen=True)
class CscCredential:
    """The parts of credentials/info a signer needs."""

    credential_id: str
    certificates: list[bytes]
    key_algorithms: list[str] = field(default_factory=list)
    key_length: int | None = None
    auth_mode: str = "implicit"
    multisign: int = 1


class CscClient:
    """Minimal synchronous CSC API v2 client (JSON over HTTPS, bearer token)."""

    def __init__(
        self,
        settings: CscSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.http = session or requests.Session()
        self._sleep = sleep
        self._clock = clock

    def _call(self, endpoint: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url = f"{self.settings.base_url.rstrip('/')}/{endpoint}"
        try:
            response = self.http.post(
                url,
                json=payload,
                headers={"Authorization": f"Bearer {self.settings.access_token}"},
                timeout=self.settings.request_timeout,
                verify=self.settings.verify_tls,
            )
        except requests.RequestException as exc:
            raise RemoteSigningError(
                "Không kết nối được dịch vụ ký số từ xa.", detail=f"{endpoint}: {exc}"
            ) from exc
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return response.status_code, body

    def _ok(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        status, body = self._call(endpoint, payload)
        if status >= 300:
            raise _error_from(endpoint, status, body)
        return body

    def info(self) -> dict[str, Any]:
        """Call /info (service metadata)."""
        return self._ok("info", {})

    def list_credentials(self, user_id: str | None = None) -> list[str]:
        """Return the credential ids the token may use."""
        payload: dict[str, Any] = {"maxResults": 100}
        if user_id:
            payload["userID"] = user_id
        return list(self._ok("credentials/list", payload).get("credentialIDs", []))

    def credential_info(self, credential_id: str) -> CscCredential:
        """Fetch the certificate chain and key description of a credential."""
        body = self._ok(
            "credentials/info",
            {
                "credentialID": credential_id,
                "certificates": "chain",
                "certInfo": True,
                "authInfo": True,
            },
        )
        cert = body.get("cert") or {}
        key = body.get("key") or {}
        if cert.get("status", "valid") != "valid" or key.get("status", "enabled") != "enabled":
            raise RemoteSigningError("Chứng thư số trên dịch vụ ký số từ xa không còn hiệu lực.")
        try:
            certificates = [base64.b64decode(c) for c in cert.get("certificates", [])]
        except ValueError as exc:
            raise RemoteSigningError(detail="credentials/info: bad certificate") from exc
        if not certificates:
            raise RemoteSigningError("Dịch vụ ký số từ xa không trả về chứng thư số.")
        return CscCredential(
            credential_id=credential_id,
            certificates=certificates,
            key_algorithms=list(key.get("algo", [])),
            key_length=key.get("len"),
            auth_mode=str(body.get("authMode", "implicit")),
            multisign=int(body.get("multisign", 1)),
        )

    def authorize(
        self, credential_id: str, digests: Sequence[bytes], hash_oid: str, *, description: str
    ) -> str:
        """Obtain the Signature Activation Data for these hashes."""
        body = self._ok(
            "credentials/authorize",
            {
                "credentialID": credential_id,
                "numSignatures": len(digests),
                "hashes": [base64.b64encode(d).decode("ascii") for d in digests],
                "hashAlgorithmOID": hash_oid,
                "description": description[:500],
                **({"clientData": self.settings.client_data} if self.settings.client_data else {}),
            },
        )
        sad = body.get("SAD")
        if not sad:
            raise RemoteSigningError(detail="credentials/authorize: no SAD")
        return str(sad)

    def sign_hashes(
        self,
        credential_id: str,
        sad: str,
        digests: Sequence[bytes],
        *,
        hash_oid: str,
        sign_algo: str,
        label: str,
    ) -> list[bytes]:
        """Ask for signatures and wait until the user confirms (or refuses, or time runs out)."""
        timeout = self.settings.confirm_timeout
        deadline = self._clock() + timeout
        body = self._ok(
            "signatures/signHash",
            {
                "credentialID": credential_id,
                "SAD": sad,
                "hashes": [base64.b64encode(d).decode("ascii") for d in digests],
                "hashAlgorithmOID": hash_oid,
                "signAlgo": sign_algo,
                "operationMode": "A",
                "validity_period": max(1, int(timeout)),
                "clientData": label[:500],
            },
        )
        if "signatures" in body:
            return _decode_signatures(body, len(digests))
        response_id = body.get("responseID")
        if not response_id:
            raise RemoteSigningError(detail="signatures/signHash: no responseID")
        log.info("remote signing %s: waiting for confirmation", response_id)
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise RemoteSigningTimeoutError(
                    f"Hết {int(timeout)} giây chờ người ký xác nhận trên điện thoại."
                )
            self._sleep(min(self.settings.poll_interval, remaining))
            status, body = self._call("signatures/signPolling", {"responseID": response_id})
            if status < 300 and "signatures" in body:
                return _decode_signatures(body, len(digests))
            if status == 202 or str(body.get("error", "")).lower() in PENDING_ERRORS:
                continue
            raise _error_from("signatures/signPolling", status, body)


def _decode_signatures(body: dict[str, Any], expected: int) -> list[bytes]:
    values = body.get("signatures") or []
    if len(values) != expected:
        raise RemoteSigningError(detail=f"expected {expected} signatures, got {len(values)}")
    try:
        return [base64.b64decode(v) for v in values]
    except ValueError as exc:
        raise RemoteSigningError(detail="bad base64 signature") from exc


def _error_from(endpoint: str, status: int, body: dict[str, Any]) -> RemoteSigningError:
    code = str(body.get("error", "")).lower()
    detail = f"{endpoint}: HTTP {status} {code} {body.get('error_description', '')}".strip()
    if code in REFUSED_ERRORS:
        return RemoteSigningRefusedError(detail=detail)
    if code in EXPIRED_ERRORS:
        return RemoteSigningTimeoutError(detail=detail)
    if status == 401:
        return RemoteSigningError(
            "Phiên làm việc với dịch vụ ký số từ xa đã hết hạn hoặc không hợp lệ.", detail=detail
        )
    return RemoteSigningError(detail=detail)


class CscIdentity(SigningIdentity):
    """A credential held by a remote signing service; the user confirms on the phone."""

    backend = "csc"
    remote = True

    def __init__(self, client: CscClient, credential: CscCredential) -> None:
        super().__init__(credential.certificates[0], credential.certificates[1:])
        self.client = client
        self.credential = credential
        self._public_key = x509.load_der_x509_certificate(credential.certificates[0]).public_key()

    def _mechanism(self, digest_algorithm: str) -> tuple[str, str]:
        if isinstance(self._public_key, rsa.RSAPublicKey):
            return RSA_OID, f"{digest_algorithm}_rsa"
        return ECDSA_OIDS[digest_algorithm], f"{digest_algorithm}_ecdsa"

    def signer(self) -> Signer:
        """Return a placeholder signer used to lay out the CMS before the remote call."""
        _, mechanism = self._mechanism("sha256")
        return ExternalSigner(
            signing_cert=self.certificate,
            cert_registry=SimpleCertificateStore.from_certs(self.chain),
            signature_value=self.signature_size(),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": mechanism}),
        )

    def sign_hash(self, digest: bytes, digest_algorithm: str, *, label: str) -> bytes:
        """Sign one digest after the user's confirmation."""
        return self.sign_hashes([digest], digest_algorithm, label=label)[0]

    def sign_hashes(
        self, digests: Sequence[bytes], digest_algorithm: str, *, label: str
    ) -> list[bytes]:
        """Sign several digests with one authorization and one confirmation."""
        hash_oid = HASH_OIDS[digest_algorithm]
        sign_algo, _ = self._mechanism(digest_algorithm)
        cid = self.credential.credential_id
        sad = self.client.authorize(cid, digests, hash_oid, description=label)
        signatures = self.client.sign_hashes(
            cid, sad, digests, hash_oid=hash_oid, sign_algo=sign_algo, label=label
        )
        for digest, signature in zip(digests, signatures, strict=True):
            self._check(digest, signature, digest_algorithm)
        return signatures

    def _check(self, digest: bytes, signature: bytes, digest_algorithm: str) -> None:
        """Refuse a signature that does not verify (wrong key or broken service)."""
        prehashed = Prehashed(_HASHES[digest_algorithm]())
        try:
            if isinstance(self._public_key, rsa.RSAPublicKey):
                self._public_key.verify(signature, digest, padding.PKCS1v15(), prehashed)
            elif isinstance(self._public_key, ec.EllipticCurvePublicKey):
                self._public_key.verify(signature, digest, ec.ECDSA(prehashed))
            else:
                raise RemoteSigningError(detail="unsupported key type")
        except InvalidSignature as exc:
            raise RemoteSigningError(
                "Chữ ký trả về từ dịch vụ ký số từ xa không khớp với chứng thư số."
            ) from exc


def open_csc_identity(
    client: CscClient, credential_id: str, *, now: dt.datetime | None = None
) -> CscIdentity:
    """Fetch a credential's certificate chain and return its identity (validity checked)."""
    identity = CscIdentity(client, client.credential_info(credential_id))
    identity.check_validity(now)
    return identity
