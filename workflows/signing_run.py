"""The signing job's work: sign the current revision, store it, complete the record, move on.

``run_signing`` runs in the worker with ids only. It plans each record (reloading the
document, the signer's right and identity), signs through the signing core, stores the
signed PDF as a new revision with one conditional write, completes the record and only then
performs the workflow transition. A crash at any point can be retried: the PDF field name
comes from the record key, so a retry finds its own signature instead of signing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import gridfs
from bson import ObjectId
from flask import current_app
from mongoengine.connection import get_db

from models.audit import Actor, acting_as, utcnow
from models.document import Document, FileRevision, StoredFile
from models.organization import Agency
from models.signature import SignatureRecord, SigningAuthorization, SigningIdentity
from models.user import User
from workflows import storage
from workflows.errors import DomainError, Forbidden, NotFound
from workflows.rules import Acting
from workflows.signature import (
    REASONS,
    acting_for,
    check_lineage,
    current_pdf,
    field_name_for,
    record_key,
)
from workflows.signing import (
    FieldExistsError,
    SignatureKind,
    SigningError,
    SignRequest,
    attachment_appearance,
    sign_pdfs,
)
from workflows.signing import SigningIdentity as CoreIdentity
from workflows.signing.errors import DocumentModifiedError
from workflows.signing.pdf import open_pdf
from workflows.signing.placement import signature_widgets
from workflows.signing_appearance import signature_block, visual_for
from workflows.signing_identity import SigningRefused, identity_for, load_identity

log = logging.getLogger(__name__)

REVISION_KINDS = {"initial": "initialed", "sign": "signed", "seal": "sealed"}


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
        acting = acting_for(doc, found.transition_code, actor)
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
    source = current_pdf(doc)
    if found.status == "done":
        return _Plan(found, doc, acting, identity, source, None)
    check_lineage(doc)
    data = storage.read_file(source.file_id)
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise SigningRefused.from_core(
            DocumentModifiedError("Tệp PDF đã lưu không khớp mã băm, có thể đã bị sửa đổi.")
        )
    writer = open_pdf(data)
    signed = {name for name, _, _, is_signed in signature_widgets(writer.prev) if is_signed}
    if found.field_name in signed:
        return _Plan(found, doc, acting, identity, source, None)  # a crashed attempt signed it
    appearance, placement = visual_for(doc, found.kind, acting, identity, writer.prev, data)
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


def _certificate(identity: SigningIdentity) -> dict[str, Any]:
    """Return the identity and certificate facts a signature record keeps."""
    return {
        "identity": identity,
        "backend": identity.backend,
        "cert_subject": identity.cert_subject,
        "cert_common_name": identity.cert_common_name,
        "cert_serial": identity.cert_serial,
        "cert_sha256": identity.cert_sha256,
    }


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
        **{f"set__{name}": value for name, value in _certificate(identity).items()},
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
            **_certificate(identity),
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
    source = current_pdf(doc)
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
    appearance, placement = visual_for(doc, kind, acting, identity, reader, data)
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
