"""Check that earlier signatures still hold before adding another one."""

from __future__ import annotations

from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko.sign.validation.errors import SignatureValidationError

from .errors import DocumentModifiedError


def check_signed_revisions(reader: PdfFileReader) -> None:
    """Raise if a signature's bytes changed or the file was modified beyond form filling."""
    try:
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError) as exc:
        raise DocumentModifiedError(detail=str(exc)) from exc
    for signature in signatures:
        name = signature.field_name
        try:
            expected = find_unique_cms_attribute(
                signature.signer_info["signed_attrs"], "message_digest"
            ).native
            signature.compute_integrity_info()
            status = signature.summarise_integrity_info()
        except (PdfError, SignatureValidationError, ValueError, KeyError) as exc:
            raise DocumentModifiedError(detail=f"{name}: {exc}") from exc
        is_timestamp = signature.sig_object_type == "/DocTimeStamp"
        if not is_timestamp and signature.compute_digest() != expected:
            raise DocumentModifiedError(
                f"Chữ ký “{name}” không còn khớp với nội dung: "
                "văn bản đã bị sửa, không thể ký tiếp."
            )
        if not status["docmdp_ok"]:
            raise DocumentModifiedError(
                f"Văn bản đã bị thay đổi sau chữ ký “{name}”, không thể ký tiếp."
            )
