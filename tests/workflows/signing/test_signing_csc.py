"""Remote signing through the CSC API v2: confirmation, slowness, refusal, timeout, batches."""

from __future__ import annotations

import pytest

from workflows.signing import (
    Box,
    CscClient,
    CscSettings,
    RemoteSigningError,
    RemoteSigningRefusedError,
    RemoteSigningTimeoutError,
    SignRequest,
    leader_appearance,
    open_csc_identity,
    sign_pdf,
    sign_pdfs,
    verify_pdf,
)

from .csc_server import TOKEN

BOX = Box(0, 300, 100, 500, 180)


def _identity(csc_service, mode: str, timeout: float = 3.0, token: str = TOKEN):
    base, _ = csc_service
    client = CscClient(
        CscSettings(f"{base}/csc/v2", token, confirm_timeout=timeout, poll_interval=0.05)
    )
    return open_csc_identity(client, f"leader-{mode}")


def _sign(identity, pdf, images, label="Ký QĐ 15/QĐ-SNV"):
    return sign_pdf(
        pdf,
        identity,
        kind="sign",
        placement=BOX,
        label=label,
        appearance=leader_appearance(images.signature, name="Nguyễn Văn An"),
    )


def test_credentials_list_and_info(csc_service):
    base, _ = csc_service
    client = CscClient(CscSettings(f"{base}/csc/v2", TOKEN))
    assert "leader-slow" in client.list_credentials()
    identity = open_csc_identity(client, "leader-immediate")
    assert identity.remote and identity.backend == "csc"
    assert identity.cert_info.common_name == "Nguyễn Văn An"


@pytest.mark.parametrize("mode", ["immediate", "slow"])
def test_confirmed_signature_is_embedded(mode, csc_service, sample_pdf, images, ca_pem, pdfsig):
    _, state = csc_service
    seen = len(state.calls)
    signed = _sign(_identity(csc_service, mode), sample_pdf, images)
    assert state.labels[-1] == "Ký QĐ 15/QĐ-SNV"
    assert ("signatures/signPolling" in state.calls[seen:]) == (mode == "slow")
    [result] = verify_pdf(signed, [ca_pem])
    assert result["intact"] and result["valid"] and result["trusted"]
    assert pdfsig(signed)[0]["Signature Validation"] == "Signature is Valid."


def test_refusal_cancels_cleanly(csc_service, sample_pdf, images):
    original = bytes(sample_pdf)
    with pytest.raises(RemoteSigningRefusedError) as caught:
        _sign(_identity(csc_service, "refuse"), sample_pdf, images)
    assert "từ chối" in caught.value.message
    assert sample_pdf == original


def test_timeout_cancels_cleanly(csc_service, sample_pdf, images):
    with pytest.raises(RemoteSigningTimeoutError) as caught:
        _sign(_identity(csc_service, "never", timeout=0.4), sample_pdf, images)
    assert "giây" in caught.value.message


def test_bad_token_is_reported(csc_service):
    with pytest.raises(RemoteSigningError) as caught:
        _identity(csc_service, "immediate", token="wrong")
    assert "hết hạn hoặc không hợp lệ" in caught.value.message


def test_batch_needs_one_authorization(csc_service, sample_pdf, images, ca_pem):
    _, state = csc_service
    identity = _identity(csc_service, "slow")
    before = state.calls.count("credentials/authorize")
    appearance = leader_appearance(images.signature, name="Nguyễn Văn An")
    requests = [
        SignRequest(sample_pdf, appearance=appearance, placement=BOX, label="Lô 3 văn bản")
        for _ in range(3)
    ] + [SignRequest(b"not a pdf", placement=BOX)]
    results = sign_pdfs(requests, identity)
    assert state.calls.count("credentials/authorize") == before + 1
    assert state.labels[-1] == "Lô 3 văn bản (+2 văn bản)"
    assert isinstance(results[3], Exception)
    for signed in results[:3]:
        assert isinstance(signed, bytes)
        [result] = verify_pdf(signed, [ca_pem])
        assert result["trusted"]


def test_timestamp_over_http_gives_pades_b_t(csc_service, sample_pdf, leader, images, ca_pem):
    base, _ = csc_service
    signed = sign_pdf(
        sample_pdf,
        leader,
        kind="sign",
        placement=BOX,
        appearance=leader_appearance(images.signature),
        timestamp_url=f"{base}/tsa",
    )
    [result] = verify_pdf(signed, [ca_pem])
    assert result["pades_level"] == "B-T"
    assert result["trusted"] and result["timestamp_time"].endswith("+07:00")
