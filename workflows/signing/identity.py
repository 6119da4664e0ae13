"""Signing identities: one interface over PKCS#12 files, PKCS#11 tokens and remote services."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign.signers import Signer, SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

from .errors import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    IdentityError,
    KeyMismatchError,
    WrongPassphraseError,
)
from .secrets import decrypt_secret

log = logging.getLogger(__name__)

_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class CertInfo:
    """What a SignatureRecord keeps about the signing certificate."""

    subject: str
    common_name: str
    issuer: str
    serial: str
    sha256_fingerprint: str
    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def from_der(cls, der: bytes) -> CertInfo:
        """Describe a DER certificate."""
        cert = asn1_x509.Certificate.load(der)
        validity = cert["tbs_certificate"]["validity"]
        parsed = x509.load_der_x509_certificate(der)
        return cls(
            subject=parsed.subject.rfc4514_string(),
            common_name=str(cert.subject.native.get("common_name", "")),
            issuer=parsed.issuer.rfc4514_string(),
            serial=format(cert.serial_number, "X"),
            sha256_fingerprint=hashlib.sha256(der).hexdigest(),
            not_before=validity["not_before"].native,
            not_after=validity["not_after"].native,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (datetimes as ISO 8601)."""
        data = asdict(self)
        data["not_before"] = self.not_before.isoformat()
        data["not_after"] = self.not_after.isoformat()
        return data

    def check_validity(self, now: dt.datetime | None = None) -> None:
        """Raise if the certificate is expired or not yet valid at ``now``."""
        now = now or dt.datetime.now(dt.UTC)
        if now < self.not_before:
            raise CertificateNotYetValidError(
                f"Chứng thư số của {self.common_name} chỉ có hiệu lực từ "
                f"{self.not_before:%d/%m/%Y}."
            )
        if now > self.not_after:
            raise CertificateExpiredError(
                f"Chứng thư số của {self.common_name} đã hết hạn ngày {self.not_after:%d/%m/%Y}."
            )


class SigningIdentity(ABC):
    """A certificate plus a way to make signatures with its key."""

    backend: str = "?"
    remote: bool = False

    def __init__(self, certificate_der: bytes, chain_der: Sequence[bytes] = ()) -> None:
        self.certificate = asn1_x509.Certificate.load(certificate_der)
        self.chain = [asn1_x509.Certificate.load(der) for der in chain_der]
        self.cert_info = CertInfo.from_der(certificate_der)

    def check_validity(self, now: dt.datetime | None = None) -> None:
        """Raise if the certificate cannot sign at ``now``."""
        self.cert_info.check_validity(now)

    @abstractmethod
    def signer(self) -> Signer:
        """Return the pyHanko signer (for remote identities: a placeholder for sizing)."""

    def signature_size(self) -> int:
        """Return the size in bytes of one raw signature value."""
        public_key = self.certificate.public_key
        if public_key.algorithm == "rsa":
            return int(public_key.bit_size + 7) // 8
        return 2 * ((int(public_key.bit_size) + 7) // 8) + 16

    def sign_hash(self, digest: bytes, digest_algorithm: str, *, label: str) -> bytes:
        """Sign a precomputed digest (remote identities only)."""
        raise NotImplementedError

    def sign_hashes(
        self, digests: Sequence[bytes], digest_algorithm: str, *, label: str
    ) -> list[bytes]:
        """Sign several digests with one authorization (remote identities only)."""
        return [self.sign_hash(d, digest_algorithm, label=label) for d in digests]


class _PreloadedKeySigner(SimpleSigner):
    """SimpleSigner that keeps the parsed private key instead of re-parsing it per signature."""

    def __init__(self, key: Any, cert: asn1_x509.Certificate, others: Iterable[Any]) -> None:
        self._key = key
        key_info = asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        super().__init__(cert, key_info, SimpleCertificateStore.from_certs(list(others)))

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        algorithm = _DIGESTS[digest_algorithm]()
        if isinstance(self._key, rsa.RSAPrivateKey):
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
            if mechanism.signature_algo == "rsassa_pkcs1v15":
                return self._key.sign(data, padding.PKCS1v15(), algorithm)
        elif isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(algorithm))
        return super().sign_raw(data, digest_algorithm)


