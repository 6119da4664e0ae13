"""Bad input is refused with a Vietnamese message and nothing is signed."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pypdf import PdfReader, PdfWriter

from workflows.signing import (
    DocumentModifiedError,
    EncryptedPdfError,
    FieldExistsError,
    InvalidPdfError,
    NearText,
    PlacementError,
    initial_appearance,
    leader_appearance,
    sign_pdf,
    verify_pdf,
)


@pytest.fixture(scope="module")
def initialed(sample_pdf, leader, images) -> bytes:
    return sign_pdf(
        sample_pdf, leader, kind="initial", appearance=initial_appearance(images.initial)
    )


def test_encrypted_pdf_is_refused(sample_pdf, deputy, images):
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(sample_pdf)))
    writer.encrypt(user_password="", owner_password="chủ", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(EncryptedPdfError) as caught:
        sign_pdf(
            buffer.getvalue(),
            deputy,
            appearance=leader_appearance(images.signature),
            placement=NearText("Trần Thị Bình"),
        )
    assert "mã hóa" in caught.value.message


@pytest.mark.parametrize("cut", ["truncated", "garbage", "empty"])
def test_damaged_pdf_is_refused(cut, sample_pdf, deputy, images):
    data = {
        "truncated": sample_pdf[: len(sample_pdf) // 2],
        "garbage": b"%PDF-1.7\n" + b"x" * 500,
        "empty": b"",
    }[cut]
    with pytest.raises(InvalidPdfError) as caught:
        sign_pdf(
            data,
            deputy,
            appearance=leader_appearance(images.signature),
            placement=NearText("Trần Thị Bình"),
        )
    assert "PDF" in caught.value.message


def test_pdf_changed_after_the_initial_is_refused(initialed, deputy, images, ca_pem):
    writer = IncrementalPdfFileWriter(io.BytesIO(initialed))
    content = generic.StreamObject(stream_data=b"BT /F1 30 Tf 100 100 Td (Sua noi dung) Tj ET")
    writer.add_stream_to_page(0, writer.add_object(content))
    changed = io.BytesIO()
    writer.write(changed)
    [initial] = verify_pdf(changed.getvalue(), [ca_pem])
    assert initial["intact"] and initial["modifications_ok"] is False
    with pytest.raises(DocumentModifiedError) as caught:
        sign_pdf(
            changed.getvalue(),
            deputy,
            appearance=leader_appearance(images.signature),
            placement=NearText("Trần Thị Bình"),
        )
    assert "initial-1" in caught.value.message


def test_tampered_bytes_are_refused_before_signing(initialed, deputy, images):
    at = initialed.index(b"stream", 1000) + 40
    tampered = initialed[:at] + bytes([initialed[at] ^ 1]) + initialed[at + 1 :]
    with pytest.raises(DocumentModifiedError):
        sign_pdf(
            tampered,
            deputy,
            appearance=leader_appearance(images.signature),
            placement=NearText("Trần Thị Bình"),
        )


def test_signed_field_cannot_be_signed_again(initialed, leader, images):
    with pytest.raises(FieldExistsError):
        sign_pdf(
            initialed,
            leader,
            kind="initial",
            field_name="initial-1",
            appearance=initial_appearance(images.initial),
        )


def test_signer_name_not_in_document(sample_pdf, deputy, images):
    with pytest.raises(PlacementError) as caught:
        sign_pdf(
            sample_pdf,
            deputy,
            appearance=leader_appearance(images.signature),
            placement=NearText("Hoàng Văn Vắng"),
        )
    assert "Hoàng Văn Vắng" in caught.value.message
