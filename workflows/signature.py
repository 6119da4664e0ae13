"""Signing documents in their workflow: identities, authorization, jobs' work, verification.

Flow: a view calls ``start_signing`` (or ``start_batch_signing``) in the web request; it checks
visibility and the engine's right, verifies the signer's TOTP code or signing PIN, records a
``SigningAuthorization`` (never the code) and a queued ``SignatureRecord``, and enqueues
``jobs.signing.sign_document`` on the ``signing`` queue. The job calls ``run_signing``: it
signs the current PDF revision, stores the result as a new revision, completes the record and
only then performs the workflow transition. Every step can run again after a crash: the PDF
field name is derived from the record key, so a retried job finds its own signature instead
of signing twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import gridfs
from bson import ObjectId
from flask import current_app
from mongoengine.connection import get_db
from rq.job import Job

from models.audit import Actor, acting_as, record, utcnow
from models.document import CircuitStep, Document, FileRevision, StoredFile
from models.organization import Agency, Position
from models.signature import (
    SignatureRecord,
    SigningAuthorization,
    SigningIdentity,
)
from models.user import User
from workflows import actions, storage
from workflows.errors import DomainError, Forbidden, NotFound, ValidationFailed
from workflows.rules import Acting, principals_of, resolve_acting
from workflows.signing import (
    Appearance,
    Box,
    FieldExistsError,
    NearText,
    OverField,
    PageCorner,
    Placement,
    PlacementError,
    SignatureKind,
    SigningError,
    SignRequest,
    attachment_appearance,
    initial_appearance,
    leader_appearance,
    seal_appearance,
    sign_pdfs,
)
from workflows.signing import SigningIdentity as CoreIdentity
from workflows.signing.errors import DocumentModifiedError
from workflows.signing.pdf import open_pdf
from workflows.signing.placement import resolve as resolve_placement
from workflows.signing.placement import signature_widgets
from workflows.signing_identity import (
    SigningRefused,
    authorize,
    identity_for,
    load_identity,
)

log = logging.getLogger(__name__)

BATCH_LIMIT = 50
SIGNING_QUEUE = "signing"
REVISION_KINDS = {"initial": "initialed", "sign": "signed", "seal": "sealed"}
REASONS = {
    "initial": "Ký nháy",
    "sign": "Ký ban hành",
    "seal": "Đóng dấu (chữ ký số cơ quan)",
    "attachment": "Ký tệp đính kèm",
}
DELEGATION_PREFIX = {"deputy": "KT.", "delegation": "TUQ."}


# Errors -------------------------------------------------------------------------------------


class _RevisionConflict(Exception):
    """Someone stored another revision while we were signing: sign the newer one."""


def _as_domain(exc: Exception) -> DomainError:
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, SigningError):
        return SigningRefused.from_core(exc)
    return SigningRefused()


# Files -------------------------------------------------------------------------------------
# Signed PDFs come from the signing core, not from a user: they are stored as produced,
# without the upload checks of storage.store_upload (which would parse each PDF again).


def _store_file(data: bytes, filename: str, mime: str = "application/pdf") -> ObjectId:
    file_id: ObjectId = gridfs.GridFS(get_db()).put(data, filename=filename, content_type=mime)
    return file_id


def _delete_file(file_id: ObjectId) -> None:
    try:
        storage.delete_file(file_id)
    except Exception:
        log.warning("could not delete orphan file %s", file_id)


def _described(data: bytes, filename: str, user_id: str | None) -> dict[str, Any]:
    return {
        "file_id": _store_file(data, filename),
        "filename": filename,
        "mime": "application/pdf",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "uploaded_by": user_id,
    }


def attach_pdf(
    doc: Document, data: bytes, filename: str, user: User | None = None, *, kind: str = "upload"
) -> FileRevision:
    """Store a PDF as the document's next revision (for the demo seed and tests)."""
    open_pdf(data)  # refuse damaged or encrypted files before storing
    revision = FileRevision(
        rev=storage.next_rev(doc),
        kind=kind,
        **_described(data, filename, str(user.pk) if user else None),
    )
    doc.revisions.append(revision)
    Document.objects(pk=doc.pk).update_one(push__revisions=revision, set__updated_at=utcnow())
    return revision


# What a transition needs ---------------------------------------------------------------------


def _active_steps(doc: Document, user: User | None) -> list[CircuitStep]:
    if doc.circuit is None or doc.circuit.status != "running":
        return []
    active = [s for s in doc.circuit.steps if s.status == "active"]
    if user is None:
        return active
    ids = set(principals_of(user))
    mine = [s for s in active if ids & set(s.user_ids) and not ids & set(s.done_by)]
    return mine or active


def signing_kind_for(doc: Document, transition_code: str, user: User | None = None) -> str | None:
    """Return the signature a transition needs: "initial", "sign", "seal" or None.

    A circuit approval on an active initial step needs an initial, on a signature step a
    signature; a transition running `request_signature` needs a signature, `apply_seal` the
    agency seal. With `user`, only the circuit steps naming them (or their principals) count.
    """
    from workflows.engine import CIRCUIT_APPROVE
    from workflows.workflow_definition import version_spec

    if transition_code == CIRCUIT_APPROVE:
        kinds = {s.kind for s in _active_steps(doc, user) if s.digital or s.kind == "signature"}
        if "signature" in kinds:
            return "sign"
        return "initial" if "initial" in kinds else None
    if not doc.workflow_code or not doc.workflow_version:
        return None
    spec = version_spec(doc.workflow_code, doc.workflow_version)
    t = next((x for x in spec.get("transitions") or [] if x.get("code") == transition_code), None)
    ids = {a.get("id") for a in (t or {}).get("actions") or [] if isinstance(a, dict)}
    if "apply_seal" in ids:
        return "seal"
    return "sign" if "request_signature" in ids else None


