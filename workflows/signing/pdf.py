"""Sign PDFs: every signature is an approval signature added as an incremental update.

No signature certifies the document (no DocMDP), so later initials, signatures and the
seal stay valid: pyHanko classifies each new signature field as form filling. Each call
works on bytes and returns new bytes; on any error nothing is returned, so the input is
never half-signed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields as sig_fields
from pyhanko.sign import signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from ._aio import run_sync
from .appearance import (
    VIETNAM_TZ,
    Appearance,
    AppearanceStyle,
    attachment_appearance,
)
from .errors import (
    EncryptedPdfError,
    FieldExistsError,
    InvalidPdfError,
    PlacementError,
    SigningError,
)
from .identity import SigningIdentity
from .integrity import check_signed_revisions
from .placement import (
    NearText,
    OverField,
    PageCorner,
    Placement,
    signature_widgets,
)
from .placement import (
    resolve as resolve_placement,
)

log = logging.getLogger(__name__)

SignatureKind = Literal["initial", "sign", "seal", "attachment"]
KINDS: tuple[str, ...] = ("initial", "sign", "seal", "attachment")
DIGEST = "sha256"


@dataclass(frozen=True, repr=False)
class SignRequest:
    """One document to sign, with what and where to show."""

    pdf_bytes: bytes
    kind: SignatureKind = "sign"
    appearance: Appearance | None = None
    placement: Placement | None = None
    field_name: str | None = None
    visible: bool = True
    reason: str | None = None
    location: str | None = None
    contact_info: str | None = None
    label: str | None = None

    def __repr__(self) -> str:
        size = len(self.pdf_bytes)
        return f"SignRequest({size} bytes, kind={self.kind!r}, field={self.field_name!r})"


@dataclass(frozen=True)
class TimestampSettings:
    """PAdES B-T (timestamper) and B-LT (plus trust roots to collect validation data)."""

    timestamper: TimeStamper | None = None
    ltv_trust_roots: tuple[bytes, ...] = ()


@dataclass(repr=False)
class _Prepared:
    request: SignRequest
    output: io.BytesIO
    digest: PreparedByteRangeDigest
    tbs: PdfTBSDocument
    signing_time: dt.datetime
    field_name: str
    validation_info: Any = None
    signed_attrs: cms.CMSAttributes | None = None


def open_pdf(pdf_bytes: bytes) -> IncrementalPdfFileWriter:
    """Open a PDF for an incremental update; refuse encrypted or damaged files."""
    if not isinstance(pdf_bytes, bytes | bytearray) or b"%PDF-" not in pdf_bytes[:1024]:
        raise InvalidPdfError("Tệp tải lên không phải là PDF.")
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes))
    except (PdfError, ValueError, KeyError, IndexError, TypeError) as exc:
        if b"/Encrypt" in pdf_bytes[-4096:] or b"/Encrypt" in pdf_bytes[:4096]:
            raise EncryptedPdfError() from exc
        raise InvalidPdfError(detail=str(exc)) from exc
    if writer.prev.encrypted:
        raise EncryptedPdfError()
    try:
        pages = writer.prev.root["/Pages"]
        if int(pages["/Count"]) < 1:
            raise InvalidPdfError("Tệp PDF không có trang nào.")
        writer.prev.find_page_for_modification(0)
    except (PdfError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise InvalidPdfError(detail=str(exc)) from exc
    return writer


def _timestamper(timestamp_url: str | None, timestamper: TimeStamper | None) -> TimeStamper | None:
    if timestamper is not None:
        return timestamper
    if timestamp_url:
        return RequestsHTTPTimeStamper(timestamp_url, timeout=15)
    return None


def bytes_to_reserve(identity: SigningIdentity, *, timestamp: bool, ltv: bool = False) -> int:
    """Return the signature placeholder size (hex digits), so the CMS is built only once."""
    certs = len(identity.certificate.dump()) + sum(len(c.dump()) for c in identity.chain)
    der = certs + identity.signature_size() + 3000
    if timestamp:
        der += 8000  # token with the TSA certificate chain
    if ltv:
        der += 4000
    hex_digits = 2 * der
    return hex_digits + (-hex_digits % 2048)


def _default_field_name(kind: str, existing: set[str]) -> str:
    n = 1 + sum(1 for name in existing if name.startswith(f"{kind}-"))
    while f"{kind}-{n}" in existing:
        n += 1
    return f"{kind}-{n}"


def _default_placement(
    request: SignRequest, identity: SigningIdentity, widgets: list[tuple[str, int, Any, bool]]
) -> Placement:
    if request.kind == "attachment":
        return PageCorner("top-right", page=0, width=175, height=30, margin=18)
    if request.kind == "seal":
        return OverField()
    if request.kind == "initial":
        count = sum(1 for name, *_ in widgets if name.startswith("initial-"))
        return PageCorner("bottom-right", page=-1, width=64, height=28, margin=20, shift=70 * count)
    if identity.cert_info.common_name:
        # Decree 30: the signature image goes between the title and the signer's name
        return NearText(identity.cert_info.common_name)
    raise PlacementError("Chưa cấu hình vị trí chữ ký cho bước ký này.")


def _appearance_for(request: SignRequest, signing_time: dt.datetime) -> Appearance:
    appearance = request.appearance
    if appearance is None:
        if request.kind != "attachment":
            raise SigningError("Chưa có mẫu chữ ký hiển thị (ảnh chữ ký/con dấu).")
        appearance = attachment_appearance(request.label or "")
    return appearance.with_time(signing_time)


def _prepare(
    request: SignRequest,
    identity: SigningIdentity,
    ts: TimestampSettings,
    *,
    check_existing: bool,
    now: dt.datetime | None,
) -> _Prepared:
    if request.kind not in KINDS:
        raise SigningError(f"Loại chữ ký không hợp lệ: {request.kind}.")
    writer = open_pdf(request.pdf_bytes)
    if check_existing:
        check_signed_revisions(writer.prev)
    widgets = signature_widgets(writer.prev)
    names = {name for name, *_ in widgets}
    field_name = request.field_name or _default_field_name(request.kind, names)
    existing = [w for w in widgets if w[0] == field_name]
    if existing and existing[0][3]:
        raise FieldExistsError(f"Ô chữ ký “{field_name}” đã được ký.")
    signing_time = (now or dt.datetime.now(dt.UTC)).astimezone(VIETNAM_TZ).replace(microsecond=0)
    style = None
    new_field = None
    if request.visible:
        style = AppearanceStyle(appearance=_appearance_for(request, signing_time))
        if not existing:
            placement = request.placement or _default_placement(request, identity, widgets)
            spot = resolve_placement(placement, writer.prev, request.pdf_bytes)
            # pyHanko annotates the box as ints but writes any number as given
            box = cast(tuple[int, int, int, int], spot.rect)
            new_field = sig_fields.SigFieldSpec(field_name, on_page=spot.page, box=box)
    elif not existing:
        new_field = sig_fields.SigFieldSpec(field_name)
    ltv = bool(ts.ltv_trust_roots) and ts.timestamper is not None
    validation_context = None
    if ltv:
        validation_context = ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(c) for c in ts.ltv_trust_roots],
            allow_fetching=True,
            revocation_mode="soft-fail",
        )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm=DIGEST,
        subfilter=sig_fields.SigSeedSubFilter.PADES,
        name=identity.cert_info.common_name or None,
        reason=request.reason,
        location=request.location,
        contact_info=request.contact_info,
        embed_validation_info=ltv,
        validation_context=validation_context,
    )
    pdf_signer = signers.PdfSigner(
        meta,
        signer=identity.signer(),
        timestamper=ts.timestamper,
        stamp_style=style,
        new_field_spec=new_field,
    )
    reserve = bytes_to_reserve(identity, timestamp=ts.timestamper is not None, ltv=ltv)
    return run_sync(_digest(pdf_signer, writer, request, signing_time, field_name, reserve))


async def _digest(
    pdf_signer: signers.PdfSigner,
    writer: IncrementalPdfFileWriter,
    request: SignRequest,
    signing_time: dt.datetime,
    field_name: str,
    reserve: int,
) -> _Prepared:
    try:
        session = pdf_signer.init_signing_session(writer)
        session.system_time = signing_time
        validation_info = await session.perform_presign_validation(writer)
        tbs = session.prepare_tbs_document(validation_info, bytes_reserved=reserve)
        digest, output = tbs.digest_tbs_document()
    except PyHankoSigningError as exc:
        raise SigningError(detail=str(exc)) from exc
    assert isinstance(output, io.BytesIO)
    return _Prepared(request, output, digest, tbs, signing_time, field_name, validation_info)


def _signed_attr_settings(prepared: _Prepared) -> PdfCMSSignedAttributes:
    info = prepared.validation_info
    return PdfCMSSignedAttributes(
        signing_time=prepared.signing_time,
        adobe_revinfo_attr=None if info is None else info.adobe_revinfo_attr,
    )


async def _finish_local(prepared: _Prepared) -> io.BytesIO:
    try:
        post = await prepared.tbs.perform_signature(
            prepared.digest.document_digest, _signed_attr_settings(prepared)
        )
        await post.post_signature_processing(prepared.output)
    except PyHankoSigningError as exc:
        raise SigningError(detail=str(exc)) from exc
    return prepared.output


async def _remote_attrs(prepared: _Prepared, identity: SigningIdentity) -> None:
    signer = identity.signer()
    prepared.signed_attrs = await signer.signed_attrs(
        prepared.digest.document_digest,
        DIGEST,
        attr_settings=_signed_attr_settings(prepared),
        use_pades=True,
    )


async def _finish_remote(
    prepared: _Prepared, identity: SigningIdentity, raw_signature: bytes
) -> io.BytesIO:
    assert prepared.signed_attrs is not None
    placeholder = identity.signer()
    signer = signers.ExternalSigner(
        signing_cert=identity.certificate,
        cert_registry=SimpleCertificateStore.from_certs(identity.chain),
        signature_value=raw_signature,
        signature_mechanism=placeholder.get_signature_mechanism_for_digest(DIGEST),
    )
    try:
        signature_cms = await signer.async_sign_prescribed_attributes(
            DIGEST, signed_attrs=prepared.signed_attrs, timestamper=prepared.tbs.timestamper
        )
        await PdfTBSDocument.async_finish_signing(
            prepared.output,
            prepared.digest,
            signature_cms,
            post_sign_instr=prepared.tbs.post_sign_instructions,
            validation_context=prepared.tbs.validation_context,
        )
    except PyHankoSigningError as exc:
        raise SigningError(detail=str(exc)) from exc
    return prepared.output


def _remote_label(request: SignRequest) -> str:
    return request.label or f"Ký văn bản ({request.kind})"


def sign_pdf(
    pdf_bytes: bytes,
    identity: SigningIdentity,
    *,
    kind: SignatureKind = "sign",
    appearance: Appearance | None = None,
    placement: Placement | None = None,
    field_name: str | None = None,
    visible: bool = True,
    timestamp_url: str | None = None,
    timestamper: TimeStamper | None = None,
    ltv_trust_roots: Sequence[bytes] = (),
    reason: str | None = None,
    location: str | None = None,
    contact_info: str | None = None,
    label: str | None = None,
    check_existing: bool = True,
    now: dt.datetime | None = None,
) -> bytes:
    """Sign one PDF and return the signed bytes (an incremental update of the input).

    ``kind`` picks defaults: an initial goes to the bottom right of the last page, a
    leader signature above the name given in ``appearance.lines_below`` (or a configured
    placement), the seal over the left third of the last visible signature, an attachment
    signature to the top right of page 1 with ``label`` as number and notation.
    PAdES B-B by default, B-T with a timestamp URL (or timestamper), B-LT when trust roots
    are given as well. Remote identities wait for the user's confirmation.
    """
    request = SignRequest(
        pdf_bytes=pdf_bytes,
        kind=kind,
        appearance=appearance,
        placement=placement,
        field_name=field_name,
        visible=visible,
        reason=reason,
        location=location,
        contact_info=contact_info,
        label=label,
    )
    result = sign_pdfs(
        [request],
        identity,
        timestamp_url=timestamp_url,
        timestamper=timestamper,
        ltv_trust_roots=ltv_trust_roots,
        check_existing=check_existing,
        now=now,
        raise_errors=True,
    )[0]
    assert isinstance(result, bytes)
    return result


def sign_pdfs(
    requests: Sequence[SignRequest],
    identity: SigningIdentity,
    *,
    timestamp_url: str | None = None,
    timestamper: TimeStamper | None = None,
    ltv_trust_roots: Sequence[bytes] = (),
    check_existing: bool = True,
    now: dt.datetime | None = None,
    raise_errors: bool = False,
) -> list[bytes | SigningError]:
    """Sign a batch with one identity; each item is the signed PDF or the error it raised.

    A remote identity gets one authorization and one confirmation for the whole batch.
    """
    ts = TimestampSettings(_timestamper(timestamp_url, timestamper), tuple(ltv_trust_roots))
    identity.check_validity(now)
    results: list[bytes | SigningError] = []
    if not identity.remote:
        for request in requests:
            try:
                prepared = _prepare(request, identity, ts, check_existing=check_existing, now=now)
                results.append(run_sync(_finish_local(prepared)).getvalue())
            except SigningError as exc:
                if raise_errors:
                    raise
                results.append(exc)
        return results
    return _sign_remote(requests, identity, ts, check_existing, now, raise_errors)


def _sign_remote(
    requests: Sequence[SignRequest],
    identity: SigningIdentity,
    ts: TimestampSettings,
    check_existing: bool,
    now: dt.datetime | None,
    raise_errors: bool,
) -> list[bytes | SigningError]:
    # every slot is overwritten below: by the signed PDF or by the error it raised
    results: list[bytes | SigningError] = [SigningError() for _ in requests]
    ready: list[tuple[int, _Prepared]] = []
    for i, request in enumerate(requests):
        try:
            prepared = _prepare(request, identity, ts, check_existing=check_existing, now=now)
            run_sync(_remote_attrs(prepared, identity))
            ready.append((i, prepared))
        except SigningError as exc:
            if raise_errors:
                raise
            results[i] = exc
    if not ready:
        return results
    digests = [hashlib.sha256(p.signed_attrs.dump()).digest() for _, p in ready]  # type: ignore[union-attr]
    label = _remote_label(ready[0][1].request)
    if len(ready) > 1:
        label = f"{label} (+{len(ready) - 1} văn bản)"
    try:
        raw = identity.sign_hashes(digests, DIGEST, label=label)
    except SigningError as exc:
        if raise_errors:
            raise
        for i, _ in ready:
            results[i] = exc
        return results
    for (i, prepared), signature in zip(ready, raw, strict=True):
        try:
            results[i] = run_sync(_finish_remote(prepared, identity, signature)).getvalue()
        except SigningError as exc:
            if raise_errors:
                raise
            results[i] = exc
    return results
