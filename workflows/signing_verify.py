"""Verifying signed PDFs: trust roots, Vietnamese labels, the document page's panel."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import current_app

from models.document import Document
from models.signature import SignatureRecord, TrustRoot
from models.user import User
from workflows import storage
from workflows.errors import DomainError, ValidationFailed
from workflows.signing import CertInfo, SigningError, verify_pdf
from workflows.signing.errors import VerificationInputError
from workflows.signing_identity import SigningRefused

COVERAGE_LABELS = {
    "entire_file": "Toàn bộ tệp",
    "entire_revision": "Toàn bộ nội dung tại thời điểm ký (có phần bổ sung sau)",
    "partial": "Một phần tệp",
    "unclear": "Không xác định",
}
MODIFICATION_LABELS = {
    None: "Không có",
    "none": "Không có",
    "lta_updates": "Chỉ bổ sung dữ liệu kiểm tra hiệu lực",
    "form_filling": "Chỉ thêm chữ ký, điền biểu mẫu",
    "annotations": "Thêm ghi chú",
    "other": "Sửa đổi nội dung",
}


def trust_roots_der() -> list[bytes]:
    """Return the active trust anchors (DER)."""
    return [bytes(t.cert_der) for t in TrustRoot.objects(active=True)]


def add_trust_root(data: bytes, name: str | None = None, user: User | None = None) -> TrustRoot:
    """Store an admin-uploaded CA certificate (PEM or DER) as a trust anchor."""
    from workflows.signing.verify import load_trust_roots

    try:
        certs = load_trust_roots([data])
    except Exception as exc:
        raise ValidationFailed("Tệp không phải chứng thư số (PEM hoặc DER) hợp lệ.") from exc
    if len(certs) != 1:
        raise ValidationFailed("Mỗi lần chỉ tải lên một chứng thư số.")
    der = certs[0].dump()
    info = CertInfo.from_der(der)
    existing = TrustRoot.objects(sha256=info.sha256_fingerprint).first()
    if existing is not None:
        return existing
    return TrustRoot(
        name=name or info.common_name or info.subject,
        cert_der=der,
        subject=info.subject,
        sha256=info.sha256_fingerprint,
        not_after=info.not_after,
        created_by_id=str(user.pk) if user else None,
    ).save()


def describe(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add Vietnamese labels and an overall verdict to verify_pdf results."""
    out = []
    for item in results:
        entry = dict(item)
        entry["coverage_label"] = COVERAGE_LABELS.get(item.get("coverage") or "", "Không xác định")
        entry["modification_label"] = MODIFICATION_LABELS.get(
            item.get("modification_level"), "Sửa đổi khác"
        )
        entry["ok"] = bool(
            item.get("intact") and item.get("valid") and item.get("modifications_ok") is not False
        )
        out.append(entry)
    return out


def verify_bytes(data: bytes) -> list[dict[str, Any]]:
    """Verify every signature of a PDF against the trust roots; refuse unreadable files."""
    try:
        return describe(verify_pdf(data, trust_roots_der()))
    except SigningError as exc:
        raise SigningRefused.from_core(exc) from exc


def verify_upload(data: bytes, filename: str | None = None) -> list[dict[str, Any]]:
    """Check an uploaded file's size and type, then verify it."""
    limit = int(
        current_app.config.get("SIGNING_VERIFY_MAX_BYTES") or current_app.config["UPLOAD_MAX_BYTES"]
    )
    if not data:
        raise ValidationFailed("Chưa chọn tệp PDF cần kiểm tra.")
    if len(data) > limit:
        raise ValidationFailed(f"Tệp quá lớn (tối đa {limit // (1024 * 1024)} MB).")
    if filename and not filename.lower().endswith(".pdf"):
        raise ValidationFailed("Chỉ kiểm tra được tệp PDF (.pdf).")
    if b"%PDF-" not in data[:1024]:
        raise SigningRefused.from_core(VerificationInputError("Tệp tải lên không phải là PDF."))
    return verify_bytes(data)


def verification_for(doc: Document, rev: int | None = None) -> list[dict[str, Any]]:
    """Return the verification panel of a stored document's PDF (current revision by default)."""
    from jobs import redis_connection

    revision = doc.revision(rev) if rev is not None else doc.current_pdf
    if revision is None or revision.mime != "application/pdf":
        return []
    roots = sorted(t.sha256 for t in TrustRoot.objects(active=True).only("sha256"))
    digest = hashlib.sha256(f"{revision.sha256}|{','.join(roots)}".encode()).hexdigest()
    key = f"vanthu:verify:{digest}"
    conn = redis_connection()
    cached = conn.get(key)
    if cached is not None:
        results: list[dict[str, Any]] = json.loads(cached)
    else:
        try:
            results = verify_bytes(storage.read_file(revision.file_id))
        except DomainError as exc:
            return [{"error": exc.message}]
        conn.set(key, json.dumps(results, ensure_ascii=False), ex=3600)
    records = {r.field_name: r for r in SignatureRecord.objects(document=doc, status="done")}
    for item in results:
        found = records.get(item.get("field"))
        if found is not None:
            item["record"] = {
                "kind": found.kind,
                "signer": found.signer.full_name if found.signer else None,
                "on_behalf_of": found.on_behalf_of.full_name if found.on_behalf_of else None,
                "authority": found.authority or "",
            }
    return results
