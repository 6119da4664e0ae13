"""PAdES levels: B-B by default, B-T with a timestamp, B-LT with validation data."""

from __future__ import annotations

from workflows.signing import Box, leader_appearance, seal_appearance, sign_pdf, verify_pdf

BOX = Box(0, 300, 100, 500, 180)


def test_timestamped_signature_is_b_t(sample_pdf, leader, images, timestamper, ca_pem, pdfsig):
    signed = sign_pdf(
        sample_pdf,
        leader,
        placement=BOX,
        timestamper=timestamper,
        appearance=leader_appearance(images.signature),
    )
    [result] = verify_pdf(signed, [ca_pem])
    assert result["pades_level"] == "B-T"
    assert result["trusted"]
    assert pdfsig(signed)[0]["Signature Validation"] == "Signature is Valid."


def test_validation_data_makes_b_lt_and_keeps_earlier_signature(
    sample_pdf, leader, agency, images, timestamper, ca_pem, pki
):
    signed = sign_pdf(
        sample_pdf,
        leader,
        placement=BOX,
        timestamper=timestamper,
        appearance=leader_appearance(images.signature),
        ltv_trust_roots=[pki.ca.cert_der],
    )
    sealed = sign_pdf(
        signed,
        agency,
        kind="seal",
        appearance=seal_appearance(images.seal),
        timestamper=timestamper,
        ltv_trust_roots=[pki.ca.cert_der],
    )
    results = verify_pdf(sealed, [ca_pem])
    assert [r["pades_level"] for r in results] == ["B-LT", "B-LT"]
    assert all(r["trusted"] and r["modifications_ok"] for r in results)