def signing_transition_for(
    doc: Document, user: User, kinds: Iterable[str] = ("initial", "sign", "seal")
) -> tuple[str, str] | None:
    """Return (transition code, kind) of the first signing step `user` may take now."""
    from workflows.engine import available_transitions

    wanted = set(kinds)
    for available in available_transitions(doc, user):
        kind = signing_kind_for(doc, available.code, user)
        if kind in wanted:
            return available.code, kind
    return None


@dataclass(frozen=True)
class AwaitingSignature:
    """A document waiting for the user's initial, signature or the agency seal."""

    document: Document
    transition_code: str
    kind: str
    on_behalf_of: str | None


def awaiting_signature(
    user: User, kinds: Iterable[str] = ("initial", "sign", "seal"), limit: int = 200
) -> list[AwaitingSignature]:
    """List the documents `user` (or someone who delegated to them) must sign now."""
    from workflows.engine import available_transitions

    wanted = set(kinds)
    out = []
    docs = Document.objects.awaiting(principals_of(user)).order_by("due_at", "-created_at")
    for doc in docs.limit(limit):
        for available in available_transitions(doc, user):
            kind = signing_kind_for(doc, available.code, user)
            if kind in wanted and doc.current_pdf is not None:
                out.append(AwaitingSignature(doc, available.code, kind, available.on_behalf_of))
                break
    return out


def record_key(doc_id: Any, revision: int, kind: str, signer_id: Any) -> str:
    """Return the deterministic key (and job id) of one signature: a double click signs once."""
    return f"sign-{doc_id}-{revision}-{kind}-{signer_id}"


def field_name_for(kind: str, signer_id: Any, revision: int) -> str:
    """Return the PDF signature field of one signature (the same on every retry)."""
    return f"{kind}-{signer_id}-r{revision}"


def _acting(doc: Document, code: str, actor: User) -> Acting:
    """Return how `actor` may take `code` now (own right or delegation); refuse otherwise."""
    from workflows.engine import _spec, _transitions, available_transitions

    if code not in {a.code for a in available_transitions(doc, actor)}:
        raise Forbidden(
            "Bạn không có quyền ký văn bản này ở bước hiện tại, hoặc văn bản đã chuyển bước.",
            code="transition_not_allowed",
        )
    t = next(x for x in _transitions(doc, _spec(doc)) if x["code"] == code)
    acting = resolve_acting(t.get("who") or [], actor, doc, t.get("scope", "process"))
    assert acting is not None  # available_transitions resolved it a moment ago
    return acting


def _current_pdf(doc: Document) -> FileRevision:
    pdf = doc.current_pdf
    if pdf is None:
        raise ValidationFailed("Văn bản chưa có tệp PDF để ký.")
    return pdf


def _ancestors(doc: Document, rev: int) -> set[int]:
    by_rev = {r.rev: r for r in doc.revisions}
    seen: set[int] = set()
    current: int | None = rev
    while current is not None and current not in seen:
        seen.add(current)
        found = by_rev.get(current)
        current = found.source_rev if found is not None else None
    return seen


def _check_lineage(doc: Document) -> None:
    """Refuse when the current PDF no longer builds on the last signature of this round."""
    pdf = _current_pdf(doc)
    done = SignatureRecord.objects(document=doc, status="done", kind__ne="attachment")
    if doc.circuit is not None and doc.circuit.started_at is not None:
        # signing times are kept to the second
        done = done.filter(signed_at__gte=doc.circuit.started_at.replace(microsecond=0))
    last = done.order_by("-signed_at").first()
    if last is not None and last.signed_revision not in _ancestors(doc, pdf.rev):
        raise SigningRefused(
            "Tệp văn bản đã bị thay đổi sau khi ký nháy/ký (tệp hiện tại không chứa chữ ký "
            "trước đó). Vui lòng trình ký lại.",
            code="document_modified",
        )


# Signature block, appearance and placement -------------------------------------------------


@dataclass(frozen=True)
class SignatureBlock:
    """What the leader's signature shows (Decree 30): authority line, title, name."""

    prefix: str  # "", "KT.", "TUQ.", "TL." ...
    authority: str | None  # "KT. GIÁM ĐỐC"
    title: str | None  # "PHÓ GIÁM ĐỐC"
    name: str


def title_of(user: User) -> str:
    """Return the user's position title in capitals, as the signature block prints it."""
    return user.position.name.upper() if user.position else ""


def head_title() -> str:
    """Return the agency head's title in capitals (the "KT. GIÁM ĐỐC" line of a block)."""
    head = Position.objects(level="agency_head").order_by("order").first()
    return head.name.upper() if head else "THỦ TRƯỞNG CƠ QUAN"


