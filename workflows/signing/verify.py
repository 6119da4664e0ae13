"""Verify every signature in a PDF: integrity, validity, trust, coverage, later changes, level."""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Sequence
from typing import Any

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import (
    ModificationInfo,
    SignatureCoverageLevel,
    StandardCMSSignatureStatus,
)
from pyhanko_certvalidator import ValidationContext

from .appearance import vietnam_iso
from .errors import EncryptedPdfError, VerificationInputError
from .identity import CertInfo

log = logging.getLogger(__name__)

COVERAGE = {
    SignatureCoverageLevel.ENTIRE_FILE: "entire_file",
    SignatureCoverageLevel.ENTIRE_REVISION: "entire_revision",
    SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START: "partial",
    SignatureCoverageLevel.UNCLEAR: "unclear",
}


def load_trust_roots(roots: Sequence[bytes]) -> list[asn1_x509.Certificate]:
    """Parse trust anchors given as DER or PEM bytes (a PEM file may hold several)."""
    certs: list[asn1_x509.Certificate] = []
    for data in roots:
        if pem.detect(data):
            certs.extend(asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, True))
        else:
            certs.append(asn1_x509.Certificate.load(data))
    return certs


def _open(pdf_bytes: bytes) -> PdfFileReader:
    if b"%PDF-" not in pdf_bytes[:1024]:
        raise VerificationInputError("Tệp tải lên không phải là PDF.")
    try:
        reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=False)
    except (PdfError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise VerificationInputError(detail=str(exc)) from exc
    if reader.encrypted:
        raise EncryptedPdfError("Tệp PDF đã được mã hóa, không kiểm tra được chữ ký.")
    return reader


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else vietnam_iso(value)


def _pades_level(
    signature: EmbeddedPdfSignature,
    status: StandardCMSSignatureStatus,
    reader: PdfFileReader,
    timestamps_after: bool,
) -> str | None:
    if signature.sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        return None
    if status.timestamp_validity is None:
        return "B-B"
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except (KeyError, PdfError, ValueError):
        return "B-T"
    if signature.signer_cert.issuer_serial not in dss.certs:
        return "B-T"
    return "B-LTA" if timestamps_after else "B-LT"


def _modification(status: ModificationInfo) -> tuple[str | None, bool | None]:
    level = status.modification_level
    return (None if level is None else level.name.lower(), status.docmdp_ok)


def _summary(result: dict[str, Any]) -> str:
    if not result["intact"]:
        return "Chữ ký không còn toàn vẹn: nội dung đã bị thay đổi sau khi ký."
    if not result["valid"]:
        return "Chữ ký không hợp lệ."
    if result["modifications_ok"] is False:
        return "Chữ ký hợp lệ nhưng văn bản đã bị sửa đổi không được phép sau khi ký."
    if not result["trusted"]:
        return "Chữ ký hợp lệ nhưng chứng thư số không thuộc danh sách tin cậy."
    return "Chữ ký hợp lệ và tin cậy."


def verify_pdf(
    pdf_bytes: bytes, trust_roots: Sequence[bytes] = (), *, allow_fetching: bool = False
) -> list[dict[str, Any]]:
    """Validate each signature and document timestamp; return one JSON-friendly dict each."""
    reader = _open(pdf_bytes)
    roots = load_trust_roots(trust_roots)
    try:
        signatures = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError) as exc:
        raise VerificationInputError(detail=str(exc)) from exc
    revisions = [s.signed_revision for s in signatures]
    results = []
    for index, signature in enumerate(signatures):
        context = ValidationContext(
            trust_roots=roots, allow_fetching=allow_fetching, revocation_mode="soft-fail"
        )
        is_timestamp = signature.sig_object_type == "/DocTimeStamp"
        later_timestamps = any(
            s.sig_object_type == "/DocTimeStamp" and revisions[j] > revisions[index]
            for j, s in enumerate(signatures)
        )
        result = _validate(signature, context, reader, is_timestamp, later_timestamps)
        result["revision"] = signature.signed_revision
        result["summary"] = _summary(result)
        results.append(result)
    return results


def _validate(
    signature: EmbeddedPdfSignature,
    context: ValidationContext,
    reader: PdfFileReader,
    is_timestamp: bool,
    later_timestamps: bool,
) -> dict[str, Any]:
    info = CertInfo.from_der(signature.signer_cert.dump())
    base: dict[str, Any] = {
        "field": signature.field_name,
        "type": "timestamp" if is_timestamp else "signature",
        "signer": info.common_name,
        "signer_subject": info.subject,
        "certificate": info.as_dict(),
        "claimed_time": _time(signature.self_reported_timestamp),
    }
    try:
        if is_timestamp:
            ts_status = validate_pdf_timestamp(signature, validation_context=context)
            level, mods_ok = _modification(ts_status)
            return base | {
                "signing_time": _time(ts_status.timestamp),
                "timestamp_time": _time(ts_status.timestamp),
                "intact": ts_status.intact,
                "valid": ts_status.valid,
                "trusted": ts_status.trusted,
                "coverage": COVERAGE.get(ts_status.coverage, "unclear"),  # type: ignore[arg-type]
                "modification_level": level,
                "modifications_ok": mods_ok,
                "pades_level": None,
            }
        status = validate_pdf_signature(
            signature, signer_validation_context=context, ts_validation_context=context
        )
    except (SignatureValidationError, PdfError, ValueError) as exc:
        log.info("signature %s failed to validate: %s", signature.field_name, exc)
        return base | {
            "signing_time": base["claimed_time"],
            "timestamp_time": None,
            "intact": False,
            "valid": False,
            "trusted": False,
            "coverage": "unclear",
            "modification_level": None,
            "modifications_ok": False,
            "pades_level": None,
            "error": str(exc),
        }
    level, mods_ok = _modification(status)
    ts = status.timestamp_validity
    return base | {
        "signing_time": _time(ts.timestamp if ts else status.signer_reported_dt)
        or base["claimed_time"],
        "timestamp_time": _time(ts.timestamp) if ts else None,
        "intact": status.intact,
        "valid": status.valid,
        "trusted": status.trusted,
        "coverage": COVERAGE.get(status.coverage, "unclear"),  # type: ignore[arg-type]
        "modification_level": level,
        "modifications_ok": mods_ok,
        "pades_level": _pades_level(signature, status, reader, later_timestamps),
    }
