"""PDF signing core: identities, Decree 30 appearances, PAdES signing and verification.

A library over bytes and key material: no models, Flask or RQ. Jobs call ``sign_pdf`` /
``sign_pdfs`` with an identity from ``load_pkcs12_identity``, ``open_pkcs11_identity`` or
``open_csc_identity``; views call ``verify_pdf``.
"""

from .appearance import (
    Appearance,
    attachment_appearance,
    initial_appearance,
    leader_appearance,
    seal_appearance,
    vietnam_iso,
)
from .csc import CscClient, CscIdentity, CscSettings, open_csc_identity
from .errors import (
    AlreadySignedError,
    CertificateExpiredError,
    CertificateNotYetValidError,
    DocumentModifiedError,
    EncryptedPdfError,
    FieldExistsError,
    IdentityError,
    InvalidPdfError,
    KeyMismatchError,
    PlacementError,
    RemoteSigningError,
    RemoteSigningRefusedError,
    RemoteSigningTimeoutError,
    SecretError,
    SigningError,
    TokenError,
    VerificationInputError,
    WrongPassphraseError,
    WrongPinError,
)
from .identity import (
    CertInfo,
    Pkcs12Identity,
    SigningIdentity,
    clear_identity_cache,
    load_pkcs12_identity,
)
from .pdf import SignatureKind, SignRequest, sign_pdf, sign_pdfs
from .pkcs11_token import Pkcs11Identity, open_pkcs11_identity
from .placement import Box, NearText, OverField, PageCorner, Placement
from .secrets import decrypt_secret, encrypt_secret, generate_master_key
from .stamp_font import stamp_font
from .stamps import stamp_pdf
from .verify import verify_pdf


def warm_up() -> None:
    """Load the stamp fonts once, e.g. when a signing worker starts."""
    stamp_font(False)
    stamp_font(True)


__all__ = [
    "AlreadySignedError",
    "Appearance",
    "Box",
    "CertInfo",
    "CertificateExpiredError",
    "CertificateNotYetValidError",
    "CscClient",
    "CscIdentity",
    "CscSettings",
    "DocumentModifiedError",
    "EncryptedPdfError",
    "FieldExistsError",
    "IdentityError",
    "InvalidPdfError",
    "KeyMismatchError",
    "NearText",
    "OverField",
    "PageCorner",
    "Pkcs11Identity",
    "Pkcs12Identity",
    "Placement",
    "PlacementError",
    "RemoteSigningError",
    "RemoteSigningRefusedError",
    "RemoteSigningTimeoutError",
    "SecretError",
    "SignRequest",
    "SignatureKind",
    "SigningError",
    "SigningIdentity",
    "TokenError",
    "VerificationInputError",
    "WrongPassphraseError",
    "WrongPinError",
    "attachment_appearance",
    "clear_identity_cache",
    "decrypt_secret",
    "encrypt_secret",
    "generate_master_key",
    "initial_appearance",
    "leader_appearance",
    "load_pkcs12_identity",
    "open_csc_identity",
    "open_pkcs11_identity",
    "seal_appearance",
    "sign_pdf",
    "sign_pdfs",
    "stamp_pdf",
    "verify_pdf",
    "vietnam_iso",
    "warm_up",
]