def signature_block(doc: Document, acting: Acting) -> SignatureBlock:
    """Return the signature block: KT./TUQ. and the principal's title when acting for them."""
    actor = acting.actor
    if acting.on_behalf:
        kind = acting.delegation.kind if acting.delegation is not None else "delegation"
        prefix = DELEGATION_PREFIX.get(kind, "TUQ.")
        return SignatureBlock(
            prefix,
            f"{prefix} {title_of(acting.principal)}".strip(),
            title_of(actor) or None,
            actor.full_name,
        )
    prefix = doc.signer_authority or ""
    named = doc.signer is not None and doc.signer.pk == actor.pk
    title = (doc.signer_title if named and doc.signer_title else title_of(actor)).upper()
    name = doc.signer_name if named and doc.signer_name else actor.full_name
    authority = f"{prefix} {head_title()}" if prefix else None
    return SignatureBlock(prefix, authority, title or None, name)


@functools.lru_cache(maxsize=64)
def _generated_image(kind: str, seed: int, agency: str = "") -> bytes:
    from workflows.signing import demo_images

    if kind == "initial":
        return demo_images.make_initial_image(seed)
    if kind == "seal":
        return demo_images.make_seal_image(agency or "CƠ QUAN")
    return demo_images.make_signature_image(seed)


def _seed_of(user: User) -> int:
    return int(hashlib.sha256(str(user.pk).encode()).hexdigest()[:6], 16) % 997 + 1


def _stored_image(proxy: Any) -> bytes | None:
    if not proxy:
        return None
    try:
        data = proxy.read()
    except Exception:
        log.warning("stored signature image unreadable")
        return None
    return bytes(data) if data else None


def _image_for(kind: str, actor: User, identity: SigningIdentity) -> bytes:
    if kind == "seal":
        agency = Agency.current()
        return _stored_image(identity.seal_image) or _generated_image(
            "seal", 0, agency.name.upper() if agency else ""
        )
    proxy = actor.initial_image if kind == "initial" else actor.signature_image
    return _stored_image(proxy) or _generated_image(kind, _seed_of(actor))


def _step_placement(doc: Document, actor: User) -> Placement | None:
    for step in _active_steps(doc, actor):
        position = dict(step.position or {})
        if position.get("search"):
            return NearText(str(position["search"]))
        if all(k in position for k in ("x", "y", "w", "h")):
            x, y = float(position["x"]), float(position["y"])
            return Box(
                int(position.get("page", -1)),
                x,
                y,
                x + float(position["w"]),
                y + float(position["h"]),
            )
    return None


def _near(reader: Any, data: bytes, text: str, **where: Any) -> Box | None:
    if not text:
        return None
    try:
        spot = resolve_placement(NearText(text, **where), reader, data)
    except PlacementError:
        return None
    return Box(spot.page, *spot.rect)


def _leader_field(doc: Document, widgets: list[tuple[str, int, Any, bool]]) -> str | None:
    signed = {name for name, _, _, is_signed in widgets if is_signed}
    for found in SignatureRecord.objects(document=doc, kind="sign", status="done").order_by(
        "-signed_at"
    ):
        if found.field_name in signed:
            return str(found.field_name)
    return None


def _visual(
    doc: Document,
    kind: str,
    acting: Acting,
    identity: SigningIdentity,
    reader: Any,
    data: bytes,
) -> tuple[Appearance, Placement | None]:
    """Choose what the signature shows and where it goes."""
    actor = acting.actor
    if kind == "initial":
        return initial_appearance(_image_for("initial", actor, identity)), _step_placement(
            doc, actor
        )
    if kind == "seal":
        field_name = _leader_field(doc, signature_widgets(reader))
        return seal_appearance(_image_for("seal", actor, identity)), OverField(field_name)
    block = signature_block(doc, acting)
    image = _image_for("sign", actor, identity)
    full = leader_appearance(image, authority=block.authority, title=block.title, name=block.name)
    placement = _step_placement(doc, actor)
    if placement is not None:
        return full, placement
    printed = _near(reader, data, block.name)
    if printed is not None:
        # the drafter printed the block: the handwritten image goes between title and name
        return leader_appearance(image), printed
    if acting.on_behalf:
        # a draft prepared for the principal: the full KT./TUQ. block goes under their name
        below = _near(reader, data, acting.principal.full_name, where="below", height=120.0)
        if below is not None:
            return full, below
    return full, PageCorner("bottom-right", page=-1, width=200, height=120, margin=48)


# Starting ---------------------------------------------------------------------------------


def _clean_inputs(inputs: dict[str, Any] | None) -> dict[str, Any]:
    """Keep the transition inputs a job may carry: short texts, never a code."""
    out: dict[str, Any] = {}
    for key, value in (inputs or {}).items():
        if key in ("signing_code", "code", "pin", "otp") or value in (None, ""):
            continue
        if isinstance(value, str | int | float | bool):
            out[key] = value[:5000] if isinstance(value, str) else value
    return out


def _in_flight(job_id: str) -> Job | None:
    from jobs import fetch_job

    job = fetch_job(job_id)
    if job is None:
        return None
    status = job.get_status(refresh=True)
    return job if status in ("queued", "started", "deferred", "scheduled") else None


