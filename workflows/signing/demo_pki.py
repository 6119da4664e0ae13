"""Generate a throw-away PKI (CA, leader, deputy, agency seal, TSA) for tests and the demo."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEMO_ORG = "UBND tỉnh Demo"
DEMO_AGENCY = "Sở Nội vụ tỉnh Demo"


@dataclass(frozen=True)
class TestIdentity:
    """A key pair with its certificate and the chain above it."""

    name: str
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def cert_der(self) -> bytes:
        """Return the certificate in DER."""
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def cert_pem(self) -> bytes:
        """Return the certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """Return the private key as unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def pkcs12(self, passphrase: bytes | None) -> bytes:
        """Return key, certificate and chain as a PKCS#12 file."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(
            self.name.encode("utf-8"), self.key, self.cert, list(self.chain) or None, encryption
        )


@dataclass(frozen=True)
class DemoPki:
    """The demo PKI: a root CA and the people and services that sign."""

    ca: TestIdentity
    leader: TestIdentity
    deputy: TestIdentity
    seal: TestIdentity
    tsa: TestIdentity
    expired: TestIdentity
    not_yet_valid: TestIdentity

    def mismatched_pkcs12(self, passphrase: bytes) -> bytes:
        """Return a PKCS#12 holding the deputy's key with the leader's certificate."""
        return pkcs12.serialize_key_and_certificates(
            b"mismatch",
            self.deputy.key,
            None,
            [self.leader.cert, self.ca.cert],
            serialization.BestAvailableEncryption(passphrase),
        )


def _name(common_name: str, organization: str = DEMO_ORG) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Tỉnh Demo"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_key(key_size: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _issue(
    *,
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: TestIdentity | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool = False,
    tsa: bool = False,
) -> x509.Certificate:
    issuer_name = issuer.cert.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=not ca,
            content_commitment=not ca and not tsa,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if tsa:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return builder.sign(signing_key, hashes.SHA256())


def make_demo_pki(*, key_size: int = 2048, now: dt.datetime | None = None) -> DemoPki:
    """Build a fresh demo PKI valid for a year around now."""
    now = now or dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(days=30), now + dt.timedelta(days=365)
    ca_key = _new_key(key_size)
    ca_name = _name("VănThư Demo Root CA", "VănThư Demo PKI")
    ca_cert = _issue(
        subject=ca_name,
        key=ca_key,
        issuer=None,
        not_before=start,
        not_after=now + dt.timedelta(days=3650),
        ca=True,
    )
    ca = TestIdentity("VănThư Demo Root CA", ca_key, ca_cert)

    def person(
        common_name: str,
        organization: str = DEMO_ORG,
        *,
        not_before: dt.datetime = start,
        not_after: dt.datetime = end,
        tsa: bool = False,
    ) -> TestIdentity:
        key = _new_key(key_size)
        cert = _issue(
            subject=_name(common_name, organization),
            key=key,
            issuer=ca,
            not_before=not_before,
            not_after=not_after,
            tsa=tsa,
        )
        return TestIdentity(common_name, key, cert, (ca_cert,))

    return DemoPki(
        ca=ca,
        leader=person("Nguyễn Văn An"),
        deputy=person("Trần Thị Bình"),
        seal=person(DEMO_AGENCY, DEMO_AGENCY),
        tsa=person("VănThư Demo TSA", "VănThư Demo PKI", tsa=True),
        expired=person(
            "Lê Văn Cũ",
            not_before=now - dt.timedelta(days=400),
            not_after=now - dt.timedelta(days=35),
        ),
        not_yet_valid=person(
            "Phạm Văn Mới",
            not_before=now + dt.timedelta(days=10),
            not_after=now + dt.timedelta(days=400),
        ),
    )
