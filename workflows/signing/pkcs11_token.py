"""PKCS#11 identities: USB tokens and HSMs on the server, through python-pkcs11 and pyHanko."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import pkcs11
from asn1crypto import x509 as asn1_x509
from pkcs11 import exceptions as p11_errors
from pyhanko.config.pkcs11 import TokenCriteria
from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session
from pyhanko.sign.signers import Signer

from ._aio import run_sync
from .errors import TokenError, WrongPinError
from .identity import (
    SigningIdentity,
    cache_identity,
    cached_identity,
    evict_identity,
    identity_cache_key,
)

log = logging.getLogger(__name__)


class Pkcs11Identity(SigningIdentity):
    """A key that never leaves its token; the session stays open in a warm worker."""

    backend = "pkcs11"

    def __init__(self, session: pkcs11.Session, signer: PKCS11Signer, chain_der: Sequence[bytes]):
        self.session = session
        self._signer = signer
        cert = signer.signing_cert
        if cert is None:
            raise TokenError("Không tìm thấy chứng thư số trên thiết bị ký số.")
        super().__init__(cert.dump(), chain_der)

    def signer(self) -> Signer:
        """Return the pyHanko PKCS#11 signer bound to the open session."""
        return self._signer

    def close(self) -> None:
        """Log out and close the session."""
        try:
            self.session.close()
        except p11_errors.PKCS11Error:  # already gone with the token
            log.warning("closing PKCS#11 session failed", exc_info=True)


# (library, token label) -> cache key and identity holding the token's logged-in session
_open_tokens: dict[tuple[str, str], tuple[bytes, Pkcs11Identity]] = {}


def _close_token(lib_path: str, token_label: str) -> None:
    entry = _open_tokens.pop((lib_path, token_label), None)
    if entry is not None:
        evict_identity(entry[0])
        entry[1].close()


def open_pkcs11_identity(
    lib_path: str,
    *,
    token_label: str,
    pin: str,
    key_label: str | None = None,
    key_id: bytes | None = None,
    cert_label: str | None = None,
    chain_der: Sequence[bytes] = (),
    now: dt.datetime | None = None,
) -> Pkcs11Identity:
    """Open (or reuse) a logged-in session on a token and return its signing identity.

    A different PIN, key or certificate closes the token's cached session first, so the
    token itself checks every new PIN.
    """
    key = identity_cache_key(
        b"pkcs11",
        lib_path.encode(),
        token_label.encode(),
        pin.encode(),
        (key_label or "").encode(),
        key_id or b"",
        (cert_label or "").encode(),
    )
    identity = cached_identity(key)
    if not isinstance(identity, Pkcs11Identity):
        _close_token(lib_path, token_label)
        identity = _open(lib_path, token_label, pin, key_label, key_id, cert_label, chain_der)
        cache_identity(key, identity)
        _open_tokens[(lib_path, token_label)] = (key, identity)
    identity.check_validity(now)
    return identity


def _open(
    lib_path: str,
    token_label: str,
    pin: str,
    key_label: str | None,
    key_id: bytes | None,
    cert_label: str | None,
    chain_der: Sequence[bytes],
) -> Pkcs11Identity:
    try:
        session = open_pkcs11_session(
            lib_path, token_criteria=TokenCriteria(label=token_label), user_pin=pin
        )
    except (p11_errors.PinIncorrect, p11_errors.PinLenRange, p11_errors.PinInvalid) as exc:
        raise WrongPinError() from exc
    except p11_errors.PinLocked as exc:
        raise WrongPinError("Thiết bị ký số đã bị khóa do nhập sai mã PIN nhiều lần.") from exc
    except (p11_errors.PKCS11Error, OSError, RuntimeError) as exc:
        raise TokenError(detail=str(exc)) from exc
    try:
        signer = PKCS11Signer(
            session,
            cert_label=cert_label,
            key_label=key_label,
            key_id=key_id,
            ca_chain=[asn1_x509.Certificate.load(der) for der in chain_der],
        )
        run_sync(signer.ensure_objects_loaded())
        return Pkcs11Identity(session, signer, chain_der)
    except (p11_errors.PKCS11Error, RuntimeError) as exc:
        session.close()
        raise TokenError(
            "Không tìm thấy khóa hoặc chứng thư số trên thiết bị ký số.", detail=str(exc)
        ) from exc