@dataclass
class _Ready:
    doc: Document
    code: str
    kind: str
    acting: Acting
    pdf: FileRevision


def _prepare_start(doc_id: Any, user: User, code: str | None, kinds: Iterable[str]) -> _Ready:
    from workflows.document import get_for

    doc = get_for(user, doc_id, log_view=False)
    if code is None:
        found = signing_transition_for(doc, user, kinds)
        if found is None:
            raise SigningRefused("Văn bản không chờ bạn ký.", code="not_awaiting_signature")
        code, kind = found
    else:
        kind_or_none = signing_kind_for(doc, code, user)
        if kind_or_none is None:
            raise ValidationFailed("Bước xử lý này không cần ký số.")
        kind = kind_or_none
    acting = _acting(doc, code, user)
    pdf = _current_pdf(doc)
    _check_lineage(doc)
    return _Ready(doc, code, kind, acting, pdf)


def _queue_record(
    ready: _Ready, user: User, authorization: SigningAuthorization, inputs: dict[str, Any]
) -> SignatureRecord:
    doc, kind = ready.doc, ready.kind
    rev = ready.pdf.rev
    key = record_key(doc.pk, rev, kind, user.pk)
    existing = SignatureRecord.objects(key=key).first()
    if existing is not None and existing.status == "done":
        existing.update(set__authorization=authorization, set__updated_at=utcnow())
        existing.reload()
        return existing
    found = existing or SignatureRecord(key=key)
    found.document = doc
    found.revision = rev
    found.kind = kind
    found.signer = user
    found.on_behalf_of = ready.acting.principal if ready.acting.on_behalf else None
    found.transition_code = ready.code
    found.inputs = inputs
    found.authorization = authorization
    found.field_name = field_name_for(kind, user.pk, rev)
    found.status, found.error, found.error_code = "queued", None, None
    found.updated_at = utcnow()
    found.save()
    return found


def start_signing(
    doc: Document | Any,
    user: User,
    transition_code: str | None,
    inputs: dict[str, Any] | None,
    code: str | None,
    *,
    ip: str | None = None,
) -> Job:
    """Authorize and queue one signature; the job signs, then performs the transition.

    `transition_code` None picks the signing step the user may take now. A second call while
    the first job is queued or running returns that job without asking for a new code.
    """
    from jobs import enqueue
    from jobs.signing import sign_document

    doc_id = doc.pk if isinstance(doc, Document) else doc
    ready = _prepare_start(doc_id, user, transition_code, ("initial", "sign", "seal"))
    key = record_key(ready.doc.pk, ready.pdf.rev, ready.kind, user.pk)
    running = _in_flight(key)
    if running is not None:
        return running
    identity = identity_for(user, ready.kind)
    authorization = authorize(
        user, code, identity=identity, document_ids=[str(ready.doc.pk)], ip=ip
    )
    found = _queue_record(ready, user, authorization, _clean_inputs(inputs))
    job = enqueue(
        sign_document,
        str(found.pk),
        str(authorization.pk),
        queue=SIGNING_QUEUE,
        job_id=key,
        owner_id=str(user.pk),
        description=f"{REASONS[ready.kind]}: {ready.doc.subject[:80]}",
        retries=3,
    )
    SignatureRecord.objects(pk=found.pk).update_one(set__job_id=job.id)
    record(
        "signature.requested",
        obj=ready.doc,
        detail={"kind": ready.kind, "transition": ready.code, "job": job.id},
    )
    return job


def start_batch_signing(
    user: User,
    doc_ids: Sequence[Any],
    code: str | None,
    *,
    inputs: dict[str, Any] | None = None,
    ip: str | None = None,
) -> Job:
    """Sign up to 50 documents awaiting `user` with one authorization, in one job.

    Documents that cannot be signed are listed as failures; the rest still sign.
    """
    from jobs import enqueue
    from jobs.signing import sign_batch

    ids = list(dict.fromkeys(str(d) for d in doc_ids if d))
    if not ids:
        raise ValidationFailed("Chọn ít nhất một văn bản để ký.")
    if len(ids) > BATCH_LIMIT:
        raise ValidationFailed(f"Mỗi lần ký tối đa {BATCH_LIMIT} văn bản.")
    ready: list[_Ready] = []
    rejected: list[dict[str, Any]] = []
    for doc_id in ids:
        try:
            item = _prepare_start(doc_id, user, None, ("initial", "sign", "seal"))
        except DomainError as exc:
            rejected.append(
                {"document": doc_id, "subject": _subject(doc_id, user), "error": exc.message}
            )
            continue
        if ready and (item.kind == "seal") != (ready[0].kind == "seal"):
            rejected.append(
                {
                    "document": doc_id,
                    "subject": item.doc.subject[:200],
                    "error": "Ký riêng: văn bản này cần loại chữ ký số khác trong lô.",
                }
            )
            continue
        ready.append(item)
    if not ready:
        reason = rejected[0]["error"] if rejected else ""
        raise SigningRefused(f"Không có văn bản nào ký được. {reason}".strip())
    identity = identity_for(user, ready[0].kind)
    authorization = authorize(
        user, code, identity=identity, document_ids=[str(r.doc.pk) for r in ready], ip=ip
    )
    clean = _clean_inputs(inputs)
    record_ids = [str(_queue_record(r, user, authorization, clean).pk) for r in ready]
    job = enqueue(
        sign_batch,
        record_ids,
        str(authorization.pk),
        rejected,
        queue=SIGNING_QUEUE,
        job_id=f"sign-batch-{authorization.pk}",
        owner_id=str(user.pk),
        description=f"Ký lô {len(ids)} văn bản",
        retries=2,
        timeout=1800,
    )
    SignatureRecord.objects(pk__in=record_ids).update(set__job_id=job.id)
    record("signature.batch_requested", obj=user, detail={"documents": len(ids), "job": job.id})
    return job


