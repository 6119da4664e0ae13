"""Initial, leader signature and seal on one document stay valid for pyHanko and pdfsig."""

from __future__ import annotations

import re

import pytest

from workflows.signing import (
    attachment_appearance,
    initial_appearance,
    leader_appearance,
    seal_appearance,
    sign_pdf,
    verify_pdf,
)
from workflows.signing.demo import make_demo_signing
from workflows.signing.pdf import open_pdf
from workflows.signing.placement import find_text, signature_widgets


@pytest.fixture(scope="module")
def signed_chain(sample_pdf, leader, deputy, agency, images) -> list[bytes]:
    """Sign the sample: initial by the leader, signature by the deputy, then the seal."""
    initialed = sign_pdf(
        sample_pdf, leader, kind="initial", appearance=initial_appearance(images.initial)
    )
    signed = sign_pdf(
        initialed,
        deputy,
        kind="sign",
        appearance=leader_appearance(images.signature),  # placed above her name by default
        reason="Ký ban hành",
    )
    sealed = sign_pdf(signed, agency, kind="seal", appearance=seal_appearance(images.seal))
    return [initialed, signed, sealed]


def _flip_byte_in_first_revision(pdf: bytes) -> bytes:
    at = pdf.index(b"stream", 1000) + 40
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]


def test_each_step_is_an_incremental_update(sample_pdf, signed_chain):
    previous = sample_pdf
    for step in signed_chain:
        assert step.startswith(previous), "a signature must never rewrite earlier bytes"
        previous = step


def test_all_three_signatures_valid_and_trusted_for_pyhanko(signed_chain, ca_pem):
    results = verify_pdf(signed_chain[-1], [ca_pem])
    assert [r["field"] for r in results] == ["initial-1", "sign-1", "seal-1"]
    assert [r["signer"] for r in results] == [
        "Nguyễn Văn An",
        "Trần Thị Bình",
        "Sở Nội vụ tỉnh Demo",
    ]
    for result in results:
        assert result["intact"] and result["valid"] and result["trusted"], result
        assert result["modifications_ok"] is True, result
        assert result["pades_level"] == "B-B"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", result["signing_time"])
    assert [r["coverage"] for r in results] == ["entire_revision", "entire_revision", "entire_file"]
    assert [r["modification_level"] for r in results] == ["form_filling", "form_filling", "none"]


def test_all_three_signatures_valid_and_trusted_for_pdfsig(signed_chain, pdfsig):
    results = pdfsig(signed_chain[-1])
    assert len(results) == 3
    for result in results:
        assert result["Signature Validation"] == "Signature is Valid.", result
        assert result["Certificate Validation"] == "Certificate is Trusted.", result


def test_untrusted_without_roots(signed_chain):
    results = verify_pdf(signed_chain[-1], [])
    assert all(r["intact"] and r["valid"] and not r["trusted"] for r in results)


def test_one_byte_tamper_is_reported_by_both_validators(signed_chain, ca_pem, pdfsig):
    tampered = _flip_byte_in_first_revision(signed_chain[-1])
    results = verify_pdf(tampered, [ca_pem])
    assert results and not any(r["intact"] for r in results)
    assert all("toàn vẹn" in r["summary"] for r in results)
    for result in pdfsig(tampered):
        assert result["Signature Validation"] != "Signature is Valid.", result


def test_seal_overlaps_left_third_of_leader_signature(signed_chain):
    widgets = {
        name: (page, rect)
        for name, page, rect, _ in signature_widgets(open_pdf(signed_chain[-1]).prev)
    }
    sign_page, (sx0, sy0, sx1, sy1) = widgets["sign-1"]
    seal_page, (kx0, ky0, kx1, ky1) = widgets["seal-1"]
    assert sign_page == seal_page == 0
    assert kx1 == pytest.approx(sx0 + (sx1 - sx0) / 3, abs=0.5)
    assert kx0 < sx0 and ky0 < (sy0 + sy1) / 2 < ky1
    found = find_text(signed_chain[-1], "Trần Thị Bình", 0, 0)
    assert found is not None
    _, (_, name_top, _, _) = found
    assert sy0 == pytest.approx(841.89 - name_top + 2, abs=0.5), "not right above the name"
    initial_page, (ix0, _, ix1, _) = widgets["initial-1"]
    assert initial_page == 0 and (ix1 - ix0) < (sx1 - sx0) / 2


def test_attachment_signature_top_right_with_number_and_time(sample_pdf, agency, ca_pem, pdfsig):
    signed = sign_pdf(
        sample_pdf, agency, kind="attachment", appearance=attachment_appearance("15/QĐ-SNV")
    )
    [(name, page, (_, _, x1, y1), _)] = signature_widgets(open_pdf(signed).prev)
    assert name == "attachment-1" and page == 0
    assert x1 > 595 - 40 and y1 > 842 - 40
    [result] = verify_pdf(signed, [ca_pem])
    assert result["trusted"]
    assert pdfsig(signed)[0]["Signature Validation"] == "Signature is Valid."


def test_demo_seed_material_is_issued_and_valid():
    demo = make_demo_signing()
    results = verify_pdf(demo.issued_pdf, [demo.pki.ca.cert_pem])
    assert [r["field"] for r in results] == ["initial-1", "sign-1", "seal-1"]
    assert all(r["trusted"] and r["modifications_ok"] for r in results)