def _public_der(public_key: Any) -> bytes:
    return public_key.public_bytes(  # type: ignore[no-any-return,unused-ignore]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Pkcs12Identity(SigningIdentity):
    """Key material held in memory (from an uploaded PKCS#12 file or a PEM pair)."""

    backend = "pkcs12"

    def __init__(
        self, key: Any, cert: x509.Certificate, chain: Sequence[x509.Certificate] = ()
    ) -> None:
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise IdentityError("Chỉ hỗ trợ khóa RSA hoặc ECDSA.")
        if _public_der(key.public_key()) != _public_der(cert.public_key()):
            raise KeyMismatchError()
        der = cert.public_bytes(serialization.Encoding.DER)
        chain_der = [c.public_bytes(serialization.Encoding.DER) for c in chain]
        super().__init__(der, chain_der)
        self._signer = _PreloadedKeySigner(key, self.certificate, self.chain)

    def signer(self) -> Signer:
        """Return the cached pyHanko signer."""
        return self._signer

    @classmethod
    def from_pkcs12(cls, data: bytes, passphrase: str | bytes | None) -> Pkcs12Identity:
        """Parse a PKCS#12 file; the certificate is the one matching the key."""
        password = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
        try:
            key, cert, others = pkcs12.load_key_and_certificates(data, password or None)
        except ValueError as exc:
            raise WrongPassphraseError() from exc
        if key is None:
            raise IdentityError("Tệp PKCS#12 không chứa khóa bí mật.")
        if cert is None:
            # some exporters put every certificate in the bag without linking one to the key
            key_der = _public_der(key.public_key())
            matching = [c for c in others if _public_der(c.public_key()) == key_der]
            if not matching:
                raise KeyMismatchError()
            cert = matching[0]
        chain = [c for c in others if c != cert]
        return cls(key, cert, chain)

    @classmethod
    def from_pem(
        cls,
        key_pem: bytes,
        cert_pem: bytes,
        chain_pem: Iterable[bytes] = (),
        *,
        password: bytes | None = None,
    ) -> Pkcs12Identity:
        """Build an identity from PEM key and certificates."""
        try:
            key = serialization.load_pem_private_key(key_pem, password)
        except (ValueError, TypeError) as exc:
            raise WrongPassphraseError() from exc
        cert = x509.load_pem_x509_certificate(cert_pem)
        chain = [x509.load_pem_x509_certificate(pem) for pem in chain_pem]
        return cls(key, cert, chain)


class _IdentityCache:
    """Per-process LRU cache of loaded identities (a warm worker parses each key once)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[bytes, SigningIdentity] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> SigningIdentity | None:
        with self._lock:
            identity = self._items.get(key)
            if identity is not None:
                self._items.move_to_end(key)
            return identity

    def put(self, key: bytes, identity: SigningIdentity) -> None:
        with self._lock:
            self._items[key] = identity
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def pop(self, key: bytes) -> SigningIdentity | None:
        with self._lock:
            return self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _IdentityCache()


def clear_identity_cache() -> None:
    """Forget every cached identity (tests, key rotation)."""
    _cache.clear()


def _cache_key(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.digest()


def load_pkcs12_identity(
    blob: bytes,
    passphrase: str | bytes | None,
    *,
    master_key: str | bytes | None = None,
    context: bytes = b"",
    now: dt.datetime | None = None,
) -> Pkcs12Identity:
    """Load a PKCS#12 identity, decrypting it with the master key first when given.

    The result is cached per process under a fingerprint of the (encrypted) blob and the
    passphrase, so a warm worker neither decrypts nor parses the key again and a wrong
    passphrase never hits the cache. The certificate validity is checked on every call.
    """
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else (passphrase or b"")
    master = (
        b""
        if master_key is None
        else (master_key.encode("ascii") if isinstance(master_key, str) else master_key)
    )
    key = _cache_key(b"pkcs12", blob, secret, master, context)
    identity = _cache.get(key)
    if not isinstance(identity, Pkcs12Identity):
        data = blob if master_key is None else decrypt_secret(master_key, blob, context=context)
        identity = Pkcs12Identity.from_pkcs12(data, passphrase)
        _cache.put(key, identity)
        log.info("loaded signing key %s", identity.cert_info.sha256_fingerprint[:16])
    identity.check_validity(now)
    return identity


def cached_identity(key: bytes) -> SigningIdentity | None:
    """Return a cached identity (used by the PKCS#11 loader)."""
    return _cache.get(key)


def cache_identity(key: bytes, identity: SigningIdentity) -> None:
    """Store an identity in the per-process cache."""
    _cache.put(key, identity)


def evict_identity(key: bytes) -> SigningIdentity | None:
    """Remove and return a cached identity."""
    return _cache.pop(key)


def identity_cache_key(*parts: bytes) -> bytes:
    """Fingerprint parts into a cache key (secrets are hashed, never stored)."""
    return _cache_key(*parts)