def _subject(doc_id: str, user: User) -> str:
    from workflows.document import can_view

    try:
        doc = Document.objects(pk=doc_id).first()
    except Exception:
        return ""
    return doc.subject[:200] if doc is not None and can_view(doc, user) else ""


# The job's work ----------------------------------------------------------------------------


Progress = Callable[[int, int, int, list[dict[str, Any]]], None]


@dataclass(repr=False)
class _Plan:
    """One document ready to sign (or to finish, when a crash left it half done)."""

    record: SignatureRecord
    doc: Document
    acting: Acting
    identity: SigningIdentity
    source: FileRevision
    request: SignRequest | None  # None: already signed, only store/record/transition left
    attachments: list[tuple[int, SignRequest]] = field(default_factory=list)


def _load_record(record_id: str) -> SignatureRecord:
    found = SignatureRecord.objects(pk=record_id).first()
    if found is None:
        raise NotFound("Không tìm thấy yêu cầu ký.")
    return found


def _plan(found: SignatureRecord, authorization: SigningAuthorization | None) -> _Plan:
    doc = Document.objects(pk=found.document.pk).first()
    actor = found.signer
    if doc is None or actor is None or not actor.active:
        raise NotFound("Không tìm thấy văn bản hoặc người ký.")
    if authorization is None or not authorization.valid_for(str(actor.pk), str(doc.pk)):
        raise SigningRefused(
            "Phiên xác nhận ký (OTP/PIN) đã hết hạn hoặc không hợp lệ. Vui lòng ký lại.",
            code="authorization_expired",
        )
    SignatureRecord.objects(pk=found.pk).update_one(
        set__status="running" if found.status != "done" else "done",
        inc__attempts=1,
        set__updated_at=utcnow(),
    )
    try:
        acting = _acting(doc, found.transition_code, actor)
    except Forbidden as exc:
        if found.on_behalf_of is not None:
            raise SigningRefused(
                f"Ủy quyền ký thay {found.on_behalf_of.full_name} đã hết hiệu lực hoặc bị thu "
                "hồi, không thể ký thay.",
                code="delegation_revoked",
            ) from exc
        raise
    identity = (
        found.identity
        if found.status == "done" and found.identity
        else identity_for(actor, found.kind)
    )
    source = _current_pdf(doc)
    if found.status == "done":
        return _Plan(found, doc, acting, identity, source, None)
    _check_lineage(doc)
    data = storage.read_file(source.file_id)
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise SigningRefused.from_core(
            DocumentModifiedError("Tệp PDF đã lưu không khớp mã băm, có thể đã bị sửa đổi.")
        )
    writer = open_pdf(data)
    signed = {name for name, _, _, is_signed in signature_widgets(writer.prev) if is_signed}
    if found.field_name in signed:
        return _Plan(found, doc, acting, identity, source, None)  # a crashed attempt signed it
    appearance, placement = _visual(doc, found.kind, acting, identity, writer.prev, data)
    agency = Agency.current()
    request_ = SignRequest(
        pdf_bytes=data,
        kind=cast(SignatureKind, found.kind),
        appearance=appearance,
        placement=placement,
        field_name=found.field_name,
        reason=REASONS[found.kind],
        location=agency.place if agency else None,
        label=f"{REASONS[found.kind]}: {doc.notation or doc.subject[:80]}",
    )
    plan = _Plan(found, doc, acting, identity, source, request_)
    if found.kind == "seal":
        plan.attachments = _attachment_requests(doc, found)
    return plan


def _attachment_requests(doc: Document, found: SignatureRecord) -> list[tuple[int, SignRequest]]:
    """Separate PDF attachments get the agency signature at the top right of page 1."""
    out = []
    field_name = field_name_for("attachment", found.signer.pk, found.revision)
    for index, attachment in enumerate(doc.attachments):
        if attachment.mime != "application/pdf":
            continue
        data = storage.read_file(attachment.file_id)
        widgets = signature_widgets(open_pdf(data).prev)
        if any(name == field_name and is_signed for name, _, _, is_signed in widgets):
            continue
        out.append(
            (
                index,
                SignRequest(
                    pdf_bytes=data,
                    kind="attachment",
                    appearance=attachment_appearance(doc.notation or ""),
                    field_name=field_name,
                    reason=REASONS["attachment"],
                    label=f"{REASONS['attachment']}: {doc.notation or ''}",
                ),
            )
        )
    return out


def _timestamp_url() -> str | None:
    url = current_app.config.get("SIGNING_TIMESTAMP_URL")
    return str(url) if url else None


