"""PKCS#11 signing through SoftHSM2, as with a USB token."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from workflows.signing import (
    Box,
    TokenError,
    WrongPinError,
    leader_appearance,
    open_pkcs11_identity,
    sign_pdf,
    verify_pdf,
)


def _open(softhsm, **overrides):
    args = {
        "token_label": softhsm["token"],
        "pin": softhsm["pin"],
        "key_label": softhsm["key_label"],
    } | overrides
    return open_pkcs11_identity(softhsm["lib"], **args)


def test_token_signature_is_valid_and_trusted(softhsm, sample_pdf, images, ca_pem, pdfsig, pki):
    identity = _open(softhsm, chain_der=[pki.ca.cert_der])
    assert identity.backend == "pkcs11"
    assert identity.cert_info.common_name == "Nguyễn Văn An"
    signed = sign_pdf(
        sample_pdf,
        identity,
        kind="sign",
        appearance=leader_appearance(images.signature, name="Nguyễn Văn An"),
        placement=Box(0, 300, 100, 500, 180),
    )
    [result] = verify_pdf(signed, [ca_pem])
    embedded = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0].signed_data["certificates"]
    assert len(embedded) == 2, "the CA certificate travels with the signature"
    assert result["intact"] and result["valid"] and result["trusted"]
    [checked] = pdfsig(signed)
    assert checked["Signature Validation"] == "Signature is Valid."
    assert checked["Certificate Validation"] == "Certificate is Trusted."


def test_session_is_reused_while_the_pin_is_the_same(softhsm):
    assert _open(softhsm) is _open(softhsm)


def test_wrong_pin_is_refused_by_the_token(softhsm):
    good = _open(softhsm)
    with pytest.raises(WrongPinError) as caught:
        _open(softhsm, pin="000000")
    assert "PIN" in caught.value.message
    assert _open(softhsm) is not good  # the token checked the PIN again


def test_missing_key_or_token(softhsm):
    with pytest.raises(TokenError):
        _open(softhsm, key_label="không-có")
    with pytest.raises(TokenError):
        _open(softhsm, token_label="no-such-token")