def _sign(
    requests: Sequence[SignRequest], identity: CoreIdentity | None, now: dt.datetime
) -> list[bytes | SigningError]:
    if not requests:
        return []
    if identity is None:
        raise SigningRefused("Không mở được khóa ký.")
    return sign_pdfs(requests, identity, timestamp_url=_timestamp_url(), now=now)


def _store(plan: _Plan, signed: bytes, attachments: list[tuple[int, bytes]]) -> FileRevision:
    """Append the signed revision (and signed attachments) in one conditional write."""
    doc, actor = plan.doc, plan.acting.actor
    count = len(doc.revisions)
    note = f"{REASONS[plan.record.kind]}: {actor.full_name}"
    if plan.acting.on_behalf:
        note += f" (thay {plan.acting.principal.full_name})"
    revision = FileRevision(
        rev=storage.next_rev(doc),
        kind=REVISION_KINDS[plan.record.kind],
        source_rev=plan.source.rev,
        note=note[:300],
        **_described(signed, plan.source.filename, str(actor.pk)),
    )
    update: dict[str, Any] = {"$push": {"revisions": revision.to_mongo()}}
    new_files = [revision.file_id]
    sets: dict[str, Any] = {"updated_at": utcnow()}
    if attachments:
        replaced = list(doc.attachments)
        for index, data in attachments:
            old = replaced[index]
            fresh = StoredFile(
                flags=list(old.flags), **_described(data, old.filename, str(actor.pk))
            )
            new_files.append(fresh.file_id)
            replaced[index] = fresh
        sets["attachments"] = [a.to_mongo() for a in replaced]
    update["$set"] = sets
    result = Document._get_collection().update_one(
        {"_id": doc.pk, "revisions": {"$size": count}}, update
    )
    if result.modified_count != 1:
        for file_id in new_files:
            _delete_file(file_id)
        raise _RevisionConflict()
    return revision


def _produced_revision(plan: _Plan) -> FileRevision:
    """Find the revision a crashed attempt stored (the first of this signer after the request)."""
    actor_id = str(plan.acting.actor.pk)
    kind = REVISION_KINDS[plan.record.kind]
    for revision in plan.doc.revisions:
        if (
            revision.rev > plan.record.revision
            and revision.kind == kind
            and (revision.uploaded_by == actor_id)
        ):
            return revision
    return plan.source


def _complete(plan: _Plan, revision: FileRevision, signed_at: dt.datetime) -> None:
    found, identity = plan.record, plan.identity
    source_rev = revision.source_rev if revision.source_rev is not None else plan.source.rev
    source = plan.doc.revision(source_rev) or plan.source
    SignatureRecord.objects(pk=found.pk).update_one(
        set__status="done",
        set__source_revision=source.rev,
        set__signed_revision=revision.rev,
        set__revision_sha256=source.sha256,
        set__result_sha256=revision.sha256,
        set__identity=identity,
        set__backend=identity.backend,
        set__cert_subject=identity.cert_subject,
        set__cert_common_name=identity.cert_common_name,
        set__cert_serial=identity.cert_serial,
        set__cert_sha256=identity.cert_sha256,
        set__signed_at=signed_at,
        set__authority=signature_block(plan.doc, plan.acting).prefix
        if plan.record.kind == "sign"
        else "",
        set__error=None,
        set__error_code=None,
        set__updated_at=utcnow(),
    )
    found.reload()


def _record_attachments(plan: _Plan, indexes: list[int], signed_at: dt.datetime) -> None:
    doc = Document.objects(pk=plan.doc.pk).first()
    identity = plan.identity
    for index in indexes:
        attachment = doc.attachments[index]
        SignatureRecord(
            key=f"{plan.record.key}-attachment-{index}",
            document=doc,
            revision=plan.record.revision,
            kind="attachment",
            signer=plan.acting.actor,
            identity=identity,
            backend=identity.backend,
            cert_subject=identity.cert_subject,
            cert_common_name=identity.cert_common_name,
            cert_serial=identity.cert_serial,
            cert_sha256=identity.cert_sha256,
            signed_at=signed_at,
            field_name=field_name_for("attachment", plan.acting.actor.pk, plan.record.revision),
            attachment_name=attachment.filename,
            revision_sha256=None,
            result_sha256=attachment.sha256,
            job_id=plan.record.job_id,
            status="done",
        ).save()


def _transition_inputs(plan: _Plan) -> dict[str, Any]:
    inputs = dict(plan.record.inputs or {})
    authorization = plan.record.authorization
    # a definition may ask for the signing code: give proof of the authorization, not the code
    inputs["signing_code"] = f"authorization:{authorization.pk if authorization else ''}"
    return inputs


def _already_moved(doc_id: Any, found: SignatureRecord) -> bool:
    doc = Document.objects(pk=doc_id).first()
    since = found.signed_at
    if doc is None or since is None:
        return False
    since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    actor_id = str(found.signer.pk)
    for entry in reversed(doc.history):
        at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=dt.UTC)
        if at < since - dt.timedelta(seconds=1):
            break
        if entry.action == found.transition_code and entry.actor_id == actor_id:
            return True
    return False


def _rollback(plan: _Plan, revision: FileRevision, previous_attachments: list[Any]) -> None:
    """Take our revision back when the transition failed, so the document is as it was."""
    doc = Document.objects(pk=plan.doc.pk).first()
    if doc is None or not doc.revisions or doc.revisions[-1].rev != revision.rev:
        return  # someone built on it: keep it (the record says it failed)
    update: dict[str, Any] = {"$pull": {"revisions": {"rev": revision.rev}}}
    if previous_attachments is not None and plan.attachments:
        update["$set"] = {"attachments": [a.to_mongo() for a in previous_attachments]}
    Document._get_collection().update_one(
        {"_id": doc.pk, "revisions": {"$size": len(doc.revisions)}}, update
    )
    _delete_file(revision.file_id)
    SignatureRecord.objects(document=doc, key__startswith=f"{plan.record.key}-attachment-").delete()
    SignatureRecord.objects(pk=plan.record.pk).update_one(
        set__status="failed", set__signed_revision=None, set__result_sha256=None
    )


def _finish(
    plan: _Plan, signed: bytes | None, attachments: list[tuple[int, bytes]], now: dt.datetime
) -> None:
    """Store the signed revision, complete the record, then move the workflow on."""
    from workflows import engine

    found = plan.record
    stored: FileRevision | None = None
    previous_attachments = list(plan.doc.attachments)
    if signed is not None:
        stored = _store(plan, signed, attachments)
        _complete(plan, stored, now)
        if attachments:
            _record_attachments(plan, [i for i, _ in attachments], now)
    elif found.status != "done":
        _complete(plan, _produced_revision(plan), now)
    if found.transitioned_at is not None:
        return
    try:
        engine.transition(
            plan.doc.pk, found.transition_code, plan.acting.actor, _transition_inputs(plan)
        )
    except DomainError:
        if not _already_moved(plan.doc.pk, found):
            if stored is not None:
                _rollback(plan, stored, previous_attachments)
            raise
    SignatureRecord.objects(pk=found.pk).update_one(set__transitioned_at=utcnow())
    log.info(
        "signed doc=%s kind=%s by=%s rev=%s",
        plan.doc.pk,
        found.kind,
        plan.acting.actor.username,
        found.signed_revision,
    )


def _fail(found: SignatureRecord, exc: Exception) -> dict[str, Any]:
    error = _as_domain(exc)
    SignatureRecord.objects(pk=found.pk).update_one(
        set__error=error.message[:1000], set__error_code=error.code, set__updated_at=utcnow()
    )
    # a signature already in the document stays "done"; only the workflow step failed
    SignatureRecord.objects(pk=found.pk, signed_revision=None).update_one(set__status="failed")
    detail = getattr(exc, "detail", None)
    log.info(
        "signing failed doc=%s kind=%s code=%s detail=%s",
        found.document.pk if found.document else None,
        found.kind,
        error.code,
        detail,
    )
    doc = found.document
    return {
        "document": str(doc.pk) if doc else None,
        "subject": doc.subject[:200] if doc else "",
        "error": error.message,
        "code": error.code,
    }


def _sign_chunk(
    plans: list[_Plan], identity: CoreIdentity | None, now: dt.datetime
) -> list[tuple[_Plan, Exception | None]]:
    """Sign a chunk (one confirmation for a remote identity), then finish each document."""
    requests = [p.request for p in plans if p.request is not None]
    try:
        results = _sign(requests, identity, now)
    except (DomainError, SigningError) as exc:
        return [(p, exc) for p in plans]
    by_plan = iter(results)
    out: list[tuple[_Plan, Exception | None]] = []
    for plan in plans:
        result = next(by_plan) if plan.request is not None else None
        try:
            if isinstance(result, FieldExistsError):
                raise _RevisionConflict()  # another worker signed it just now: look again
            if isinstance(result, SigningError):
                raise result
            attachments: list[tuple[int, bytes]] = []
            if plan.attachments and result is not None:
                signed_attachments = _sign([r for _, r in plan.attachments], identity, now)
                for (index, _), item in zip(plan.attachments, signed_attachments, strict=True):
                    if isinstance(item, SigningError):
                        raise item
                    attachments.append((index, item))
            _finish(plan, result, attachments, now)
            out.append((plan, None))
        except (DomainError, SigningError, _RevisionConflict) as exc:
            out.append((plan, exc))
    return out


@dataclass
class _Run:
    total: int
    done: int = 0
    signed: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    progress: Progress | None = None

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, len(self.signed), list(self.failures))


def run_signing(
    record_ids: Sequence[str],
    authorization_id: str,
    *,
    rejected: Sequence[dict[str, Any]] = (),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Do the signing a job was queued for; return {"total", "signed", "failed"}.

    A document that fails is left as it was and listed with its Vietnamese message; the
    others still sign. Unexpected errors propagate so that RQ retries the job.
    """
    run = _Run(total=len(record_ids) + len(rejected), progress=progress)
    run.failures.extend(dict(r) for r in rejected)
    run.done = len(rejected)
    authorization = SigningAuthorization.objects(pk=authorization_id).first()
    records = [_load_record(rid) for rid in record_ids]
    if progress is not None:
        progress(run.done, run.total, 0, list(run.failures))
    plans: list[_Plan] = []
    for found in records:
        with acting_as(Actor(user_id=str(found.signer.pk), name=found.signer.full_name)):
            if found.status == "done" and (
                found.transitioned_at is not None or _already_moved(found.document.pk, found)
            ):
                # a worker died after the transition: only the bookkeeping was left
                SignatureRecord.objects(pk=found.pk).update_one(set__transitioned_at=utcnow())
                run.signed.append(str(found.document.pk))
                run.tick()
                continue
            try:
                plans.append(_plan(found, authorization))
            except (DomainError, SigningError) as exc:
                run.failures.append(_fail(found, exc))
                run.tick()
    identity = _open_identity(plans, run)
    plans = [p for p in plans if identity is not None or p.request is None]
    remote = identity is not None and identity.remote
    chunks = [plans] if remote else [[p] for p in plans]
    for chunk in chunks:
        _run_chunk(chunk, identity, authorization, run)
    return {"total": run.total, "signed": run.signed, "failed": run.failures}


def _open_identity(plans: list[_Plan], run: _Run) -> CoreIdentity | None:
    needing = [p for p in plans if p.request is not None]
    if not needing:
        return None
    try:
        return load_identity(needing[0].identity)
    except (DomainError, SigningError) as exc:
        for plan in needing:
            run.failures.append(_fail(plan.record, exc))
            run.tick()
        return None


def _run_chunk(
    chunk: list[_Plan],
    identity: CoreIdentity | None,
    authorization: SigningAuthorization | None,
    run: _Run,
) -> None:
    now = utcnow().replace(microsecond=0)
    actor = chunk[0].acting.actor
    with acting_as(Actor(user_id=str(actor.pk), name=actor.full_name)):
        outcomes = _sign_chunk(chunk, identity, now)
        for plan, error in outcomes:
            attempts = 0
            while isinstance(error, _RevisionConflict) and attempts < 3:
                attempts += 1  # another signer stored a revision first: sign the newer one
                try:
                    fresh = _plan(_load_record(str(plan.record.pk)), authorization)
                    error = _sign_chunk([fresh], identity, utcnow().replace(microsecond=0))[0][1]
                except (DomainError, SigningError) as exc:
                    error = exc
            if isinstance(error, _RevisionConflict):
                error = SigningRefused(
                    "Văn bản đang được người khác ký, vui lòng thử lại.", code="busy"
                )
            if error is None:
                run.signed.append(str(plan.doc.pk))
            else:
                run.failures.append(_fail(plan.record, error))
            run.tick()


def sign_directly(doc: Document, kind: str, actor: User) -> None:
    """Sign the document's current PDF in this process: no job, no transition (demo seed)."""
    doc.reload()
    source = _current_pdf(doc)
    rev = source.rev
    found = SignatureRecord(
        key=record_key(doc.pk, rev, kind, actor.pk),
        document=doc,
        revision=rev,
        kind=kind,
        signer=actor,
        field_name=field_name_for(kind, actor.pk, rev),
        status="queued",
        transition_code="",
    ).save()
    identity = identity_for(actor, kind)
    acting = Acting(actor, actor)
    data = storage.read_file(source.file_id)
    reader = open_pdf(data).prev
    appearance, placement = _visual(doc, kind, acting, identity, reader, data)
    plan = _Plan(found, doc, acting, identity, source, None)
    now = utcnow().replace(microsecond=0)
    request_ = SignRequest(
        pdf_bytes=data,
        kind=cast(SignatureKind, kind),
        appearance=appearance,
        placement=placement,
        field_name=found.field_name,
        reason=REASONS[kind],
    )
    signed = _sign([request_], load_identity(identity), now)[0]
    if isinstance(signed, SigningError):
        raise SigningRefused.from_core(signed)
    _complete(plan, _store(plan, signed, []), now)
    SignatureRecord.objects(pk=found.pk).update_one(set__transitioned_at=now)


# Workflow actions ----------------------------------------------------------------------------


def _require_signature(ctx: actions.ActionContext, kind: str) -> None:
    pdf = ctx.doc.current_pdf
    if pdf is None:
        raise ValidationFailed("Văn bản chưa có tệp PDF để ký.")
    found = SignatureRecord.objects(
        document=ctx.doc, kind=kind, signer=ctx.actor, status="done", signed_revision=pdf.rev
    ).first()
    if found is None:
        what = "đóng dấu (chữ ký số cơ quan)" if kind == "seal" else "ký số"
        raise ValidationFailed(
            f"Văn bản chưa được {what} trên phiên bản hiện tại. Vui lòng dùng chức năng ký số.",
            code="signature_required",
        )
    ctx.detail["signature"] = {
        "kind": kind,
        "revision": found.signed_revision,
        "certificate": found.cert_common_name,
        "serial": found.cert_serial,
    }


@actions.register("apply_seal", "Đóng dấu (chữ ký số cơ quan) – cần đã ký số", {})
def _apply_seal(ctx: actions.ActionContext) -> None:
    _require_signature(ctx, "seal")


def _wrap_request_signature() -> None:
    current = actions.REGISTRY["request_signature"]
    if getattr(current.run, "_requires_signature", False):
        return
    original = current.run

    def run(ctx: actions.ActionContext, **params: Any) -> None:
        original(ctx, **params)
        _require_signature(ctx, "sign")

    run._requires_signature = True  # type: ignore[attr-defined]
    actions.REGISTRY["request_signature"] = actions.ActionType(
        current.id, current.label, run, current.params, current.check
    )


_wrap_request_signature()
